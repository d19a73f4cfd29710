"""Summaries over seeds: mean, SE, Student-t CIs, per-seed slopes, and the per-seed series the claims score.

Each seed is one replicate of the data (embedding, latents, probes, init). The ``*_replicates`` functions
return, per metric key, one value per seed in seed order, for ``Artifacts.log_replicates``.
"""

from __future__ import annotations

from collections.abc import Sequence

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


def seed_cell(df: pd.DataFrame, value: str, **cell: float) -> np.ndarray:
    """``value`` of the one row per seed at ``cell`` (column == value for each keyword), ordered by seed."""
    rows = df
    for column, wanted in cell.items():
        rows = rows[np.isclose(rows[column].to_numpy(float), float(wanted))]
    if rows.empty or rows.seed.duplicated().any():
        raise ValueError(f"cell {cell}: expected one row per seed, found {len(rows)} rows")
    return rows.sort_values("seed")[value].to_numpy(float)


def _same_seeds(*frames: pd.DataFrame) -> None:
    seeds = [tuple(sorted(f.seed.unique())) for f in frames]
    if len(set(seeds)) != 1:
        raise ValueError(f"replicate series must share one seed list; got {seeds}")


def grid_replicates(main: pd.DataFrame) -> dict[str, np.ndarray]:
    """Per-seed bias pooled over the main grid (C1's linear/ReLU/Tanh, C3's linear-activation MLP).

    Each seed is one replicate: fresh embedding, latents, probes and init (cells share a seed's noise).
    """
    frames = {arch: main[main.arch == arch] for arch in ("linear", "relu", "tanh", "mlp_linear")}
    _same_seeds(*frames.values())
    keys = {"linear": "C1.bias_linear", "relu": "C1.bias_relu", "tanh": "C1.bias_tanh",
            "mlp_linear": "C3.bias_mlp_linear"}
    out = {keys[arch]: seed_means(frame) for arch, frame in frames.items()}
    out.update({f"C1.acc_model_{a}": seed_means(frames[a], "acc_model") for a in ("linear", "relu", "tanh")})
    out["C1.acc_lda"] = seed_means(frames["linear"], "acc_lda")
    return out


def depth_replicates(depth_df: pd.DataFrame, rho_s: float, alpha_s: float) -> dict[str, np.ndarray]:
    """Per-seed ReLU bias by depth and its slope over depth (C3), and the deepest model at (ρ_s, α_s) (C2)."""
    depths = sorted(depth_df.depth.unique())
    _same_seeds(*(depth_df[depth_df.depth == k] for k in depths))
    out = {f"C3.bias_depth{k}": seed_means(depth_df[depth_df.depth == k]) for k in depths}
    out["C3.depth_slope"] = seed_slopes(depth_df, "depth")
    cell = {"rho_s": rho_s, "alpha_s": alpha_s, "depth": max(depths)}
    for value, key in (("reliance_model", "reliance_deep"), ("reliance_lda", "reliance_lda"), ("bias", "bias_deep"),
                       ("acc_model", "acc_model"), ("acc_lda", "acc_lda")):
        out[f"C2.{key}"] = seed_cell(depth_df, value, **cell)
    return out


def kernel_replicates(kern: pd.DataFrame, min_alpha: float = 2.0) -> dict[str, np.ndarray]:
    """Per-seed kernel-machine bias (C5): linear over the grid; NTK and arc-cosine where α_s ≥ ``min_alpha``,
    and their least-squares slope over α_s (all cells)."""
    out = {"C5.bias_kernel_linear": seed_means(kern[kern.arch == "kernel_linear"])}
    for name, arch in (("ntk", "kernel_ntk_relu"), ("arccos1", "kernel_arccos1")):
        rows = kern[kern.arch == arch]
        out[f"C5.bias_kernel_{name}"] = seed_means(rows[rows.alpha_s >= min_alpha])
        out[f"C5.kernel_{name}_alpha_slope"] = seed_slopes(rows, "alpha_s")
    _same_seeds(*(kern[kern.arch == a] for a in kern.arch.unique()))
    return out


def image_replicates(img: pd.DataFrame, controls: pd.DataFrame) -> dict[str, np.ndarray]:
    """Per-seed CNN bias at the smallest and largest footprint ratio, its slope over ratios, and the
    single-object control accuracies of the same seeds (C4): seed i's controls validate seed i's bias."""
    r_min, r_max = img.footprint_ratio.min(), img.footprint_ratio.max()
    _same_seeds(img, controls[controls.feature == "core"], controls[controls.feature == "shortcut"])
    out = {"C4.bias_ratio_min": seed_cell(img, "bias", footprint_ratio=r_min),
           "C4.bias_max_ratio": seed_cell(img, "bias", footprint_ratio=r_max),
           "C4.acc_model": seed_means(img, "acc_model"), "C4.acc_lda": seed_means(img, "acc_lda")}
    if img.footprint_ratio.nunique() > 1:
        out["C4.ratio_slope"] = seed_slopes(img, "footprint_ratio")
    for feature in ("core", "shortcut"):
        out[f"C4.control_{feature}_acc"] = seed_means(controls[controls.feature == feature], "acc_model")
    return out
