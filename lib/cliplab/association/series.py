"""Per-replicate values of the claims' statistics: what the notebook logs with ``Artifacts.log_replicates``.

The claims are scored over independent replicates (``cliplab.core.replicates``), so each statistic is computed
once per replicate, never pooled first:

* C1, C2 (zero-shot CAB and its link to association strength): one replicate per zoo CLIP of one recipe
  (world seed and model seed vary together; :func:`model_series`). A model of another recipe (``small-s0``)
  is scored the same way but reported beside the series (:func:`model_summary`), never inside it.
* C4 (VQA heads): one replicate per head seed; each seed trains every variant and gives its own Spearman
  ρ(CAB, VQA accuracy) over the variants (:func:`head_seed_series`).

A rank correlation that is undefined (one side constant) is recorded as 0 (no evidence of a link) with a
``*_defined`` flag of 0 for that replicate, so every series stays finite.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from cliplab import stats
from cliplab.association.metrics import METRICS, cab_metrics
from cliplab.association.vqa import VARIANTS, cab_vqa_rank_correlation

OTHER_CONDITIONS: tuple[str, ...] = ("unnatural", "weak")


def _spearman_or_zero(x: pd.Series, y: pd.Series) -> tuple[float, float]:
    """(ρ, 1.0), or (0.0, 0.0) when ρ is undefined (fewer than 3 rows or a constant side)."""
    valid = pd.DataFrame({"x": x, "y": y}).dropna()
    if len(valid) < 3 or valid.x.nunique() < 2 or valid.y.nunique() < 2:
        return 0.0, 0.0
    return stats.spearman(valid.x, valid.y), 1.0


def model_summary(scored: pd.DataFrame, per_pair: pd.DataFrame, model: str) -> dict[str, float]:
    """One model's statistics: ``<metric>_<condition>`` for every condition and the Spearman ρ of its pairs.

    ``scored`` holds :func:`~cliplab.association.run_probes` rows with a ``model`` column; ``per_pair`` the
    :func:`~cliplab.association.cab_vs_association` table (``which="pair"``) of the same models, with ``model``.
    ρ pools the model's pairs over conditions (per-pair CAB vs the pair's association strength).
    """
    rows = scored[scored["model"] == model]
    if rows.empty:
        raise ValueError(f"no scored probes of model {model!r}")
    out: dict[str, float] = {}
    for condition, group in rows.groupby("condition", sort=True):
        values = cab_metrics(group)
        out.update({f"{metric}_{condition}": float(values[metric]) for metric in METRICS})
    pairs = per_pair[per_pair["model"] == model]
    out["spearman_assoc"], out["spearman_defined"] = _spearman_or_zero(pairs["cab"], pairs["association"])
    for side in ("query", "other"):
        out[f"spearman_assoc_{side}"], _ = _spearman_or_zero(pairs["cab"], pairs[f"{side}_association"])
    out["n_pairs"] = float(len(pairs))
    return out


def model_series(scored: pd.DataFrame, per_pair: pd.DataFrame, models: Sequence[str]) -> dict[str, list[float]]:
    """The C1 / C2 series over ``models`` (one replicate each, in order), for ``Artifacts.log_replicates``.

    C1 reads the natural condition (``C1.single_natural``, ``C1.two_natural``, ``C1.two_star_natural``,
    ``C1.third_natural``, ``C1.cab_natural``); C2 every condition's metrics (``C2.cab_natural``,
    ``C2.two_unnatural``, ...), the Spearman ρ of per-pair CAB with association strength
    (``C2.spearman_assoc``, and its ``_query`` / ``_other`` sides) and ``C2.spearman_defined``.
    """
    if len(models) < 1 or len(set(models)) != len(models):
        raise ValueError(f"models must be a non-empty list of distinct names, got {list(models)!r}")
    summaries = [model_summary(scored, per_pair, m) for m in models]
    missing = [f"natural_{m}" for m, s in zip(models, summaries) if "cab_natural" not in s]
    if missing:
        raise ValueError(f"no natural-condition probes for {missing}; C1 needs them")
    series: dict[str, list[float]] = {}
    for metric in METRICS:
        series[f"C1.{metric}_natural"] = [s[f"{metric}_natural"] for s in summaries]
    conditions = ("natural", *(c for c in OTHER_CONDITIONS if all(f"cab_{c}" in s for s in summaries)))
    for condition in conditions:
        for metric in METRICS:
            series[f"C2.{metric}_{condition}"] = [s[f"{metric}_{condition}"] for s in summaries]
    for key in ("spearman_assoc", "spearman_assoc_query", "spearman_assoc_other", "spearman_defined", "n_pairs"):
        series[f"C2.{key}"] = [s[key] for s in summaries]
    return series


def fold_series(scored: pd.DataFrame, folds: int, condition: str = "natural") -> dict[str, list[float]]:
    """C1's series on one model (your CLIP): disjoint folds of the probe pairs (pair_id mod ``folds``) of
    ``condition`` are the replicates, each fold's pairs with their single-object controls."""
    if folds < 2:
        raise ValueError(f"folds must be ≥ 2, got {folds}")
    rows = scored[scored["condition"] == condition]
    if rows.empty:
        raise ValueError(f"no {condition!r} probes: C1 needs photos labelled {condition!r} (a condition column)")
    per_fold = [cab_metrics(rows[rows["pair_id"] % folds == k]) for k in range(folds)]
    return {f"C1.{metric}_{condition}": [float(f[metric]) for f in per_fold] for metric in METRICS}


def transformer_variants(variants: Sequence[str]) -> list[str]:
    """The variants whose head is a Transformer over both encoders' tokens (``layers > 0``)."""
    return [v for v in variants if VARIANTS[v].layers > 0]


def head_seed_series(sweep: pd.DataFrame) -> dict[str, list[float]]:
    """The C4 series over head seeds (one replicate per ``seed`` of a :func:`variant_sweep` table, in order).

    Per seed: ``C4.spearman_cab_vqa`` (ρ(CAB, VQA accuracy) over that seed's variants), ``C4.spearman_defined``,
    ``C4.cab_transformer_heads`` (mean CAB of its Transformer heads; NaN-free only when there are some) and,
    for every variant ``v``, ``C4.vqa_<v>``, ``C4.cab_<v>``, ``C4.two_<v>``, ``C4.two_star_<v>``.
    """
    if sweep.empty or not {"seed", "variant", "cab", "vqa_accuracy", "two", "two_star"} <= set(sweep.columns):
        raise ValueError("sweep must be a non-empty variant_sweep table with seed, variant, cab, vqa_accuracy")
    variants = list(dict.fromkeys(sweep["variant"]))
    seeds = list(dict.fromkeys(sweep["seed"]))
    heads = transformer_variants(variants)
    series: dict[str, list[float]] = {"C4.spearman_cab_vqa": [], "C4.spearman_defined": []}
    if heads:
        series["C4.cab_transformer_heads"] = []
    for seed in seeds:
        runs = sweep[sweep["seed"] == seed].set_index("variant")
        if sorted(runs.index) != sorted(variants):
            raise ValueError(f"head seed {seed} lacks variants {sorted(set(variants) - set(runs.index))}")
        rho = cab_vqa_rank_correlation(runs.reset_index())
        defined = bool(np.isfinite(rho))
        series["C4.spearman_cab_vqa"].append(rho if defined else 0.0)
        series["C4.spearman_defined"].append(float(defined))
        if heads:
            series["C4.cab_transformer_heads"].append(float(runs.loc[heads, "cab"].mean()))
        for v in variants:
            for column, name in (("vqa_accuracy", "vqa"), ("cab", "cab"), ("two", "two"), ("two_star", "two_star")):
                series.setdefault(f"C4.{name}_{v}", []).append(float(runs.loc[v, column]))
    return series


def head_summary(sweep: pd.DataFrame) -> dict[str, float]:
    """Scalars beside the C4 series: counts, and the range over variants of the seed-mean VQA accuracy and CAB."""
    means = sweep.groupby("variant")[["vqa_accuracy", "cab"]].mean()
    return {"C4.n_variants": float(len(means)), "C4.n_seeds": float(sweep["seed"].nunique()),
            "C4.vqa_min": float(means.vqa_accuracy.min()), "C4.vqa_max": float(means.vqa_accuracy.max()),
            "C4.cab_min": float(means.cab.min()), "C4.cab_max": float(means.cab.max())}


def model_metrics(scored: pd.DataFrame, per_pair: pd.DataFrame, models: Sequence[str]) -> dict[str, float]:
    """``model.<name>.<condition>.<metric>`` and ``model.<name>.spearman_assoc`` for every model ('-' as '_').

    Written for the series' models and for those reported beside them (another recipe), so each model's own
    numbers can be read off ``metrics.json``.
    """
    out: dict[str, float] = {}
    for model in models:
        name = model.replace("-", "_")
        rows = scored[scored["model"] == model]
        for condition, group in rows.groupby("condition", sort=True):
            values = cab_metrics(group)
            out.update({f"model.{name}.{condition}.{metric}": float(values[metric]) for metric in METRICS})
        out[f"model.{name}.spearman_assoc"] = model_summary(scored, per_pair, model)["spearman_assoc"]
    return out
