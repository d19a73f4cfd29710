"""cliplab.models: configs, the one loader, local-dir checkpoints, deterministic resumable training."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import open_clip
import pytest
import torch
from safetensors.torch import save_file

from cliplab.models import (
    LoadedModel,
    TrainConfig,
    UnknownModel,
    WeightsUnavailable,
    load_model,
    model_config,
    model_names,
    save_checkpoint,
    train_clip,
)
from cliplab.models.registry import count_parameters_from_config
from cliplab.models.training import DifferentRun

COLOURS = {"red": (220, 30, 30), "green": (30, 190, 40), "blue": (40, 50, 220), "yellow": (230, 220, 40)}
FAST = dict(num_threads=1, progress=False)


def coloured_squares(n: int, seed: int = 0) -> list[tuple[np.ndarray, str]]:
    """A square of one of four colours at a random place on grey noise, captioned 'a <colour> square'."""
    rng = np.random.default_rng(seed)
    names = list(COLOURS)
    out = []
    for i in range(n):
        name = names[i % len(names)]
        img = rng.integers(100, 150, size=(32, 32, 3), dtype=np.uint8)
        y, x = rng.integers(0, 18, size=2)
        img[y:y + 14, x:x + 14] = COLOURS[name]
        out.append((img, f"a {name} square"))
    return out


def outputs(model: torch.nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
    """encode_image / encode_text on fixed inputs (eval mode, no grad)."""
    gen = torch.Generator().manual_seed(0)
    images = torch.randn(4, 3, 32, 32, generator=gen)
    tokens = open_clip.get_tokenizer("cliplab-tiny")(["a red square", "a blue square", "x", "a photo of a cat"])
    model.eval()
    with torch.no_grad():
        return model.encode_image(images), model.encode_text(tokens)


def weights(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(path))


# --- configs -----------------------------------------------------------------------------------------------


def test_tiny_configs_are_registered_with_open_clip() -> None:
    names = model_names()
    assert names[:3] == ["cliplab-tiny", "cliplab-small", "cliplab-base"]
    for name in names:
        cfg = model_config(name)
        assert cfg["vision_cfg"]["image_size"] == 32
        assert cfg["text_cfg"]["vocab_size"] == 49408  # SimpleTokenizer ids go up to 49407
        assert 16 <= cfg["text_cfg"]["context_length"] <= 32
        assert name in open_clip.list_models()
    tiny = open_clip.create_model("cliplab-tiny")
    assert count_parameters_from_config(model_config("cliplab-tiny")) == sum(p.numel() for p in tiny.parameters())


# --- loading -----------------------------------------------------------------------------------------------


def test_random_init_is_seeded_eval_mode_and_leaves_global_rng_alone() -> None:
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    a = load_model("cliplab-tiny", seed=7)
    b = load_model("cliplab-tiny", seed=7)
    c = load_model("cliplab-tiny", seed=8)
    assert torch.equal(torch.rand(3), expected)
    assert isinstance(a, LoadedModel) and not a.model.training
    assert torch.equal(a.model.visual.conv1.weight, b.model.visual.conv1.weight)
    assert not torch.equal(a.model.visual.conv1.weight, c.model.visual.conv1.weight)


def test_save_then_plain_open_clip_local_dir_gives_identical_outputs(tmp_path: Path) -> None:
    original = load_model("cliplab-tiny", seed=3).model
    with torch.no_grad():
        original.logit_scale.fill_(2.5)  # a non-default value must survive too
    folder = save_checkpoint(original, "cliplab-tiny", tmp_path / "ckpt", extra_card={"note": "unit test"})
    assert (folder / "open_clip_config.json").is_file() and (folder / "open_clip_model.safetensors").is_file()
    config = json.loads((folder / "open_clip_config.json").read_text())
    assert set(config) == {"model_cfg", "preprocess_cfg"}

    # plain open_clip, no cliplab code involved in the loading
    reloaded, _, preprocess = open_clip.create_model_and_transforms("local-dir:" + str(folder))
    img_a, txt_a = outputs(original)
    img_b, txt_b = outputs(reloaded)
    assert torch.equal(img_a, img_b) and torch.equal(txt_a, txt_b)
    assert float(reloaded.logit_scale.detach()) == 2.5
    assert reloaded.visual.preprocess_cfg["size"] in (32, (32, 32), [32, 32])

    for loaded in (
        load_model("local-dir:" + str(folder)),
        load_model(str(folder / "open_clip_model.safetensors")),
        load_model("zoo:ckpt", zoo_dir=tmp_path),
    ):
        assert not loaded.model.training
        img_c, txt_c = outputs(loaded.model)
        assert torch.equal(img_a, img_c) and torch.equal(txt_a, txt_c)
    assert json.loads((folder / "cliplab_card.json").read_text())["note"] == "unit test"


def test_unknown_names_fail_with_close_matches(tmp_path: Path) -> None:
    with pytest.raises(UnknownModel, match="cliplab-tiny"):
        load_model("cliplab-tinny")
    with pytest.raises(UnknownModel, match="ViT-B-32"):
        load_model("ViT-B-23")
    with pytest.raises(UnknownModel, match="laion2b_s34b_b79k"):
        load_model("ViT-B-32", pretrained="laion2b_s34b")
    (tmp_path / "zoo" / "tiny-a").mkdir(parents=True)
    (tmp_path / "zoo" / "tiny-a" / "open_clip_config.json").write_text("{}")
    with pytest.raises(UnknownModel, match="tiny-a"):
        load_model("zoo:tiny-b", zoo_dir=tmp_path / "zoo")
    with pytest.raises(FileNotFoundError, match="missing.safetensors"):
        load_model(str(tmp_path / "missing.safetensors"))


@pytest.fixture
def empty_hf_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    for var in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HTTPS_PROXY", "https_proxy"):
        monkeypatch.delenv(var, raising=False)
    return tmp_path / "hf" / "hub"


def test_uncached_real_model_offline_fails_fast_with_instructions(empty_hf_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    tic = time.monotonic()
    with pytest.raises(WeightsUnavailable) as err:
        load_model("ViT-B-32", pretrained="laion2b_s34b_b79k")
    assert time.monotonic() - tic < 10
    message = str(err.value)
    for needle in ("ViT-B-32", "laion2b_s34b_b79k", "local-dir:", "HF_HUB_OFFLINE", "pretrained="):
        assert needle in message


def test_uncached_real_model_with_unreachable_hub_fails_fast(empty_hf_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # discard port: nothing listens, refused at once
    tic = time.monotonic()
    with pytest.raises(WeightsUnavailable, match="unreachable"):
        load_model("ViT-B-32", pretrained="laion2b_s34b_b79k")
    with pytest.raises(WeightsUnavailable, match="hf-hub:someone/nothing"):
        load_model("hf-hub:someone/nothing")
    assert time.monotonic() - tic < 10


def test_hf_hub_model_is_served_from_the_cache_offline(empty_hf_cache: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    original = load_model("cliplab-tiny", seed=5).model
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = empty_hf_cache / "models--cliplab--tiny-test"
    save_checkpoint(original, "cliplab-tiny", repo / "snapshots" / commit)
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    loaded = load_model("hf-hub:cliplab/tiny-test")
    assert "cached" in loaded.source
    assert all(torch.equal(a, b) for a, b in zip(outputs(original), outputs(loaded.model)))


def test_pickled_checkpoints_load_only_through_weights_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    original = load_model("cliplab-tiny", seed=4).model
    good = tmp_path / "model.pt"
    torch.save(original.state_dict(), good)
    calls: list[object] = []
    real_load = torch.load

    def spy(*args, **kwargs):
        calls.append(kwargs.get("weights_only"))
        return real_load(*args, **kwargs)

    monkeypatch.setattr(torch, "load", spy)
    loaded = load_model("cliplab-tiny", pretrained=str(good))
    assert calls and all(flag is True for flag in calls)
    assert all(torch.equal(a, b) for a, b in zip(outputs(original), outputs(loaded.model)))

    marker = tmp_path / "code-ran"

    class Payload:
        def __reduce__(self):
            return (Path.touch, (marker,))

    evil = tmp_path / "evil.pt"
    torch.save({"state_dict": original.state_dict(), "extra": Payload()}, evil)
    with pytest.raises(ValueError, match="weights_only"):
        load_model("cliplab-tiny", pretrained=str(evil))
    assert not marker.exists()


def test_safetensors_file_without_config_asks_for_the_architecture(tmp_path: Path) -> None:
    model = load_model("cliplab-tiny").model
    path = tmp_path / "weights.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    with pytest.raises(ValueError, match="architecture"):
        load_model(str(path))
    assert torch.equal(outputs(load_model("cliplab-tiny", pretrained=str(path)).model)[0], outputs(model)[0])


# --- training ----------------------------------------------------------------------------------------------


def test_short_training_lowers_the_loss_and_saves_a_loadable_model(tmp_path: Path) -> None:
    data = coloured_squares(256)
    result = train_clip("cliplab-tiny", data, TrainConfig(steps=40, batch_size=32, lr=2e-3, warmup=5, **FAST), tmp_path / "run")
    loss = result.history["loss"].to_numpy()
    assert len(loss) == 40 and np.isfinite(loss).all()
    assert loss[-5:].mean() < 0.8 * loss[:5].mean()
    assert {"step", "loss", "lr", "samples_per_s"} <= set(result.history.columns)
    assert result.checkpoint.name == "open_clip_model.safetensors"
    assert not (tmp_path / "run" / "train_state").exists()
    loaded = load_model("local-dir:" + str(tmp_path / "run"))
    assert not loaded.model.training


def test_same_seed_same_weights_and_different_seed_differs(tmp_path: Path) -> None:
    data = coloured_squares(64)
    runs = {}
    for label, seed in (("a", 1), ("b", 1), ("c", 2)):
        cfg = TrainConfig(steps=6, batch_size=16, warmup=2, seed=seed, **FAST)
        runs[label] = weights(train_clip("cliplab-tiny", data, cfg, tmp_path / label).checkpoint)
    assert all(torch.equal(runs["a"][k], runs["b"][k]) for k in runs["a"])
    assert not all(torch.equal(runs["a"][k], runs["c"][k]) for k in runs["a"])


class Crash(Exception):
    pass


def test_resume_after_interruption_is_bit_identical(tmp_path: Path) -> None:
    data = coloured_squares(64)
    cfg = TrainConfig(steps=20, batch_size=16, warmup=3, lr=2e-3, seed=5, checkpoint_every=10, **FAST)
    straight = train_clip("cliplab-tiny", data, cfg, tmp_path / "straight")

    def crash_at_15(step: int, row: dict) -> None:
        if step == 15:
            raise Crash

    with pytest.raises(Crash):
        train_clip("cliplab-tiny", data, cfg, tmp_path / "resumed", on_step=crash_at_15)
    assert json.loads((tmp_path / "resumed" / "train_state" / "latest.json").read_text())["step"] == 10
    resumed = train_clip("cliplab-tiny", data, cfg, tmp_path / "resumed")
    assert resumed.resumed_from == 10
    a, b = weights(straight.checkpoint), weights(resumed.checkpoint)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert resumed.history["step"].tolist() == list(range(1, 21))
    assert np.array_equal(resumed.history["loss"].to_numpy(), straight.history["loss"].to_numpy())

    # a finished run is not retrained; a different config refuses to resume over it
    again = train_clip("cliplab-tiny", data, cfg, tmp_path / "resumed")
    assert again.resumed_from == 20
    with pytest.raises(ValueError, match="config.seed"):
        train_clip("cliplab-tiny", data, TrainConfig(steps=20, batch_size=16, warmup=3, lr=2e-3, seed=6, **FAST),
                   tmp_path / "resumed")


def test_an_edited_architecture_config_does_not_resume_the_old_model(tmp_path: Path) -> None:
    configs = tmp_path / "configs"
    configs.mkdir()
    arch = json.loads(json.dumps(open_clip.get_model_config("cliplab-tiny")))
    (configs / "cliplab-edited-arch.json").write_text(json.dumps(arch))
    open_clip.add_model_config(configs)
    cfg = TrainConfig(steps=2, batch_size=16, **FAST)
    data = coloured_squares(32)
    train_clip("cliplab-edited-arch", data, cfg, tmp_path / "m")
    arch["vision_cfg"]["width"] += 8
    (configs / "cliplab-edited-arch.json").write_text(json.dumps(arch))
    open_clip.add_model_config(configs)
    with pytest.raises(DifferentRun, match="model_config"):
        train_clip("cliplab-edited-arch", data, cfg, tmp_path / "m")


def test_training_restores_threads_and_global_rng(tmp_path: Path) -> None:
    torch.set_num_threads(1)
    torch.manual_seed(99)
    expected = torch.rand(2)
    torch.manual_seed(99)
    train_clip("cliplab-tiny", coloured_squares(32), TrainConfig(steps=2, batch_size=16, num_threads=2, progress=False),
               tmp_path / "t")
    assert torch.get_num_threads() == 1
    assert torch.equal(torch.rand(2), expected)


def test_bad_training_input_fails_before_work(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="exactly one of steps"):
        TrainConfig()
    with pytest.raises(ValueError, match="batch_size"):
        TrainConfig(steps=1, batch_size=1)
    with pytest.raises(ValueError, match="fewer than batch_size"):
        train_clip("cliplab-tiny", coloured_squares(8), TrainConfig(steps=1, batch_size=16, **FAST), tmp_path / "x")
    with pytest.raises(TypeError, match="caption"):
        train_clip("cliplab-tiny", [(np.zeros((32, 32, 3), np.uint8), 3)] * 4, TrainConfig(steps=1, batch_size=2, **FAST),
                   tmp_path / "y")
    with pytest.raises(UnknownModel):
        train_clip("cliplab-huge", coloured_squares(8), TrainConfig(steps=1, batch_size=2, **FAST), tmp_path / "z")
