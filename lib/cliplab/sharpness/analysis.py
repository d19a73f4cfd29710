"""Rank correlation of sharpness with generalisation, overall and per factor (granulated Kendall τ).

Across a population of models, τ(sharpness, target) mixes the effects of every hyperparameter that varies.
The per-factor breakdown (Jiang et al. 2020, "Fantastic generalization measures", eq. 4) isolates one
factor: for each combination of the *other* factors' values, τ is computed over the models that differ only
in that factor, and the τ's are averaged. Its sign can differ between factors (card §6, "factor dependence").
τ itself is ``cliplab.stats.kendall_tau`` (τ-b, which equals the paper's τ-a without ties).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from cliplab.stats import kendall_tau


def _tau_or_nan(s: pd.Series, t: pd.Series) -> float:
    if len(s) < 2 or s.nunique() < 2 or t.nunique() < 2:
        return float("nan")
    return kendall_tau(s.to_numpy(float), t.to_numpy(float))


def tau_by_factor(df: pd.DataFrame, sharpness_col: str, target_col: str,
                  factor_cols: Sequence[str]) -> pd.DataFrame:
    """Overall τ and, per factor, the mean τ over groups where only that factor varies.

    Returns one row for ``"all"`` and one per factor, with columns factor, tau, n_groups (groups with a
    defined τ: ≥ 2 models and neither column constant), n_models (models in those groups). A factor with no
    usable group gets τ = NaN.
    """
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"df must be a pandas DataFrame, got {type(df).__name__}")
    missing = [c for c in (sharpness_col, target_col, *factor_cols) if c not in df.columns]
    if missing:
        raise ValueError(f"columns {missing} are not in the table (it has {list(df.columns)})")
    if df.empty:
        raise ValueError("the table is empty")
    values = df[[sharpness_col, target_col]].to_numpy(float)
    if not np.all(np.isfinite(values)):
        raise ValueError(f"{sharpness_col!r} or {target_col!r} contains NaN or inf; drop those rows first")
    rows = [{"factor": "all", "tau": _tau_or_nan(df[sharpness_col], df[target_col]),
             "n_groups": 1, "n_models": len(df)}]
    for factor in factor_cols:
        others = [c for c in factor_cols if c != factor]
        groups = df.groupby(others, dropna=False) if others else [((), df)]
        taus, n_models = [], 0
        for _, g in groups:
            tau = _tau_or_nan(g[sharpness_col], g[target_col]) if g[factor].nunique() > 1 else float("nan")
            if np.isfinite(tau):
                taus.append(tau)
                n_models += len(g)
        rows.append({"factor": factor, "tau": float(np.mean(taus)) if taus else float("nan"),
                     "n_groups": len(taus), "n_models": n_models})
    return pd.DataFrame(rows)
