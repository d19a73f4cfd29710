"""Part A of the sharpness replication: the zoo's factors, training, labels, augmentation and τ analysis."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from scipy import stats as sps

from cliplab.sharpness import zoo as sz
from cliplab.sharpness.measures import SharpnessConfig, sharpness


@pytest.fixture(scope="module")
def data() -> sz.TaskData:
    return sz.make_task_data(sz.ZooTask(n_classes=4, n_train_per_class=16, n_test_per_class=4, n_ood_per_class=3))


def test_factor_grid_is_a_full_factorial_with_distinct_seeds() -> None:
    specs = sz.factor_grid([0.01, 0.1], [32, 64], [0.0, 1e-3], [False, True], [0.0, 0.2], replicates=2, seed=5)
    assert len(specs) == 2 * 2 * 2 * 2 * 2 * 2
    combos = [(s.lr, s.batch_size, s.weight_decay, s.augment, s.label_noise) for s in specs]
    expected = set(itertools.product([0.01, 0.1], [32, 64], [0.0, 1e-3], [False, True], [0.0, 0.2]))
    assert set(combos) == expected
    assert all(combos.count(c) == 2 for c in expected)  # each cell once per replicate
    assert sorted(s.seed for s in specs) == list(range(5, 5 + len(specs)))
    with pytest.raises(ValueError, match="repeated levels"):
        sz.factor_grid([0.1, 0.1], [32], [0.0], [False], [0.0])
    with pytest.raises(ValueError, match="at least one level"):
        sz.factor_grid([], [32], [0.0], [False], [0.0])


def test_model_spec_rejects_bad_values() -> None:
    with pytest.raises(ValueError, match="arch"):
        sz.ModelSpec(arch="vit")
    with pytest.raises(ValueError, match="label_noise"):
        sz.ModelSpec(label_noise=1.0)
    with pytest.raises(ValueError, match="lr"):
        sz.ModelSpec(lr=0.0)


def test_noisy_labels_flip_exactly_the_fraction_to_other_classes() -> None:
    y = torch.arange(200) % 10
    noisy = sz.noisy_labels(y, 0.25, 10, seed=3)
    changed = noisy != y
    assert int(changed.sum()) == 50  # every chosen label goes to a *different* class
    assert int(noisy.min()) >= 0 and int(noisy.max()) < 10
    assert torch.equal(noisy, sz.noisy_labels(y, 0.25, 10, seed=3))
    assert torch.equal(sz.noisy_labels(y, 0.0, 10, seed=3), y)


def test_augment_batch_is_a_flip_and_shift_of_the_input() -> None:
    x = torch.arange(2 * 3 * 8 * 8, dtype=torch.float32).view(2, 3, 8, 8)
    out = sz.augment_batch(x, torch.Generator().manual_seed(0), max_shift=0)
    for i in range(2):  # with no shift, each image is itself or its mirror image
        assert torch.equal(out[i], x[i]) or torch.equal(out[i], x[i].flip(-1))
    out = sz.augment_batch(x, torch.Generator().manual_seed(1), max_shift=2)
    assert out.shape == x.shape
    # interior pixels of a shifted image are pixels of the original or of its mirror image
    values = set(x.flatten().tolist())
    assert set(out.flatten().tolist()) <= values


def test_task_data_is_deterministic_balanced_and_standardised(data: sz.TaskData) -> None:
    again = sz.make_task_data(sz.ZooTask(n_classes=4, n_train_per_class=16, n_test_per_class=4, n_ood_per_class=3))
    assert torch.equal(data.x_train, again.x_train) and torch.equal(data.y_train, again.y_train)
    assert data.x_train.shape == (64, 3, 16, 16)
    assert torch.bincount(data.y_train).tolist() == [16] * 4
    assert set(data.ood) == set(sz.OOD_DOMAINS)
    assert torch.allclose(data.x_train.mean(dim=(0, 2, 3)), torch.zeros(3), atol=1e-4)
    assert data.y_train[:8].unique().numel() > 1  # shuffled: the first batch mixes classes


def test_batched_mlp_training_equals_torch_sgd(data: sz.TaskData) -> None:
    spec = sz.ModelSpec(lr=0.02, batch_size=16, weight_decay=1e-3, augment=True, label_noise=0.25, seed=7, epochs=2,
                        width=2)
    other = sz.ModelSpec(lr=0.05, batch_size=16, weight_decay=0.0, seed=8, epochs=2, width=2)
    ref, y_ref = sz.train_model(spec, data)  # torch.optim.SGD on an nn.Sequential
    (batched, y_b), _ = sz.train_mlps([spec, other], data)
    assert torch.equal(y_ref, y_b)
    for p, q in zip(ref.parameters(), batched.parameters()):
        torch.testing.assert_close(p, q, atol=1e-5, rtol=1e-4)
    with pytest.raises(ValueError, match="sharing"):
        sz.train_mlps([spec, sz.ModelSpec(batch_size=32)], data)


def test_run_zoo_is_deterministic_and_complete(data: sz.TaskData) -> None:
    specs = sz.factor_grid([0.01, 0.05], [16], [0.0], [False], [0.0, 0.25], epochs=2, width=2)
    defs = sz.sharpness_definitions(n_examples=32, m=16, n_iters=2, n_samples=3)
    assert len(defs) == 16 and sz.HEADLINE in defs
    a = sz.run_zoo(specs, data, defs, progress=False).table
    b = sz.run_zoo(specs, data, defs, progress=False).table
    pd.testing.assert_frame_equal(a, b)
    assert len(a) == 4 and set(defs) <= set(a.columns)
    np.testing.assert_allclose(a.gap, a.test_error - a.train_error)
    np.testing.assert_allclose(a.ood_error, a[[f"ood_error_{d}" for d in sz.OOD_DOMAINS]].mean(axis=1))
    with pytest.raises(ValueError, match="first 4096 training points"):
        sz.run_zoo(specs, data, sz.sharpness_definitions(n_examples=4096, m=128), progress=False)


def test_tau_table_and_bootstrap_match_scipy() -> None:
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"s": rng.normal(size=30), "t": rng.normal(size=30), "c": np.ones(30)})
    table = sz.tau_table(df, ["s"], ["t", "c"])
    assert table.loc["s", "t"] == pytest.approx(sps.kendalltau(df.s, df.t).statistic)
    assert np.isnan(table.loc["s", "c"])  # constant column: τ undefined
    lo, hi = sz.bootstrap_tau(df.s.to_numpy(), df.s.to_numpy() * 2 + 1, n_resamples=50)
    assert lo == pytest.approx(1.0) and hi == pytest.approx(1.0)  # monotone relation: τ = 1 in every resample
    lo, hi = sz.bootstrap_tau(df.s.to_numpy(), df.t.to_numpy(), n_resamples=200)
    assert lo < table.loc["s", "t"] < hi


def test_factor_breakdown_recovers_opposite_signs() -> None:
    # sharpness rises with lr; test error rises with lr but falls with augmentation while sharpness rises too
    rows = [{"lr": lr, "batch_size": 32, "weight_decay": 0.0, "augment": aug, "label_noise": 0.0,
             "S": lr + 10 * aug, "test_error": lr - 10 * aug, "gap": 0.0, "ood_error": 0.0}
            for lr in (1, 2, 3) for aug in (0, 1)]
    df = pd.DataFrame(rows)
    out = sz.factor_breakdown(df, ["S"], ["test_error"])
    tau = out.set_index("factor").tau
    assert tau["lr"] == pytest.approx(1.0) and tau["augment"] == pytest.approx(-1.0)
    assert "batch_size" not in tau.index  # a single level: not a factor here


def test_rescaled_head_normalised_sharpness_is_scale_invariant(data: sz.TaskData) -> None:
    model, y = sz.train_model(sz.ModelSpec(batch_size=16, epochs=1, width=2, seed=1), data)
    before = [p.detach().clone() for p in model.parameters()]
    cfg = SharpnessConfig(kind="worst", norm="linf", adaptive=True, rho=0.01, n_iters=3, m=32, n_examples=32)
    table = sz.rescaled_head_sharpness(model, data.x_train, y, cfg, [0.5, 1.0, 8.0])
    norm = table[table.normalize_logits].loss_sharpness.to_numpy()
    raw = table[~table.normalize_logits].loss_sharpness.to_numpy()
    np.testing.assert_allclose(norm, norm[0], rtol=1e-4, atol=1e-7)
    assert np.ptp(raw) > 1e-3
    assert all(torch.equal(p, q) for p, q in zip(before, model.parameters()))  # model restored


def test_single_threaded_restores_thread_count() -> None:
    before = torch.get_num_threads()
    with sz.single_threaded():
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
