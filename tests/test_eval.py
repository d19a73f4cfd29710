"""cliplab.eval: zero-shot tables, recall@k, and the world/real data readers."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from cliplab.eval import (
    CaptionCorpus,
    LabeledImages,
    normalize_templates,
    read_caption_corpus,
    read_image_folder,
    recall_at_k,
    retrieval_eval,
    zero_shot_eval,
)
from cliplab.models import LoadedModel, TrainConfig, load_model, train_clip

RGB = {"red": (255, 0, 0), "green": (0, 255, 0), "blue": (0, 0, 255)}


class StubCLIP(torch.nn.Module):
    """A transparent 'CLIP': an image embeds as its mean RGB, a text as the one-hot colour word it names."""

    def __init__(self) -> None:
        super().__init__()
        self.anchor = torch.nn.Parameter(torch.zeros(()))
        self.visual = SimpleNamespace(image_size=(4, 4), preprocess_cfg={"mean": (0.0, 0.0, 0.0), "std": (1.0, 1.0, 1.0)})

    def encode_image(self, x: torch.Tensor, normalize: bool = False) -> torch.Tensor:
        f = x.mean(dim=(2, 3))
        return f / f.norm(dim=1, keepdim=True) if normalize else f

    def encode_text(self, tokens: torch.Tensor, normalize: bool = False) -> torch.Tensor:
        f = tokens.float()
        return f / f.norm(dim=1, keepdim=True) if normalize else f


def stub_tokenizer(texts: list[str]) -> torch.Tensor:
    return torch.tensor([[float(name in t) for name in RGB] for t in texts])


def stub_preprocess(image: Image.Image) -> torch.Tensor:
    return torch.from_numpy(np.asarray(image.resize((4, 4)), dtype=np.float32) / 255.0).permute(2, 0, 1)


@pytest.fixture
def stub() -> LoadedModel:
    return LoadedModel(StubCLIP().eval(), stub_preprocess, stub_tokenizer, "stub", "test")


def solid(colour: str, size: int = 4) -> np.ndarray:
    return np.broadcast_to(np.array(RGB[colour], np.uint8), (size, size, 3)).copy()


# --- zero-shot ---------------------------------------------------------------------------------------------


def test_zero_shot_table_matches_hand_count(stub: LoadedModel) -> None:
    # 3 red (all right), 3 green of which one is drawn blue (wrong), 2 blue (right): top-1 = 7/8
    colours = ["red"] * 3 + ["green", "green", "blue"] + ["blue"] * 2
    labels = [0, 0, 0, 1, 1, 1, 2, 2]
    data = LabeledImages(np.stack([solid(c) for c in colours]), np.array(labels), list(RGB))
    result = zero_shot_eval(stub, data, templates=["a photo of a {}.", lambda c: f"{c} thing"])
    table = result.per_class.set_index("class")
    assert table["n"].tolist() == [3, 3, 2]
    assert table["correct"].tolist() == [3, 2, 2]
    assert table["accuracy"].tolist() == pytest.approx([1.0, 2 / 3, 1.0])
    assert result.top1 == pytest.approx(7 / 8)
    assert result.predictions.tolist() == [0, 0, 0, 1, 1, 2, 2, 2]


def test_templates_positional_named_and_callables() -> None:
    a, b, c = normalize_templates(["a {} here", "a {c} there", lambda x: x.upper()])
    assert (a("cat"), b("cat"), c("cat")) == ("a cat here", "a cat there", "CAT")
    with pytest.raises(ValueError, match="placeholder"):
        normalize_templates(["a {classname}"])
    with pytest.raises(ValueError, match="non-empty"):
        normalize_templates("a {}")


def coloured_squares(n: int, seed: int = 0) -> list[tuple[np.ndarray, str]]:
    rng = np.random.default_rng(seed)
    palette = {"red": (220, 30, 30), "green": (30, 190, 40), "blue": (40, 50, 220), "yellow": (230, 220, 40)}
    out = []
    for i in range(n):
        name = list(palette)[i % 4]
        img = rng.integers(100, 150, size=(32, 32, 3), dtype=np.uint8)
        y, x = rng.integers(0, 18, size=2)
        img[y:y + 14, x:x + 14] = palette[name]
        out.append((img, f"a {name} square"))
    return out


def test_zero_shot_after_brief_training_is_far_above_chance(tmp_path: Path) -> None:
    cfg = TrainConfig(steps=60, batch_size=32, lr=2e-3, warmup=5, seed=0, num_threads=1, progress=False)
    train_clip("cliplab-tiny", coloured_squares(512), cfg, tmp_path / "m")
    loaded = load_model("local-dir:" + str(tmp_path / "m"))
    test = coloured_squares(200, seed=1)  # fresh images
    classes = ["red", "green", "blue", "yellow"]
    data = LabeledImages(np.stack([im for im, _ in test]), np.array([classes.index(c.split()[1]) for _, c in test]), classes)
    result = zero_shot_eval(loaded, data, templates=["a {} square"])
    assert result.top1 >= 0.9  # chance is 0.25
    assert (result.per_class["n"] == 50).all()


# --- retrieval ---------------------------------------------------------------------------------------------


def test_recall_at_k_on_a_hand_computed_case() -> None:
    sim = np.array([
        [0.9, 0.1, 0.8, 0.0],
        [0.2, 0.3, 0.7, 0.1],
        [0.1, 0.6, 0.0, 0.5],
    ])
    # image 2 has two captions (texts 2 and 3)
    table = recall_at_k(sim, image_ids=[0, 1, 2], text_ids=[0, 1, 2, 2], ks=(1, 2, 3))
    got = {(r.direction, r.k): r.recall for r in table.itertuples()}
    # i2t ranks of the first relevant text: image0 -> 1, image1 -> 2, image2 -> 2 (text 3)
    assert got[("image_to_text", 1)] == pytest.approx(1 / 3)
    assert got[("image_to_text", 2)] == pytest.approx(1.0)
    # t2i ranks: text0 -> 1, text1 -> 2, text2 -> 3, text3 -> 1
    assert [got[("text_to_image", k)] for k in (1, 2, 3)] == pytest.approx([2 / 4, 3 / 4, 1.0])
    assert set(table["n_queries"]) == {3, 4}


def test_recall_validates_input() -> None:
    with pytest.raises(ValueError, match="matrix"):
        recall_at_k(np.zeros(3))
    with pytest.raises(ValueError, match="ids"):
        recall_at_k(np.zeros((2, 2)), image_ids=[0])
    with pytest.raises(ValueError, match="positive"):
        recall_at_k(np.eye(2), ks=(0,))


def test_retrieval_eval_pair_vs_caption_matching(stub: LoadedModel) -> None:
    colours = ["red", "green", "blue", "red"]
    corpus = CaptionCorpus(np.stack([solid(c) for c in colours]), [f"a {c} thing" for c in colours])
    by_caption = retrieval_eval(stub, corpus, ks=(1,), match="caption")
    assert by_caption["recall"].tolist() == [1.0, 1.0]
    by_pair = retrieval_eval(stub, corpus, ks=(1, 2), match="pair")
    # the two red rows are indistinguishable: each finds itself within the top 2, not necessarily first
    at2 = by_pair[by_pair.k == 2]["recall"].tolist()
    assert at2 == [1.0, 1.0]


# --- real-data readers -------------------------------------------------------------------------------------


def write_png(path: Path, colour: str, size: int = 8) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(solid(colour, size)).save(path)


def test_image_folder_reader_and_zero_shot_on_it(tmp_path: Path, stub: LoadedModel) -> None:
    for colour in ("blue", "red"):
        for i in range(3):
            write_png(tmp_path / "imgs" / colour / f"{i}.png", colour)
    data = read_image_folder(tmp_path / "imgs")
    assert data.classnames == ["blue", "red"] and len(data) == 6
    assert data.labels.tolist() == [0, 0, 0, 1, 1, 1]
    result = zero_shot_eval(stub, data)
    assert result.top1 == 1.0  # real images go through the model's preprocess (8 px -> 4 px)
    with pytest.raises(FileNotFoundError, match="not found"):
        read_image_folder(tmp_path / "nope")
    (tmp_path / "flat").mkdir()
    with pytest.raises(ValueError, match="class sub-folders"):
        read_image_folder(tmp_path / "flat")


def test_csv_and_parquet_corpora(tmp_path: Path, stub: LoadedModel) -> None:
    rows = []
    for i, colour in enumerate(["red", "green", "blue"]):
        write_png(tmp_path / "img" / f"{i}.png", colour)
        rows.append({"path": f"img/{i}.png", "caption": f"a {colour} one"})
    pd.DataFrame(rows).to_csv(tmp_path / "corpus.csv", index=False)
    corpus = read_caption_corpus(tmp_path / "corpus.csv")
    assert corpus.captions == ["a red one", "a green one", "a blue one"]
    assert retrieval_eval(stub, corpus, ks=(1,))["recall"].tolist() == [1.0, 1.0]

    pd.DataFrame(rows).rename(columns={"path": "file"}).to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(ValueError, match=r"lacks column.*'path'.*file"):
        read_caption_corpus(tmp_path / "bad.csv")
    assert read_caption_corpus(tmp_path / "bad.csv", image_column="file").captions == corpus.captions
    pd.DataFrame([{"path": "img/missing.png", "caption": "x"}]).to_csv(tmp_path / "missing.csv", index=False)
    with pytest.raises(FileNotFoundError, match="missing.png"):
        read_caption_corpus(tmp_path / "missing.csv")
    with pytest.raises(FileNotFoundError):
        read_caption_corpus(tmp_path / "absent.csv")

    blobs = [(tmp_path / r["path"]).read_bytes() for r in rows]
    pd.DataFrame({"image": blobs, "text": [r["caption"] for r in rows]}).to_parquet(tmp_path / "c.parquet")
    from_parquet = read_caption_corpus(tmp_path / "c.parquet", image_column="image", caption_column="text")
    assert retrieval_eval(stub, from_parquet, ks=(1,))["recall"].tolist() == [1.0, 1.0]


def test_webdataset_shards(tmp_path: Path, stub: LoadedModel) -> None:
    import webdataset as wds

    for shard, colours in enumerate((["red", "green"], ["blue"])):
        with wds.TarWriter(str(tmp_path / f"shard-{shard:03d}.tar")) as sink:
            for i, colour in enumerate(colours):
                sink.write({"__key__": f"{shard}-{i}", "png": Image.fromarray(solid(colour, 8)), "txt": f"a {colour} one"})
    for source in (tmp_path, str(tmp_path / "shard-{000..001}.tar")):
        corpus = read_caption_corpus(source)
        assert corpus.captions == ["a red one", "a green one", "a blue one"]
    assert retrieval_eval(stub, corpus, ks=(1,))["recall"].tolist() == [1.0, 1.0]
    with pytest.raises(FileNotFoundError):
        read_caption_corpus(str(tmp_path / "other-{000..001}.tar"))
