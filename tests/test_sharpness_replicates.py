"""The per-replicate statistics of the sharpness replication (``cliplab.sharpness.replicates``)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from cliplab.sharpness import interpolation as ip
from cliplab.sharpness import replicates as rp
from cliplab.sharpness import zoo as sz


def test_replicate_seeds_and_stack() -> None:
    assert rp.replicate_seeds(3, 4) == [3, 4, 5, 6]
    with pytest.raises(ValueError):
        rp.replicate_seeds(0, 0)
    assert rp.stack([{"a": 1, "b": 2}, {"a": 3, "b": 4}]) == {"a": [1.0, 3.0], "b": [2.0, 4.0]}
    with pytest.raises(ValueError, match="keys"):
        rp.stack([{"a": 1}, {"b": 2}])


def _path(layer_taus: dict[str, float], stragglers: list[str]) -> ip.PathResult:
    alphas = [0.0, 0.5, 1.0]
    acc = pd.DataFrame({"alpha": alphas, "id_acc": [0.5, 0.8, 0.9], "ood_acc": [0.4, 0.5, 0.45]})
    sharp = pd.DataFrame({"alpha": alphas, "group": "all", "definition": sz.HEADLINE,
                          "loss_sharpness": [0.1, 0.2, 0.3]})
    sparse = acc.assign(ood_acc=[0.4, 0.55, 0.5], keep=0.3)
    taus = {f"full.{sz.HEADLINE}": -0.2, "full.average_l2_adaptive_norm": 0.1,
            **{f"layer.{g}": t for g, t in layer_taus.items()}}
    return ip.PathResult(0, acc, sharp, pd.DataFrame(), pd.DataFrame(), stragglers, sparse, taus)


def test_straggler_taus_are_signed_and_compared_with_the_other_layers() -> None:
    path = _path({"a": -1.0, "b": -0.6, "c": 0.2, "d": 0.4}, ["a", "b"])
    out = rp.straggler_taus(path)
    assert out["C2.tau_straggler"] == pytest.approx(-0.8)
    assert out["C2.tau_other"] == pytest.approx(0.3)
    assert out["C2.abs_tau_straggler"] == pytest.approx(0.8)
    # opposite signs among stragglers do not add up to a strong signed τ
    assert rp.straggler_taus(_path({"a": -1.0, "b": 1.0, "c": 0.0}, ["a", "b"]))["C2.tau_straggler"] == 0.0
    with pytest.raises(ValueError, match="every layer group"):
        rp.straggler_taus(_path({"a": -1.0}, ["a"]))


def test_path_statistics_of_one_seed() -> None:
    out = rp.path_statistics(_path({"a": -1.0, "b": 0.5}, ["a"]), sz.HEADLINE, 0.3, [0.3])
    assert out["W1.ood_interior_gain"] == pytest.approx(0.05)
    assert out["W1.id_drop_at_best"] == pytest.approx(0.1)
    assert out["C1.tau_full"] == -0.2 and out["C1.flat"] == 0.0
    assert out["C3.gain_dense"] == pytest.approx(0.05) and out["C3.gain_keep30"] == pytest.approx(0.05)
    assert out["C3.sparse_gain_over_dense_ends"] == pytest.approx(0.1)
    assert out["C2.max_abs_tau_layer"] == 1.0 and out["C2.tau_other"] == 0.5


def test_zoo_statistics_read_the_headline_row_and_medians() -> None:
    defs = [sz.HEADLINE, "other"]
    taus = pd.DataFrame({"test_error": [0.1, -0.5], "gap": [0.0, 0.0], "ood_error": [-0.2, 0.3],
                         "lr": [-0.6, 0.2], "batch_size": [0.3, 0.0]}, index=defs)
    table = pd.DataFrame({"train_error": [0.1, 0.3], "test_error": [0.2, 0.4], "ood_error": [0.5, 0.7]})
    out = rp.zoo_statistics(table, taus)
    assert out["C1.tau_test_error"] == 0.1 and out["C1.tau_lr"] == -0.6
    assert out["C1.median_abs_tau_test_error"] == pytest.approx(0.3)
    assert out["C1.median_abs_tau_lr"] == pytest.approx(0.4)
    assert out["C2.frac_defs_negative_ood"] == 0.5 and out["zoo.n_models"] == 2


def test_head_scale_statistics_relative_ranges() -> None:
    head = pd.DataFrame({"scale": [1, 2, 1, 2], "normalize_logits": [True, True, False, False],
                         "loss_sharpness": [0.2, 0.2, 0.1, 0.3]})
    out = rp.head_scale_statistics(head)
    assert out["C4.zoo_norm_rel_range"] == 0.0 and out["C4.zoo_raw_rel_range"] == pytest.approx(1.0)


def test_zoo_replicates_are_independent_and_deterministic() -> None:
    kwargs = dict(n_classes=3, n_train_per_class=12, lrs=[0.01, 0.03], batch_sizes=[16], weight_decays=[0.0],
                  augments=[False], label_noises=[0.0, 0.2], arch="mlp", width=2, epochs=1,
                  definitions=sz.sharpness_definitions(n_examples=16, m=16, n_iters=1, n_samples=2))
    a, b, a2 = (rp.run_zoo_replicate(s, **kwargs) for s in (0, 1, 0))
    assert set(a.run.table.seed) == {0, 1, 2, 3} and set(b.run.table.seed) == {1000, 1001, 1002, 1003}
    assert not np.allclose(a.run.table[sz.HEADLINE], b.run.table[sz.HEADLINE])
    assert a.metrics == a2.metrics and "C1.tau_batch_size" not in a.metrics  # one batch size: τ undefined
    assert set(a.metrics) >= {"C1.tau_test_error", "C2.tau_ood_error", "C4.zoo_raw_rel_range"}
    assert len(a.run.models) == 1
    mean = rp.mean_tau_table([a, b])
    assert mean.loc[sz.HEADLINE, "lr"] == pytest.approx((a.taus.loc[sz.HEADLINE, "lr"] + b.taus.loc[sz.HEADLINE, "lr"]) / 2)
    assert all(np.isfinite(v) for v in rp.mean_factor_taus([a, b]).values())


def test_diagonal_replicates_differ_by_data_seed() -> None:
    d0, s0 = rp.diagonal_replicate(0, 4)
    d1, _ = rp.diagonal_replicate(1, 4)
    assert set(s0) == {f"C3.tau_{c}_gap" for c in rp.DIAG_MEASURES} | {"C3.frac_converged"}
    assert not np.allclose(d0.gap, d1.gap)
