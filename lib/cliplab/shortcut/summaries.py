"""Summaries over seeds: mean, SE, Student-t CIs, per-seed slopes, and the metrics the claims read."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from cliplab import stats


def summarise(df: pd.DataFrame, by: Sequence[str], value: str = "bias") -> pd.DataFrame:
    """Mean ± SE over seeds, Student-t 95% CI (``stats.t_ci``) and fraction of positive values, per group of ``by``.

    When a group holds several rows per seed (e.g. all cells of an architecture), rows are first averaged
    within seed: seeds are the independent replicates (cells share a seed's noise, see make_data).
    """
    missing = [c for c in [*by, value, "seed"] if c not in df.columns]
    if missing:
        raise ValueError(f"columns {missing} not in the frame (have {list(df.columns)})")
    if df.empty:
        raise ValueError("empty frame: nothing to summarise")
    per_seed = df.groupby([*by, "seed"], as_index=False)[value].mean()
    out = []
    for key, group in per_seed.groupby(list(by), sort=True):
        vals = group[value].to_numpy(dtype=float)
        mean, se = stats.mean_se(vals) if len(vals) > 1 else (float(vals[0]), float("nan"))
        lo, hi = stats.t_ci(vals) if len(vals) > 1 else (float("nan"), float("nan"))
        key = key if isinstance(key, tuple) else (key,)
        out.append({**dict(zip(by, key)), "mean": mean, "se": se, "ci_low": lo, "ci_high": hi,
                    "frac_positive": float(np.mean(vals > 0)), "n_seeds": len(vals)})
    return pd.DataFrame(out)


def seed_slopes(df: pd.DataFrame, x: str, value: str = "bias") -> np.ndarray:
    """Least-squares slope of ``value`` on ``x`` within each seed (pooling that seed's rows): one number per seed.

    Seeds are the independent replicates, so a CI over these slopes is an honest trend test.
    """
    missing = [c for c in (x, value, "seed") if c not in df.columns]
    if missing:
        raise ValueError(f"columns {missing} not in the frame")
    slopes = []
    for _, group in df.groupby("seed", sort=True):
        if group[x].nunique() < 2:
            raise ValueError(f"seed group has a single {x} value; a slope needs at least two")
        slopes.append(np.polyfit(group[x].to_numpy(float), group[value].to_numpy(float), 1)[0])
    return np.asarray(slopes)


def seed_means(df: pd.DataFrame, value: str = "bias") -> np.ndarray:
    """Mean of ``value`` within each seed (pooling that seed's rows/cells): one number per seed."""
    if df.empty:
        raise ValueError("empty frame: no rows to pool (check the sweep parameters)")
    return df.groupby("seed", sort=True)[value].mean().to_numpy(float)


def ci_metrics(key: str, per_seed: np.ndarray) -> dict[str, float]:
    """{key: mean, key_se, key_ci_low, key_ci_high} over per-seed values (mean ± SE and Student-t 95% CI)."""
    mean, se = stats.mean_se(per_seed)
    lo, hi = stats.t_ci(per_seed)
    return {key: mean, f"{key}_se": se, f"{key}_ci_low": lo, f"{key}_ci_high": hi}
