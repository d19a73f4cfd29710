"""The shipped real-photograph sample: deterministic bytes, the real-data layouts, its corpus, its refusals."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from cliplab.association.probes import read_object_photos
from cliplab.eval.data import read_image_folder
from cliplab.real.sample import COLOUR_OBJECTS, COLOURS, available_classes, write_real_sample
from PIL import Image

PER_CLASS, SIZE = 4, 64


def _digests(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_real_sample(tmp_path_factory.mktemp("real") / "sample", per_class=PER_CLASS, size=SIZE)


def test_same_arguments_give_the_same_bytes(sample: Path, tmp_path: Path) -> None:
    again = write_real_sample(tmp_path / "again", per_class=PER_CLASS, size=SIZE)
    first = _digests(sample)
    assert first == _digests(again)
    assert len(first) > 100
    other = write_real_sample(tmp_path / "other", per_class=PER_CLASS, size=SIZE, seed=1)
    assert _digests(other)["images/cat/000.png"] != first["images/cat/000.png"]


def test_layout_counts_and_png_format(sample: Path) -> None:
    classes = sorted(c.folder for c in available_classes())
    assert {"astronaut", "cat", "coffee_cup", "rocket", "motorcycle"} <= set(classes)
    counts = {"images": PER_CLASS, "test_images": PER_CLASS // 2, "ood/sketch": PER_CLASS // 2,
              "ood/grayscale": PER_CLASS // 2}
    for split, count in counts.items():
        assert sorted(p.name for p in (sample / split).iterdir()) == classes, split
        for folder in classes:
            files = sorted((sample / split / folder).iterdir())
            assert [p.name for p in files] == [f"{i:03d}.png" for i in range(count)], (split, folder)
    for path in sample.rglob("*.png"):
        with Image.open(path) as img:
            assert (img.format, img.size, img.mode) == ("PNG", (SIZE, SIZE), "RGB"), path
    assert {p.name for p in sample.iterdir()} == {"images", "test_images", "ood", "corpus.csv", "colour_images",
                                                  "README.md"}
    readme = (sample / "README.md").read_text()
    assert "chelsea.png" in readme and "CC0" in readme and "not a benchmark" in readme.lower()


def test_image_folders_read_with_the_same_classes(sample: Path) -> None:
    train = read_image_folder(sample / "images")
    sketch = read_image_folder(sample / "ood" / "sketch")
    test = read_image_folder(sample / "test_images")
    assert train.classnames == sketch.classnames == test.classnames
    assert "coffee cup" in train.classnames and "brick wall" in train.classnames
    assert len(train.images) == PER_CLASS * len(train.classnames)


def test_colour_images_read_as_object_photos(sample: Path) -> None:
    photos = read_object_photos(sample / "colour_images")
    objects = [o for o in COLOUR_OBJECTS if o in {c.folder for c in available_classes()}]
    assert set(photos["object"]) == set(objects)
    assert set(photos["colour"]) == set(COLOURS)
    per = photos.groupby(["object", "colour"]).size()
    assert len(per) == len(objects) * len(COLOURS) and (per == max(2, PER_CLASS // 4)).all()
    r, g, b = np.asarray(Image.open(photos.loc[photos["colour"] == "red", "path"].iloc[0])).mean(axis=(0, 1))
    assert r > 2 * g and r > 2 * b


def test_corpus_names_classes_at_zipf_like_frequencies(sample: Path) -> None:
    corpus = pd.read_csv(sample / "corpus.csv")
    assert list(corpus.columns) == ["caption", "image"]
    assert 1800 <= len(corpus) <= 2200
    names = [c.name for c in available_classes()]
    named = {n: corpus["caption"].str.contains(rf"\b{re.escape(n)}", case=False, regex=True) for n in names}
    counts = {n: int(hits.sum()) for n, hits in named.items()}
    assert max(counts.values()) > 10 * min(counts.values()) > 0
    assert max(counts.values()) / len(corpus) == pytest.approx(0.30, abs=0.03)
    none = ~pd.concat(named.values(), axis=1).any(axis=1)
    assert none.sum() > 0 and corpus.loc[none, "image"].isna().all()
    assert corpus["caption"].str.match(r"[A-Z]").any() and corpus["caption"].str.contains(r"\bcats\b").any()
    for caption, image in corpus.loc[~none, ["caption", "image"]].itertuples(index=False):
        assert (sample / image).is_file(), image
        assert Path(image).parent.name.replace("_", " ") in caption.lower(), (caption, image)


@pytest.mark.parametrize("kwargs", [{"per_class": 1}, {"size": 31}, {"seed": -1}])
def test_bad_arguments_write_nothing(tmp_path: Path, kwargs: dict[str, int]) -> None:
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        write_real_sample(tmp_path / "out", **kwargs)
    assert list(tmp_path.iterdir()) == []


def test_refuses_a_non_empty_folder_and_fills_an_empty_one(tmp_path: Path) -> None:
    full = tmp_path / "full"
    full.mkdir()
    (full / "keep.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="remove it or pass another folder"):
        write_real_sample(full, per_class=2, size=32)
    assert [p.name for p in full.iterdir()] == ["keep.txt"]
    empty = tmp_path / "empty"
    empty.mkdir()
    assert write_real_sample(empty, per_class=2, size=32) == empty
    assert (empty / "corpus.csv").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty", "full"]


def test_a_failure_leaves_no_partial_sample(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import cliplab.real.sample as sample_module

    def broken(*args: object) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(sample_module, "_write_corpus", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        write_real_sample(tmp_path / "out", per_class=2, size=32)
    assert list(tmp_path.iterdir()) == []
