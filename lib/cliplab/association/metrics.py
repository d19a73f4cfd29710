"""Single, Two, Two*, third-colour rate and CAB, exactly as the protocol note (`docs/papers/concept_association_bias.md` §2) defines them.

On a table of scored probes (columns ``kind``, ``query_colour``, ``other_colour``, ``predicted``):

* Single = accuracy on single-object controls;
* Two    = P(predicted = the queried object's colour) on two-object images;
* Two*   = P(predicted = the *other* object's colour) on two-object images;
* third  = 1 − Two − Two* (a colour present on neither object);
* CAB    = (1 − Two + Two*) / 2: 0 always correct, 1 always the other object's colour, 0.5 no preference.

Two* is kept separate from 1 − Two (card §5): only Two* measures association-driven fill-in.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import pandas as pd

from cliplab import stats

METRICS: tuple[str, ...] = ("single", "two", "two_star", "third", "cab")
REQUIRED: tuple[str, ...] = ("kind", "query_colour", "other_colour", "predicted")


def cab(two: float, two_star: float) -> float:
    """CAB = (1 − Two + Two*) / 2, after checking 0 ≤ Two, Two* and Two + Two* ≤ 1."""
    if not (0.0 <= two <= 1.0 and 0.0 <= two_star <= 1.0 and two + two_star <= 1.0 + 1e-12):
        raise ValueError(f"need 0 ≤ Two, Two* and Two + Two* ≤ 1, got Two={two}, Two*={two_star}")
    return (1.0 - two + two_star) / 2.0


def cab_metrics(df: pd.DataFrame) -> dict[str, float]:
    """Single, Two, Two*, third and CAB of one table (NaN where a kind has no rows), plus the row counts."""
    _check_table(df)
    two_rows = df[df["kind"] == "two"]
    single_rows = df[df["kind"] == "single"]
    predicted = two_rows["predicted"].to_numpy(dtype=object)
    correct = predicted == two_rows["query_colour"].to_numpy(dtype=object)
    other = predicted == two_rows["other_colour"].to_numpy(dtype=object)
    single = float(np.mean(single_rows["predicted"].to_numpy(dtype=object)
                           == single_rows["query_colour"].to_numpy(dtype=object))) if len(single_rows) else np.nan
    if len(two_rows):
        two, two_star = float(correct.mean()), float(other.mean())
        third = float((~correct & ~other).mean())
        value = cab(two, two_star)
    else:
        two = two_star = third = value = np.nan
    return {"single": single, "two": two, "two_star": two_star, "third": third, "cab": value,
            "n_two": int(len(two_rows)), "n_single": int(len(single_rows))}


def cab_by(df: pd.DataFrame, by: str | Sequence[str]) -> pd.DataFrame:
    """``cab_metrics`` per group (e.g. ``["condition", "seed"]``, or a pair key), one row per group."""
    _check_table(df)
    keys = [by] if isinstance(by, str) else list(by)
    missing = [k for k in keys if k not in df.columns]
    if missing:
        raise ValueError(f"cannot group by {missing}: not columns of the table ({list(df.columns)})")
    rows = []
    for key, group in df.groupby(keys, sort=True, dropna=False):
        values = key if isinstance(key, tuple) else (key,)
        rows.append({**dict(zip(keys, values)), **cab_metrics(group)})
    return pd.DataFrame(rows)


def pair_cab(df: pd.DataFrame) -> pd.DataFrame:
    """CAB per (queried object, its colour, other object, its colour): the unit of the association analysis.

    Only two-object rows are used, so Single is absent; the Spearman with association strength is taken
    over these rows (see :func:`cliplab.association.strength.cab_vs_association`). When the table has a
    ``condition`` column it is part of the key (and kept as a column).
    """
    keys = ["query_concept", "query", "query_colour", "other_concept", "other", "other_colour"]
    if "condition" in df.columns:
        keys = ["condition", *keys]
    two = df[df["kind"] == "two"]
    if two.empty:
        raise ValueError("pair_cab needs two-object rows (kind == 'two')")
    return cab_by(two, keys).drop(columns=["single", "n_single"])


def seed_summary(per_seed: pd.DataFrame, by: str | Sequence[str] = "condition",
                 metrics: Sequence[str] = METRICS, seed: int = 0) -> pd.DataFrame:
    """Mean, SE and 95% bootstrap CI over seeds of each metric, per group (one row per group × metric).

    ``per_seed`` is typically ``cab_by(scored, ["condition", "seed"])``: one row per group and seed.
    """
    keys = [by] if isinstance(by, str) else list(by)
    missing = [c for c in [*keys, *metrics] if c not in per_seed.columns]
    if missing:
        raise ValueError(f"seed_summary: columns {missing} missing from the per-seed table")
    rows: list[dict[str, Any]] = []
    for key, group in per_seed.groupby(keys, sort=True):
        values = key if isinstance(key, tuple) else (key,)
        for metric in metrics:
            x = group[metric].dropna().to_numpy(dtype=float)
            if x.size == 0:
                continue
            mean, se = stats.mean_se(x)
            low, high = stats.bootstrap_ci(x, seed=seed)
            rows.append({**dict(zip(keys, values)), "metric": metric, "n_seeds": int(x.size), "mean": mean,
                         "se": se, "ci_low": low, "ci_high": high})
    return pd.DataFrame(rows)


def _check_table(df: pd.DataFrame) -> None:
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"expected a pandas DataFrame of scored probes, got {type(df).__name__}")
    missing = [c for c in REQUIRED if c not in df.columns]
    if missing:
        raise ValueError(f"scored probe table lacks columns {missing}; score it with run_probes first")
    kinds = set(df["kind"].unique()) - {"two", "single"}
    if kinds:
        raise ValueError(f"kind must be 'two' or 'single', found {sorted(kinds)}")
    two = df[df["kind"] == "two"]
    if two["other_colour"].isna().any():
        raise ValueError("two-object rows need other_colour (the second object's colour)")
    same = two["query_colour"].to_numpy(dtype=object) == two["other_colour"].to_numpy(dtype=object)
    if same.any():
        raise ValueError(f"{int(same.sum())} two-object rows have equal colours on both objects; CAB is only "
                         "defined when the two colours differ (rebuild the probes)")


def cab_ci(df: pd.DataFrame, cluster: str | Sequence[str] = "pair_id", seed: int = 0, n_resamples: int = 1000,
           confidence: float = 0.95) -> dict[str, float]:
    """Two, Two*, CAB of the two-object rows with percentile bootstrap CIs, resampling whole clusters.

    Both questions about one image are correlated, so the resampling unit is a cluster of rows (default one
    probe image, ``pair_id``; pass e.g. ``["model", "pair_id"]`` when several models' tables are pooled).
    Returns ``{two, two_star, cab}`` and ``<name>_ci_low`` / ``<name>_ci_high`` for each.
    """
    _check_table(df)
    keys = [cluster] if isinstance(cluster, str) else list(cluster)
    missing = [k for k in keys if k not in df.columns]
    if missing:
        raise ValueError(f"cannot cluster by {missing}: not columns of the table")
    if not 0 < confidence < 1 or n_resamples < 10:
        raise ValueError("cab_ci needs 0 < confidence < 1 and n_resamples ≥ 10")
    two = df[df["kind"] == "two"]
    if two.empty:
        raise ValueError("cab_ci needs two-object rows (kind == 'two')")
    predicted = two["predicted"].to_numpy(dtype=object)
    per = pd.DataFrame({
        "correct": (predicted == two["query_colour"].to_numpy(dtype=object)).astype(float),
        "other": (predicted == two["other_colour"].to_numpy(dtype=object)).astype(float),
        "n": 1.0,
    })
    sums = per.groupby([two[k].to_numpy() for k in keys], sort=True).sum().to_numpy()  # clusters × (c, o, n)
    point = sums.sum(axis=0)
    out = _two_cab(point)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(sums), size=(int(n_resamples), len(sums)))
    boot = sums[idx].sum(axis=1)  # resamples × 3
    draws = {"two": boot[:, 0] / boot[:, 2], "two_star": boot[:, 1] / boot[:, 2]}
    draws["cab"] = (1 - draws["two"] + draws["two_star"]) / 2
    tail = 100 * (1 - confidence) / 2
    for name, values in draws.items():
        low, high = np.percentile(values, [tail, 100 - tail])
        out[f"{name}_ci_low"], out[f"{name}_ci_high"] = float(low), float(high)
    return out


def _two_cab(sums: np.ndarray) -> dict[str, float]:
    two, two_star = float(sums[0] / sums[2]), float(sums[1] / sums[2])
    return {"two": two, "two_star": two_star, "cab": cab(two, two_star)}
