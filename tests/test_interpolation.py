"""Part B of the sharpness replication: WiSE-FT interpolation, task vectors, stragglers, sparsity, real path."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from torch import nn

from cliplab.sharpness import interpolation as ip
from cliplab.sharpness.measures import SharpnessConfig


def _states(seed: int = 0) -> tuple[dict, dict]:
    gen = torch.Generator().manual_seed(seed)
    zs = {"a.weight": torch.randn(4, 3, generator=gen), "a.bias": torch.randn(4, generator=gen),
          "bn.num_batches_tracked": torch.tensor(5)}
    ft = {"a.weight": torch.randn(4, 3, generator=gen), "a.bias": torch.randn(4, generator=gen),
          "bn.num_batches_tracked": torch.tensor(5)}
    return zs, ft


def test_interpolation_endpoints_are_exact_and_midpoint_is_the_mean() -> None:
    zs, ft = _states()
    for k in zs:
        assert torch.equal(ip.interpolate_state(zs, ft, 0.0)[k], zs[k])
        assert torch.equal(ip.interpolate_state(zs, ft, 1.0)[k], ft[k])
    mid = ip.interpolate_state(zs, ft, 0.5)
    torch.testing.assert_close(mid["a.weight"], (zs["a.weight"] + ft["a.weight"]) / 2)
    assert ip.interpolate_state(zs, ft, 0.0)["a.weight"] is not zs["a.weight"]  # a copy, not an alias


def test_interpolation_rejects_mismatched_states() -> None:
    zs, ft = _states()
    with pytest.raises(ValueError, match="differ in keys"):
        ip.interpolate_state(zs, {k: v for k, v in ft.items() if k != "a.bias"}, 0.5)
    bad = dict(ft, **{"bn.num_batches_tracked": torch.tensor(7)})
    with pytest.raises(ValueError, match="non-float"):
        ip.interpolate_state(zs, bad, 0.5)
    with pytest.raises(ValueError, match="finite"):
        ip.interpolate_state(zs, ft, float("nan"))


def test_task_vector_arithmetic_reproduces_the_path() -> None:
    zs, ft = _states(1)
    tau = ip.task_vector(zs, ft)
    assert set(tau) == {"a.weight", "a.bias"}  # float entries only
    for a in (0.0, 0.3, 1.0):
        via_tau = ip.apply_task_vector(zs, tau, a)
        direct = ip.interpolate_state(zs, ft, a)
        for k in zs:
            torch.testing.assert_close(via_tau[k], direct[k])
    assert all(torch.equal(ip.apply_task_vector(zs, tau, 0.0)[k], zs[k]) for k in zs)


def test_sparsification_keeps_the_stated_fraction_of_largest_entries() -> None:
    tau = {"w": torch.tensor([0.1, -5.0, 0.3, 2.0, -0.2, 0.05, 4.0, -1.0, 0.0, 0.7]), "v": torch.ones(5)}
    out = ip.sparsify_task_vector(tau, ["w"], 0.3)
    kept = out["w"] != 0
    assert int(kept.sum()) == 3
    assert set(out["w"][kept].tolist()) == {-5.0, 4.0, 2.0}  # the three largest magnitudes, signs kept
    assert torch.equal(out["v"], tau["v"])  # tensors outside the stragglers untouched
    big = {"w": torch.randn(1000, generator=torch.Generator().manual_seed(0))}
    for keep in (0.1, 0.35, 1.0):
        assert int((ip.sparsify_task_vector(big, ["w"], keep)["w"] != 0).sum()) == math.ceil(keep * 1000)
    with pytest.raises(ValueError, match="keep"):
        ip.sparsify_task_vector(tau, ["w"], 0.0)
    with pytest.raises(ValueError, match="not in the task vector"):
        ip.sparsify_task_vector(tau, ["nope"], 0.5)


def test_straggler_definition_on_a_constructed_example() -> None:
    # three layers; the update of "mid" is large *relative to its weights* though not in absolute size
    zs = {"big.weight": torch.full((10,), 10.0), "mid.weight": torch.full((10,), 0.1),
          "small.weight": torch.full((10,), 1.0)}
    ft = {"big.weight": zs["big.weight"] + 1.0, "mid.weight": zs["mid.weight"] + 0.5,
          "small.weight": zs["small.weight"] + 0.01}
    groups = {g: ip._Members([f"{g}.weight"]) for g in ("big", "mid", "small")}
    table = ip.drift(zs, ft, groups).set_index("group")
    assert table.loc["mid", "drift"] == pytest.approx(5.0)
    assert table.loc["big", "drift"] == pytest.approx(0.1)
    assert table.loc["small", "drift"] == pytest.approx(0.01)
    assert table.loc["big", "update_norm"] > table.loc["mid", "update_norm"]
    assert ip.stragglers(table.reset_index(), 1) == ["mid"]
    assert ip.stragglers(table.reset_index(), 2) == ["mid", "big"]
    with pytest.raises(ValueError, match="k must be"):
        ip.stragglers(table.reset_index(), 4)


def test_layer_groups_of_clip_names() -> None:
    assert ip.group_of("visual.conv2.weight") == "visual.stem"
    assert ip.group_of("visual.bn3.bias") == "visual.stem"
    assert ip.group_of("visual.layer2.0.conv1.weight") == "visual.layer2.0"
    assert ip.group_of("visual.transformer.resblocks.3.attn.in_proj_weight") == "visual.transformer.resblocks.3"
    assert ip.group_of("visual.attnpool.k_proj.weight") == "visual.attnpool"
    assert ip.group_of("visual.class_embedding") == "visual.stem"
    assert ip.group_of("head.weight") == "head"


def test_interior_gain_and_tau_over_path() -> None:
    curve = pd.DataFrame({"alpha": [0, 0.5, 1], "ood_acc": [0.4, 0.6, 0.5]})
    assert ip.interior_gain(curve) == pytest.approx(0.1)
    assert ip.interior_gain(curve.assign(ood_acc=[0.4, 0.45, 0.5])) == pytest.approx(-0.05)
    assert ip.interior_gain(curve.assign(ood_acc=[0.3, 0.1 + 0.2, 0.3])) == 0.0  # float rounding is no gain
    assert ip.tau_over_path([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    assert ip.tau_over_path([1, 1, 1], [3, 2, 1]) == 0.0


def test_gain_over_endpoints_compares_with_the_reference_paths_ends() -> None:
    dense = pd.DataFrame({"alpha": [0, 0.5, 1], "ood_acc": [0.40, 0.48, 0.50]})
    # a sparsified path whose own α = 1 end is weak: an interior gain over its own ends, none over θ_ft
    sparse = pd.DataFrame({"alpha": [0, 0.5, 1], "ood_acc": [0.40, 0.47, 0.42]})
    assert ip.interior_gain(sparse) > 0
    assert ip.gain_over_endpoints(sparse, dense) == pytest.approx(-0.03)
    assert ip.gain_over_endpoints(sparse.assign(ood_acc=[0.40, 0.53, 0.42]), dense) == pytest.approx(0.03)


def test_mixed_subset_draws_across_classes_of_class_grouped_data() -> None:
    y = torch.arange(4).repeat_interleave(60)  # as world_task / folder_task deliver them: grouped by class
    x = torch.arange(240.0).unsqueeze(1)
    xs, ys = ip.mixed_subset(x, y, 64, seed=0)
    assert len(ys) == 64 and set(ys.tolist()) == {0, 1, 2, 3} and int(torch.bincount(ys).min()) >= 8
    assert torch.equal(y[xs.squeeze(1).long()], ys)  # pairs stay together
    again = ip.mixed_subset(x, y, 64, seed=0)
    assert torch.equal(again[0], xs) and not torch.equal(ip.mixed_subset(x, y, 64, seed=1)[0], xs)


def test_barrier_closed_forms() -> None:
    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w1 = nn.Linear(1, 2, bias=False)
            self.w2 = nn.Linear(2, 2, bias=False)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.w2(torch.relu(self.w1(x)))

    net = Net()
    x, y = torch.ones(1, 1), torch.tensor([0])
    w2 = torch.tensor([[1.0, 1.0], [0.0, 0.0]])
    zs = {"w1.weight": torch.tensor([[5.0], [-5.0]]), "w2.weight": w2}
    ft = {"w1.weight": torch.tensor([[-5.0], [5.0]]), "w2.weight": w2.clone()}
    groups = {"w1": ip._Members(["w1.weight"]), "w2": ip._Members(["w2.weight"])}
    table = ip.layer_barriers(net, zs, ft, groups, x, y, alphas=[0.0, 0.25, 0.5, 0.75, 1.0]).set_index("group")
    # w1 alone: hidden = relu(±5(1 − 2α)) sums to 0 at α = 0.5 → logits 0 → loss log 2; endpoints log(1 + e^−5)
    assert table.loc["w1", "barrier"] == pytest.approx(math.log(2) - math.log1p(math.exp(-5)), rel=1e-5)
    # w2 has identical endpoints: a flat path has no barrier
    assert table.loc["w2", "barrier"] == pytest.approx(0.0, abs=1e-7)


@pytest.fixture(scope="module")
def folder_fixture(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A labelled image folder: 2 classes (red squares vs blue circles-ish), train/test/two shifts."""
    root = tmp_path_factory.mktemp("imgs")
    splits = (("train", 6, 0), ("test", 3, 0), ("ood_noise", 3, 60), ("ood_dark", 3, -80))
    write_square_folders(root, splits, {"red_thing": (200, 30, 30), "blue_thing": (30, 30, 200)}, size=40)
    return {split: str(root / split) for split, _, _ in splits}


def write_square_folders(root: Path, splits: tuple[tuple[str, int, int], ...], classes: dict[str, tuple[int, int, int]],
                         size: int) -> None:
    """``root/<split>/<class>/<i>.png``: a coloured square on a light ground, brightness shifted per split."""
    rng = np.random.default_rng(0)
    for split, n, shift in splits:
        for cls, colour in classes.items():
            d = root / split / cls
            d.mkdir(parents=True)
            for i in range(n):
                img = np.full((size, size, 3), 240, np.uint8)
                img[size // 4: 3 * size // 4, size // 4: 3 * size // 4] = colour
                img = np.clip(img.astype(int) + shift + rng.integers(-20, 20, img.shape), 0, 255).astype(np.uint8)
                Image.fromarray(img).save(d / f"{i}.png")


def test_real_path_random_open_clip_model_and_image_folders(folder_fixture: dict[str, str]) -> None:
    from cliplab.eval import DEFAULT_TEMPLATES
    from cliplab.models import load_model

    loaded = load_model("cliplab-tiny", seed=0)  # random init, no download
    data = ip.folder_task(loaded, folder_fixture["train"], folder_fixture["test"],
                          [folder_fixture["ood_noise"], folder_fixture["ood_dark"]])
    assert data.classnames == ["blue thing", "red thing"]
    assert data.x_train.shape[1:] == (3, 32, 32) and len(data.y_train) == 12
    assert set(data.ood) == {"ood_noise", "ood_dark"}
    base = ip.zero_shot_classifier(loaded, data.classnames, list(DEFAULT_TEMPLATES))
    assert base.head.weight.shape == (2, loaded.model.visual.output_dim)
    cfg = SharpnessConfig(kind="worst", norm="linf", adaptive=True, rho=0.004, n_iters=1, m=4, n_examples=4)
    res = ip.run_path(base, data, seed=0, steps=2, batch_size=4, lr=1e-3, weight_decay=0.1, alphas=[0.0, 0.5, 1.0],
                      layer_config=cfg, full_configs={"w": cfg}, n_stragglers=2, keep_fractions=[0.3])
    assert list(res.accuracy.alpha) == [0.0, 0.5, 1.0]
    assert res.accuracy[["id_acc", "ood_acc"]].apply(lambda c: c.between(0, 1)).all().all()
    groups = set(res.drift.group)
    assert {"visual.stem", "visual.attnpool", "head"} <= groups
    assert set(res.stragglers) <= groups and len(res.stragglers) == 2
    assert set(res.sharpness.group) == groups | {"all"}
    assert np.isfinite(res.sharpness.loss_sharpness).all()
    assert {"full.w", "straggler_abs"} <= set(res.taus)
    assert res.taus["straggler_abs"] == pytest.approx(
        np.mean([abs(res.taus[f"layer.{g}"]) for g in res.stragglers]))
    flat_ood = res.accuracy.ood_acc.nunique() == 1
    flat_w = res.sharpness[res.sharpness.group == "all"].loss_sharpness.nunique() == 1
    assert res.flat("w") == (flat_ood or flat_w) and ip.n_flat([res, res], "w") == 2 * res.flat("w")
    # the base model is untouched by fine-tuning (a copy is fine-tuned)
    again = ip.zero_shot_classifier(loaded, data.classnames, list(DEFAULT_TEMPLATES))
    assert all(torch.equal(a, b) for a, b in zip(base.state_dict().values(), again.state_dict().values()))
    # same seed, same numbers
    res2 = ip.run_path(base, data, seed=0, steps=2, batch_size=4, lr=1e-3, weight_decay=0.1, alphas=[0.0, 0.5, 1.0],
                       layer_config=cfg, full_configs={"w": cfg}, n_stragglers=2, keep_fractions=[0.3])
    pd.testing.assert_frame_equal(res.accuracy, res2.accuracy)
    pd.testing.assert_frame_equal(res.sharpness, res2.sharpness)


def test_folder_task_rejects_mismatched_classes(folder_fixture: dict[str, str], tmp_path: Path) -> None:
    from cliplab.models import load_model

    other = tmp_path / "other" / "green_thing"
    other.mkdir(parents=True)
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(other / "0.png")
    loaded = load_model("cliplab-tiny", seed=0)
    with pytest.raises(ValueError, match="same class sub-folders"):
        ip.folder_task(loaded, folder_fixture["train"], folder_fixture["test"], [str(tmp_path / "other")])
    with pytest.raises(ValueError, match="ood_dirs is empty"):
        ip.folder_task(loaded, folder_fixture["train"], folder_fixture["test"], [])


@pytest.mark.slow
def test_notebook_part_b_real_path_runs(tmp_path: Path) -> None:
    """The notebook's Part B on image folders written here: a random-init cliplab-tiny saved as a weights file
    (model + pretrained), 3 classes, 36 training images, 9 ID test images and two shifted OOD folders. Part A is
    not run on a real model, and its claims are marked so; the competence guard is overridden (a random model)."""
    import json

    from safetensors.torch import save_file

    from cliplab.eval import DEFAULT_TEMPLATES
    from cliplab.models import load_model
    from cliplab.core.runner import run_paper

    write_square_folders(tmp_path, (("train", 12, 0), ("test", 3, 0), ("bright", 3, 60), ("dim", 3, -80)),
                         {"red_thing": (200, 30, 30), "blue_thing": (30, 30, 200), "green_thing": (30, 200, 30)}, size=32)
    weights = tmp_path / "random.safetensors"
    save_file({k: v.contiguous() for k, v in load_model("cliplab-tiny", seed=3).model.state_dict().items()},
              str(weights))

    result = run_paper("sharpness", smoke=True, root=Path(__file__).resolve().parents[1], out=tmp_path / "out",
                       progress=False,
                       overrides={"model": "cliplab-tiny", "pretrained": str(weights),
                                  "images": str(tmp_path / "train"), "test_images": str(tmp_path / "test"),
                                  "ood_images": [str(tmp_path / "bright"), str(tmp_path / "dim")],
                                  "score_incompetent": True})
    metrics = json.loads((result.out_dir / "metrics.json").read_text())
    scope = json.loads((result.out_dir / "scope.json").read_text())
    assert not any(k.startswith("A.") for k in metrics)  # Part A did not run
    assert set(scope["untestable"]) == {"A-C1", "A-C2", "A-C3", "A-C4"} and scope["competence"]["forced"]
    assert scope["sizes"] == {"classes": 3, "fine-tuning images": 36, "test images": 9, "shifted images": 18}
    part_b = {k: v for k, v in metrics.items() if k.startswith("B.")}
    assert {"B.W1.id_acc_zero_shot", "B.W1.ood_acc_zero_shot", "B.C1.tau_full", "B.C2.tau_straggler",
            "B.C2.tau_other", "B.C3.gain_sparse", "B.C3.sparse_gain_over_dense_ends"} <= set(part_b)
    assert metrics["B.n_seeds"] == 2 and "B.C2.tau_straggler.r1" in part_b  # smoke: two fine-tuning seeds
    assert all(math.isfinite(v) for v in part_b.values())
    # the OOD sets are the folders (named by base name), not the world's shifts
    executed = (result.out_dir / "executed.ipynb").read_text()
    assert "ood_acc_bright" in executed and "ood_acc_dim" in executed and "ood_acc_sketch" not in executed
    # α = 0 is the zero-shot head of the saved weights on the folders: 9 ID test images, 9 per OOD folder
    loaded = load_model("cliplab-tiny", str(weights))
    data = ip.folder_task(loaded, str(tmp_path / "train"), str(tmp_path / "test"),
                          [str(tmp_path / "bright"), str(tmp_path / "dim")])
    base = ip.zero_shot_classifier(loaded, data.classnames, list(DEFAULT_TEMPLATES))
    assert metrics["B.W1.id_acc_zero_shot"] == pytest.approx(ip.accuracy(base, data.x_test, data.y_test))
    ood = np.mean([ip.accuracy(base, x, y) for x, y in data.ood.values()])
    assert metrics["B.W1.ood_acc_zero_shot"] == pytest.approx(ood)
    assert (result.out_dir / "figures" / "accuracy_vs_alpha.png").is_file()


@pytest.mark.parametrize("single_thread", [True, False])
def test_run_path_threads_follow_single_thread(folder_fixture: dict[str, str], single_thread: bool) -> None:
    """A zoo CLIP's path runs on one thread; a real architecture's (single_thread=False) keeps torch's threads."""
    from cliplab.eval import DEFAULT_TEMPLATES
    from cliplab.models import load_model

    loaded = load_model("cliplab-tiny", seed=0)
    data = ip.folder_task(loaded, folder_fixture["train"], folder_fixture["test"], [folder_fixture["ood_noise"]])
    base = ip.zero_shot_classifier(loaded, data.classnames, list(DEFAULT_TEMPLATES))
    seen: set[int] = set()
    base.visual.register_forward_hook(lambda *_: seen.add(torch.get_num_threads()))
    cfg = SharpnessConfig(kind="worst", norm="linf", adaptive=True, rho=0.004, n_iters=1, m=4, n_examples=4)
    previous = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        ip.run_path(base, data, seed=0, steps=1, batch_size=4, lr=1e-3, weight_decay=0.1, alphas=[0.0, 1.0],
                    layer_config=cfg, full_configs={"w": cfg}, n_stragglers=1, keep_fractions=[0.3],
                    single_thread=single_thread)
        assert torch.get_num_threads() == 2  # restored afterwards either way
    finally:
        torch.set_num_threads(previous)
    assert seen == ({1} if single_thread else {2})


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (run it through the device tool)")
def test_run_path_runs_on_the_classifier_device(folder_fixture: dict[str, str]) -> None:
    """Part B on a GPU: the classifier lives on CUDA, the task's tensors stay on the CPU and move per batch."""
    from cliplab.eval import DEFAULT_TEMPLATES
    from cliplab.models import load_model

    loaded = load_model("cliplab-tiny", seed=0, device="cuda")
    data = ip.folder_task(loaded, folder_fixture["train"], folder_fixture["test"], [folder_fixture["ood_noise"]])
    base = ip.zero_shot_classifier(loaded, data.classnames, list(DEFAULT_TEMPLATES), device="cuda")
    assert {p.device.type for p in base.parameters()} == {"cuda"} and data.x_train.device.type == "cpu"
    cfg = SharpnessConfig(kind="worst", norm="linf", adaptive=True, rho=0.004, n_iters=1, m=4, n_examples=4)
    res = ip.run_path(base, data, seed=0, steps=2, batch_size=4, lr=1e-3, weight_decay=0.1, alphas=[0.0, 0.5, 1.0],
                      layer_config=cfg, full_configs={"w": cfg}, n_stragglers=2, keep_fractions=[0.3],
                      single_thread=False)
    assert res.accuracy[["id_acc", "ood_acc"]].apply(lambda c: c.between(0, 1)).all().all()
    assert np.isfinite(res.sharpness.loss_sharpness).all() and np.isfinite(res.barriers.barrier).all()
