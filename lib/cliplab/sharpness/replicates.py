"""Every scored statistic of the sharpness replication, once per independent replicate.

A verdict must survive another seed (issue 22), so each claim is measured over replicates of the randomness
that matters for it and the notebook logs the per-replicate values (``Artifacts.log_replicates``):

* **Part A zoo (A-C1, A-C2, the zoo clause of A-C4):** one replicate = one independent zoo. Replicate seed s
  draws the world (``ZooTask(world_seed=s)``: concepts, images, the training shuffle), the models' seeds
  (init, data order, label noise, augmentation: ``s · MODEL_SEED_STRIDE + i``) and the sharpness noise.
* **Diagonal networks (A-C3):** one replicate = one data draw (X, β*) of ``sparse_regression`` with seed s
  (which also seeds the sharpness noise); the population within it differs in init scale, as before.
* **Part B (B-W1, B-C1, B-C2, B-C3):** one replicate = one fine-tuning seed (one WiSE-FT path).

The statistics per replicate are the same as the single-run ones were; what changed is that the checks are
scored on their spread over replicates (``cliplab.core.replicates``) instead of one value or a bootstrap over
models of one zoo.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from cliplab.sharpness import interpolation as ip
from cliplab.sharpness import zoo as sz
from cliplab.sharpness.diagonal_nets import DiagonalNetsConfig, diagonal_net_population
from cliplab.sharpness.measures import SharpnessConfig
from cliplab.stats import kendall_tau

MODEL_SEED_STRIDE = 1000
"""Model seeds of zoo replicate s are s·1000 + i, so zoos of different replicates never share a model seed."""

DIAG_MEASURES: tuple[str, ...] = ("worst_l2_adaptive", "worst_l2_standard", "average_l2_adaptive")
HEAD_SCALES: tuple[float, ...] = (0.25, 1.0, 4.0, 16.0)


def replicate_seeds(seed: int, n: int) -> list[int]:
    """The seeds of ``n`` independent replicates under root ``seed``: seed, seed + 1, …"""
    if n < 1:
        raise ValueError(f"need at least one replicate, got {n}")
    return [seed + r for r in range(n)]


def stack(per_replicate: Sequence[dict[str, float]]) -> dict[str, list[float]]:
    """One list per key (replicate order) from one dict per replicate; every replicate must have every key."""
    if not per_replicate:
        raise ValueError("no replicates")
    keys = list(per_replicate[0])
    for i, row in enumerate(per_replicate):
        if set(row) != set(keys):
            raise ValueError(f"replicate {i} has keys {sorted(set(row) ^ set(keys))} the first one lacks or has")
    return {k: [float(row[k]) for row in per_replicate] for k in keys}


# ------------------------------------------------------------------------------------------------ Part A zoo


@dataclass
class ZooReplicate:
    """One independent zoo: its seed, table, τ table, per-factor breakdown and the statistics scored on it."""

    seed: int
    data: sz.TaskData
    run: sz.ZooRun
    taus: pd.DataFrame
    breakdown: pd.DataFrame
    head: pd.DataFrame
    metrics: dict[str, float]


def zoo_statistics(table: pd.DataFrame, taus: pd.DataFrame) -> dict[str, float]:
    """A-C1/A-C2 statistics of one zoo: the headline definition's signed τ with targets and factors, the
    median |τ| over all definitions with test error and with the learning rate, and the share of definitions
    with τ(S, OOD error) < 0. Keys are relative (``C1.tau_test_error``, …); the notebook prefixes ``A.``. A τ
    that is undefined (a factor with one level: NaN) is left out."""
    head = taus.loc[sz.HEADLINE]
    stats = {
        "C1.tau_test_error": head["test_error"], "C1.tau_gap": head["gap"], "C1.tau_lr": head["lr"],
        "C1.tau_batch_size": head["batch_size"],
        "C1.median_abs_tau_test_error": float(taus["test_error"].abs().median()),
        "C1.max_abs_tau_test_error": float(taus["test_error"].abs().max()),
        "C1.median_abs_tau_lr": float(taus["lr"].abs().median()),
        "C2.tau_ood_error": head["ood_error"],
        "C2.frac_defs_negative_ood": float((taus["ood_error"] < 0).mean()),
        "zoo.mean_train_error": float(table.train_error.mean()), "zoo.mean_test_error": float(table.test_error.mean()),
        "zoo.mean_ood_error": float(table.ood_error.mean()), "zoo.n_models": float(len(table)),
    }
    return {k: float(v) for k, v in stats.items() if np.isfinite(v)}


def head_scale_statistics(head: pd.DataFrame) -> dict[str, float]:
    """A-C4 zoo clause: relative range (ptp / |mean|) over the head scales of raw and normalised sharpness."""
    out = {}
    for normalized, key in ((True, "C4.zoo_norm_rel_range"), (False, "C4.zoo_raw_rel_range")):
        values = head[head.normalize_logits == normalized].loss_sharpness.to_numpy(float)
        out[key] = float(np.ptp(values) / max(abs(values.mean()), 1e-12))
    return out


def run_zoo_replicate(seed: int, *, n_classes: int, n_train_per_class: int, lrs: Sequence[float],
                      batch_sizes: Sequence[int], weight_decays: Sequence[float], augments: Sequence[bool],
                      label_noises: Sequence[float], arch: str, width: int, epochs: int,
                      definitions: dict[str, SharpnessConfig],
                      head_scales: Sequence[float] = HEAD_SCALES) -> ZooReplicate:
    """Render the world of ``seed``, train and measure its zoo, and compute every Part A zoo statistic.

    The A-C4 zoo clause rescales the last layer of the zoo's first model by each of ``head_scales``.
    """
    data = sz.make_task_data(sz.ZooTask(world_seed=seed, n_classes=n_classes, n_train_per_class=n_train_per_class))
    specs = sz.factor_grid(lrs, batch_sizes, weight_decays, augments, label_noises, seed=seed * MODEL_SEED_STRIDE,
                           arch=arch, width=width, epochs=epochs)
    run = sz.run_zoo(specs, data, definitions, sharpness_seed=seed, keep_models=True, progress=False)
    taus = sz.tau_table(run.table, list(definitions), [*sz.TARGETS, *sz.FACTORS])
    breakdown = sz.factor_breakdown(run.table, [sz.HEADLINE, "average_l2_adaptive_norm"], sz.TARGETS)
    y0 = sz.noisy_labels(data.y_train, specs[0].label_noise, data.n_classes, seed=10_000 + specs[0].seed)
    with sz.single_threaded():
        head = sz.rescaled_head_sharpness(run.models[0], data.x_train, y0, definitions[sz.HEADLINE],
                                          list(head_scales), seed=seed)
    run.models = run.models[:1]
    metrics = zoo_statistics(run.table, taus) | head_scale_statistics(head)
    return ZooReplicate(seed, data, run, taus, breakdown, head, metrics)


def mean_tau_table(replicates: Sequence[ZooReplicate]) -> pd.DataFrame:
    """τ(definition, column) averaged over zoo replicates (NaN where a replicate had a constant column)."""
    return sum(r.taus for r in replicates) / len(replicates)  # type: ignore[return-value]


def mean_factor_taus(replicates: Sequence[ZooReplicate], definition: str = sz.HEADLINE) -> dict[str, float]:
    """Per-factor τ of ``definition`` with each target, averaged over replicates: ``<target>.<factor>`` → τ."""
    frames = [r.breakdown[r.breakdown.definition == definition] for r in replicates]
    pooled = pd.concat(frames).groupby(["target", "factor"]).tau.mean()
    return {f"{t}.{f}": float(v) for (t, f), v in pooled.items() if np.isfinite(v)}


# ------------------------------------------------------------------------------------------------ A-C3


def diagonal_replicate(seed: int, n_nets: int) -> tuple[pd.DataFrame, dict[str, float]]:
    """One data draw's population of diagonal nets and its τ(measure, gap) per measure (A-C3)."""
    diag = diagonal_net_population(DiagonalNetsConfig(n_nets=n_nets, seed=seed))
    stats = {f"C3.tau_{c}_gap": kendall_tau(diag[c], diag.gap) for c in DIAG_MEASURES}
    stats["C3.frac_converged"] = float(diag.converged.mean())
    return diag, stats


# ------------------------------------------------------------------------------------------------ Part B


def straggler_taus(path: ip.PathResult) -> dict[str, float]:
    """Signed τ(S_l, OOD accuracy) averaged over the straggler layers and over the other layer groups.

    The other groups are every layer group that is not a straggler (the head and the stem included): the
    comparison B-C2 needs — do the stragglers track OOD accuracy better than the rest of the network?
    """
    layers = {k.removeprefix("layer."): v for k, v in path.taus.items() if k.startswith("layer.")}
    strag = [layers[g] for g in path.stragglers]
    other = [v for g, v in layers.items() if g not in path.stragglers]
    if not other:
        raise ValueError("every layer group is a straggler; lower n_stragglers")
    return {"C2.tau_straggler": float(np.mean(strag)), "C2.tau_other": float(np.mean(other)),
            "C2.abs_tau_straggler": float(np.mean(np.abs(strag)))}


def path_statistics(path: ip.PathResult, headline: str, claim_keep: float,
                    keep_fractions: Sequence[float]) -> dict[str, float]:
    """Every Part B statistic of one fine-tuning seed's path (keys relative, the notebook prefixes ``B.``)."""
    c = path.accuracy.sort_values("alpha")
    best = c.iloc[1:-1].ood_acc.idxmax() if len(c) > 2 else c.ood_acc.idxmax()
    sparse = path.sparse[path.sparse.keep == claim_keep]
    out = {
        "W1.ood_interior_gain": ip.interior_gain(c), "W1.id_drop_at_best": float(c.id_acc.max() - c.loc[best, "id_acc"]),
        "W1.id_acc_zero_shot": float(c.id_acc.iloc[0]), "W1.id_acc_finetuned": float(c.id_acc.iloc[-1]),
        "W1.ood_acc_zero_shot": float(c.ood_acc.iloc[0]), "W1.ood_acc_finetuned": float(c.ood_acc.iloc[-1]),
        "C1.tau_full": path.taus[f"full.{headline}"],
        "C1.tau_full_average_l2": path.taus["full.average_l2_adaptive_norm"],
        "C1.flat": float(path.flat(headline)),
        "C3.gain_dense": ip.interior_gain(c), "C3.gain_sparse": ip.interior_gain(sparse),
        "C3.sparse_gain_over_dense_ends": ip.gain_over_endpoints(sparse, path.accuracy),
        "C3.best_ood_dense": float(c.ood_acc.max()), "C3.best_ood_sparse": float(sparse.ood_acc.max()),
    }
    for keep in keep_fractions:
        out[f"C3.gain_keep{round(keep * 100)}"] = ip.interior_gain(path.sparse[path.sparse.keep == keep])
    layer_taus = [v for k, v in path.taus.items() if k.startswith("layer.")]
    out["C2.max_abs_tau_layer"] = float(np.max(np.abs(layer_taus)))
    return out | straggler_taus(path)


__all__ = [
    "DIAG_MEASURES", "HEAD_SCALES", "MODEL_SEED_STRIDE", "ZooReplicate", "diagonal_replicate", "head_scale_statistics",
    "mean_factor_taus", "mean_tau_table", "path_statistics", "replicate_seeds", "run_zoo_replicate", "stack",
    "straggler_taus", "zoo_statistics",
]
