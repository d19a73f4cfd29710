"""Fits of zero-shot accuracy on concept frequency: slopes, correlations, binned ρ, multipliers, tails.

Pure functions on a concept-keyed DataFrame (one row per concept, or per concept × task), as the protocol note asks
(``docs/papers/concept_frequency.md`` §2, §6):

- :func:`fit_slope` — OLS slope of accuracy (points) on log10 frequency over concepts with f ≥ 1, with a
  percentile bootstrap CI over concepts (or over clusters, e.g. a concept seen in several worlds), optional
  per-group intercepts (pooling tasks/domains without mixing a between-task effect into the slope), and the
  unbinned Pearson r and Spearman ρ of the same rows;
- :func:`binned_correlation` — the paper's binned ρ (equal-width bins of ln count, first and last bins dropped),
  kept only as the paper-comparable number: it is labelled *binned* everywhere;
- :func:`data_multiplier` / :func:`multiplier_metrics` — the data factor 10^(gain/β) a +gain-point improvement
  needs;
- :func:`zero_frequency_accuracy` — accuracy of never-seen concepts against chance;
- :func:`head_tail_gap` — the "Let it Wag!" analogue: standard-benchmark accuracy minus accuracy on the rarest
  seen concepts;
- :func:`noisy_counts` — a simulated tagger with recall / false-positive knobs (counting-noise control);
- :func:`frequency_report` — all of the above for one table as flat metrics (the notebook's one call).

Accuracies are fractions in [0, 1]; slopes and gaps are reported in points (×100).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd
from scipy import stats as sps

from cliplab import stats as cstats

POINTS = 100.0


# ----------------------------------------------------------------------------------------------- validation
def _column(table: pd.DataFrame, name: str, what: str) -> np.ndarray:
    if not isinstance(table, pd.DataFrame):
        raise TypeError(f"expected a pandas DataFrame (one row per concept), got {type(table).__name__}")
    if name not in table.columns:
        raise ValueError(f"{what} column {name!r} is not in the table; it has {list(table.columns)}")
    values = pd.to_numeric(table[name], errors="coerce").to_numpy(dtype=float)
    if not np.all(np.isfinite(values)):
        bad = int((~np.isfinite(values)).sum())
        raise ValueError(f"{what} column {name!r} has {bad} missing or non-numeric value(s); drop or fill them first")
    return values


def _counts(table: pd.DataFrame, x: str) -> np.ndarray:
    counts = _column(table, x, "frequency")
    if (counts < 0).any():
        raise ValueError(f"frequency column {x!r} has negative counts; counts must be >= 0")
    return counts


def _accuracy(table: pd.DataFrame, y: str) -> np.ndarray:
    acc = _column(table, y, "accuracy")
    if (acc < 0).any() or (acc > 1).any():
        raise ValueError(f"accuracy column {y!r} must hold fractions in [0, 1] (not points); "
                         f"got range [{acc.min():g}, {acc.max():g}]")
    return acc


def _check_boot(n_boot: int, confidence: float) -> None:
    if isinstance(n_boot, bool) or not isinstance(n_boot, int) or n_boot < 100:
        raise ValueError(f"n_boot must be an int >= 100 (bootstrap resamples), got {n_boot!r}")
    if not 0.5 < confidence < 1:
        raise ValueError(f"confidence must be in (0.5, 1), got {confidence!r}")


def _codes(table: pd.DataFrame, column: str | None, n: int, what: str) -> np.ndarray:
    """Integer codes 0..k-1 of a grouping column (all zeros when None)."""
    if column is None:
        return np.zeros(n, dtype=np.int64)
    if column not in table.columns:
        raise ValueError(f"{what} column {column!r} is not in the table; it has {list(table.columns)}")
    if table[column].isna().any():
        raise ValueError(f"{what} column {column!r} has missing values")
    return pd.factorize(table[column], sort=True)[0].astype(np.int64)


# ----------------------------------------------------------------------------------------------- slope fit
@dataclass(frozen=True)
class SlopeFit:
    """Accuracy (points) per decade of frequency, with a bootstrap CI, and the unbinned associations.

    slope, ci_low, ci_high: points per ×10 frequency; intercept: points at f = 1 (None with per-group intercepts);
    pearson (+ CI): r of (log10 f, accuracy) within groups; spearman: rank correlation within groups;
    n: rows fitted (f ≥ min_count); n_excluded: rows below min_count (never silently dropped: counted here);
    n_clusters: bootstrap units; x_decades: span of log10 f over the fitted rows.
    """

    slope: float
    ci_low: float
    ci_high: float
    intercept: float | None
    pearson: float
    pearson_ci_low: float
    pearson_ci_high: float
    spearman: float
    n: int
    n_excluded: int
    n_clusters: int
    x_decades: float

    def metrics(self, prefix: str) -> dict[str, float]:
        """Flat metrics ``{prefix}.slope``, ``{prefix}.slope_ci_low``, ... (all finite)."""
        out = {"slope": self.slope, "slope_ci_low": self.ci_low, "slope_ci_high": self.ci_high,
               "pearson": self.pearson, "pearson_ci_low": self.pearson_ci_low,
               "pearson_ci_high": self.pearson_ci_high, "spearman": self.spearman, "n": self.n,
               "n_excluded": self.n_excluded, "x_decades": self.x_decades}
        if self.intercept is not None:
            out["intercept"] = self.intercept
        return {f"{prefix}.{k}": float(v) for k, v in out.items()}


def _within_moments(w: np.ndarray, x: np.ndarray, y: np.ndarray, groups: np.ndarray) -> tuple[np.ndarray, ...]:
    """Weighted within-group (co)variances summed over groups; w is (B, n) weights, x and y are (n,)."""
    cxx = np.zeros(w.shape[0])
    cxy = np.zeros(w.shape[0])
    cyy = np.zeros(w.shape[0])
    for g in np.unique(groups):
        m = groups == g
        wg, xg, yg = w[:, m], x[m], y[m]
        sw = wg.sum(axis=1)
        safe = np.where(sw > 0, sw, 1.0)
        sx, sy = wg @ xg, wg @ yg
        cxx += wg @ (xg * xg) - sx * sx / safe
        cxy += wg @ (xg * yg) - sx * sy / safe
        cyy += wg @ (yg * yg) - sy * sy / safe
    return cxx, cxy, cyy


def _slope_and_r(cxx: np.ndarray, cxy: np.ndarray, cyy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    with np.errstate(invalid="ignore", divide="ignore"):
        slope = np.where(cxx > 1e-12, cxy / cxx, np.nan)
        r = np.where((cxx > 1e-12) & (cyy > 1e-12), cxy / np.sqrt(cxx * cyy), np.nan)
    return slope, r


def fit_slope(table: pd.DataFrame, x: str = "count", y: str = "accuracy", *, group: str | None = None,
              cluster: str | None = None, min_count: float = 1, n_boot: int = 2000, confidence: float = 0.95,
              seed: int = 0) -> SlopeFit:
    """OLS slope of ``100·y`` on ``log10(x)`` over rows with x ≥ min_count, with a bootstrap CI.

    group:   per-group intercepts (fixed effects), e.g. the domain when pooling several test domains, or the
             visual concept when the same concept is evaluated in several worlds (the permutation control).
    cluster: bootstrap unit (default: each row); rows sharing a cluster are resampled together.
    The CI is the percentile interval of ``n_boot`` resamples of clusters with replacement (seeded).
    """
    _check_boot(n_boot, confidence)
    lx, py, groups, clusters, n_excluded = _prepare(table, x, [y], group, cluster, min_count)
    return _fit(lx, py[0], groups, clusters, n_excluded, group is not None, n_boot, confidence, seed, x)


def slope_difference(table: pd.DataFrame, x: str, y_a: str, y_b: str, *, group: str | None = None,
                     min_count: float = 1, n_boot: int = 2000, confidence: float = 0.95,
                     seed: int = 0) -> SlopeFit:
    """Slope of ``y_b`` minus slope of ``y_a`` (points/decade) on the same concepts, with a paired bootstrap CI.

    OLS is linear in y, so the difference of slopes is the slope of the per-concept difference y_b − y_a; the
    returned fit's pearson/spearman describe that difference. E.g. a bigger model's accuracy (y_b) against a
    smaller one's (y_a) on the same world: a negative value means the bigger model's curve is flatter.
    """
    _check_boot(n_boot, confidence)
    lx, py, groups, clusters, n_excluded = _prepare(table, x, [y_a, y_b], group, None, min_count)
    return _fit(lx, py[1] - py[0], groups, clusters, n_excluded, group is not None, n_boot, confidence, seed, x)


def _prepare(table: pd.DataFrame, x: str, ys: list[str], group: str | None, cluster: str | None,
             min_count: float) -> tuple[np.ndarray, list[np.ndarray], np.ndarray, np.ndarray, int]:
    if not min_count > 0:
        raise ValueError(f"min_count must be > 0 (log10 of 0 is undefined), got {min_count!r}")
    counts = _counts(table, x)
    accs = [_accuracy(table, y) for y in ys]
    keep = counts >= min_count
    if keep.sum() < 3:
        raise ValueError(f"need >= 3 rows with {x} >= {min_count} to fit a slope, got {int(keep.sum())}")
    groups = _codes(table, group, len(table), "group")[keep]
    clusters_all = _codes(table, cluster, len(table), "cluster") if cluster else np.arange(len(table))
    clusters = pd.factorize(clusters_all[keep])[0].astype(np.int64)
    return np.log10(counts[keep]), [POINTS * a[keep] for a in accs], groups, clusters, int((~keep).sum())


def _fit(lx: np.ndarray, py: np.ndarray, groups: np.ndarray, clusters: np.ndarray, n_excluded: int,
         grouped: bool, n_boot: int, confidence: float, seed: int, x: str) -> SlopeFit:
    ones = np.ones((1, len(lx)))
    cxx, cxy, cyy = _within_moments(ones, lx, py, groups)
    slope, r = _slope_and_r(cxx, cxy, cyy)
    if not np.isfinite(slope[0]):
        raise ValueError(f"log10({x}) does not vary{' within groups' if grouped else ''}: the slope is undefined")
    n_clusters = int(clusters.max()) + 1
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, n_clusters, size=(n_boot, n_clusters))
    weights = np.zeros((n_boot, n_clusters))
    np.add.at(weights, (np.arange(n_boot)[:, None], draws), 1.0)
    bcxx, bcxy, bcyy = _within_moments(weights[:, clusters], lx, py, groups)
    bslope, br = _slope_and_r(bcxx, bcxy, bcyy)
    alpha = (1 - confidence) / 2 * 100
    lo, hi = np.nanpercentile(bslope, [alpha, 100 - alpha])
    rlo, rhi = (np.nanpercentile(br, [alpha, 100 - alpha]) if np.isfinite(br).any() else (np.nan, np.nan))
    rank_x = pd.Series(lx).groupby(groups).rank().to_numpy()
    rank_y = pd.Series(py).groupby(groups).rank().to_numpy()
    rxx, rxy, ryy = _within_moments(ones, rank_x, rank_y, groups)
    _, spear = _slope_and_r(rxx, rxy, ryy)
    intercept = None if grouped else float(py.mean() - slope[0] * lx.mean())
    return SlopeFit(slope=float(slope[0]), ci_low=float(lo), ci_high=float(hi), intercept=intercept,
                    pearson=float(np.nan_to_num(r[0])), pearson_ci_low=float(np.nan_to_num(rlo)),
                    pearson_ci_high=float(np.nan_to_num(rhi)), spearman=float(np.nan_to_num(spear[0])),
                    n=len(lx), n_excluded=n_excluded, n_clusters=n_clusters, x_decades=float(lx.max() - lx.min()))


def fit_band(fit: SlopeFit, table: pd.DataFrame, x: str = "count", y: str = "accuracy", *, min_count: float = 1,
             n_boot: int = 500, seed: int = 0, grid: int = 50) -> pd.DataFrame:
    """The fitted line (points) over a log10 grid with a pointwise 95% bootstrap band, for plotting.

    Columns: count, fit, low, high. Only for single-group fits (a line needs an intercept).
    """
    if fit.intercept is None:
        raise ValueError("fit_band needs a fit without per-group intercepts")
    counts, acc = _counts(table, x), _accuracy(table, y)
    keep = counts >= min_count
    lx, py = np.log10(counts[keep]), POINTS * acc[keep]
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(lx), size=(n_boot, len(lx)))
    bx, by = lx[draws], py[draws]
    mx, my = bx.mean(1, keepdims=True), by.mean(1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        b = ((bx - mx) * (by - my)).sum(1) / ((bx - mx) ** 2).sum(1)
    a = my[:, 0] - b * mx[:, 0]
    xs = np.linspace(lx.min(), lx.max(), grid)
    lines = a[:, None] + b[:, None] * xs[None, :]
    low, high = np.nanpercentile(lines, [2.5, 97.5], axis=0)
    return pd.DataFrame({"count": 10 ** xs, "fit": fit.intercept + fit.slope * xs, "low": low, "high": high})


def log_vs_linear(table: pd.DataFrame, x: str = "count", y: str = "accuracy", min_count: float = 1) -> dict[str, float]:
    """Pearson r of accuracy with log10(f) and with f itself (rows with f ≥ min_count).

    "Log-linear" predicts r_log > r_linear: equal accuracy steps come from equal *ratios* of frequency.
    Constant accuracy gives 0 for both (no association).
    """
    counts, acc = _counts(table, x), _accuracy(table, y)
    keep = counts >= min_count
    if keep.sum() < 3:
        raise ValueError(f"need >= 3 rows with {x} >= {min_count}, got {int(keep.sum())}")
    c, a = counts[keep], acc[keep]
    if np.ptp(c) == 0:
        raise ValueError("frequency does not vary: correlations are undefined")
    if np.ptp(a) == 0:  # flat accuracy: no association at all
        return {"r_log": 0.0, "r_linear": 0.0}
    return {"r_log": float(sps.pearsonr(np.log10(c), a).statistic), "r_linear": float(sps.pearsonr(c, a).statistic)}


# ----------------------------------------------------------------------------------------------- binned ρ
@dataclass(frozen=True)
class BinnedCorrelation:
    """The paper's binned ρ: Pearson of bin right-edges (ln count) with bin mean accuracy, bins 1..n−2.

    edges, means, sizes: the used (non-empty) bins; n_empty: used bins that were empty and so left out
    (the reference code would crash on them); significant: p < 0.05 (the paper's "**").
    """

    rho: float
    p_value: float
    edges: np.ndarray
    means: np.ndarray
    sizes: np.ndarray
    n_empty: int

    @property
    def significant(self) -> bool:
        return bool(self.p_value < 0.05)


def binned_correlation(counts: Sequence[float] | np.ndarray, accuracy: Sequence[float] | np.ndarray,
                       n_bins: int = 12) -> BinnedCorrelation:
    """Binned ρ exactly as the paper's notebooks compute it (card §2, "Binned log-linear fit").

    Counts of 0 become 1; x = ln(count); ``n_bins`` equal-width edges over [min x, max x]; right-closed bins,
    so bin 0 holds only x = min (every zero- and one-count concept); ρ = Pearson(edges[1..n−2],
    mean accuracy of bins 1..n−2) — the first and the last bin are dropped. Empty bins are skipped.
    """
    if isinstance(n_bins, bool) or not isinstance(n_bins, int) or n_bins < 5:
        raise ValueError(f"n_bins must be an int >= 5 (the paper uses 12), got {n_bins!r}")
    c = np.asarray(counts, dtype=float).ravel()
    a = np.asarray(accuracy, dtype=float).ravel()
    if c.shape != a.shape or c.size == 0:
        raise ValueError(f"counts and accuracy must be equally long and non-empty, got {c.size} and {a.size}")
    if not (np.all(np.isfinite(c)) and np.all(np.isfinite(a))) or (c < 0).any():
        raise ValueError("counts must be finite and >= 0, accuracies finite")
    x = np.log(np.where(c == 0, 1.0, c))
    if np.ptp(x) == 0:
        raise ValueError("all counts are equal: there is nothing to bin")
    edges = np.linspace(x.min(), x.max(), n_bins)
    bins = np.digitize(x, edges, right=True)
    used = np.arange(1, n_bins - 1)
    sizes = np.array([(bins == b).sum() for b in used])
    full = sizes > 0
    if full.sum() < 3:
        raise ValueError(f"only {int(full.sum())} of the {len(used)} used bins hold concepts; need >= 3")
    means = np.array([a[bins == b].mean() for b in used[full]])
    if np.ptp(means) == 0:
        raise ValueError("every bin has the same mean accuracy: binned ρ is undefined")
    res = sps.pearsonr(edges[used[full]], means)
    return BinnedCorrelation(rho=float(res.statistic), p_value=float(res.pvalue), edges=edges[used[full]],
                             means=means, sizes=sizes[full], n_empty=int((~full).sum()))


# ----------------------------------------------------------------------------------------------- multiplier
MAX_DECADES = 300.0
"""Largest gain/slope (decades of data) for which a multiplier is reported; beyond it 10^x leaves float range and
the slope is flat for every practical purpose (e.g. 1e-14 points/decade of rounding noise)."""


def data_multiplier(slope: float, gain: float = 10.0) -> float:
    """Factor of more data a +``gain``-point accuracy gain needs at ``slope`` points/decade: 10^(gain/slope)."""
    if not math.isfinite(slope) or slope <= 0:
        raise ValueError(f"the multiplier needs a positive slope (points per decade), got {slope!r}: with no "
                         "positive trend more data buys no accuracy")
    if not gain > 0:
        raise ValueError(f"gain must be > 0 points, got {gain!r}")
    if gain / slope > MAX_DECADES:
        raise ValueError(f"slope {slope!r} points/decade is too flat: +{gain} points would need more than "
                         f"10^{MAX_DECADES:.0f} times the data")
    return float(10 ** (gain / slope))


def _has_multiplier(slope: float, gain: float) -> bool:
    return math.isfinite(slope) and slope > 0 and gain / slope <= MAX_DECADES


def multiplier_metrics(fit: SlopeFit, prefix: str, gain: float = 10.0) -> dict[str, float]:
    """``{prefix}.multiplier_defined`` (1/0) and, when the slope (and its CI end) is positive, the multiplier
    and its CI (``multiplier_ci_low`` from the slope's upper end; ``multiplier_ci_high`` only if ci_low > 0).
    A slope so flat that the multiplier exceeds 10^MAX_DECADES counts as undefined (no finite number to report)."""
    defined = _has_multiplier(fit.slope, gain)
    out = {f"{prefix}.multiplier_defined": float(defined)}
    if defined:
        out[f"{prefix}.multiplier"] = data_multiplier(fit.slope, gain)
        out[f"{prefix}.multiplier_ci_low"] = data_multiplier(max(fit.ci_high, fit.slope), gain)
        bounded = _has_multiplier(fit.ci_low, gain)
        out[f"{prefix}.multiplier_bounded"] = float(bounded)
        if bounded:
            out[f"{prefix}.multiplier_ci_high"] = data_multiplier(fit.ci_low, gain)
    return out


# ----------------------------------------------------------------------------------------------- zero f, tails
@dataclass(frozen=True)
class ZeroFrequency:
    """Mean accuracy of concepts with f = 0, its bootstrap CI, chance, and how many such concepts."""

    accuracy: float
    ci_low: float
    ci_high: float
    chance: float
    n: int

    def metrics(self, prefix: str) -> dict[str, float]:
        return {f"{prefix}.zero_acc": self.accuracy, f"{prefix}.zero_acc_ci_low": self.ci_low,
                f"{prefix}.zero_acc_ci_high": self.ci_high, f"{prefix}.chance": self.chance,
                f"{prefix}.n_zero": float(self.n)}


def zero_frequency_accuracy(table: pd.DataFrame, x: str = "count", y: str = "accuracy", *, chance: float,
                            n_boot: int = 2000, seed: int = 0) -> ZeroFrequency:
    """Accuracy of never-seen concepts (x == 0) against ``chance`` (e.g. 1 / number of classes)."""
    if not 0 < chance < 1:
        raise ValueError(f"chance must be a probability in (0, 1), got {chance!r}")
    counts, acc = _counts(table, x), _accuracy(table, y)
    zero = acc[counts == 0]
    if zero.size == 0:
        raise ValueError(f"no concept has {x} == 0; the zero-frequency test needs never-seen concepts")
    lo, hi = cstats.bootstrap_ci(zero, n_resamples=n_boot, seed=seed)
    return ZeroFrequency(float(zero.mean()), lo, hi, float(chance), int(zero.size))


@dataclass(frozen=True)
class HeadTail:
    """The "Let it Wag!" analogue (accuracies as fractions; gap in points, standard − tail)."""

    standard: float
    tail: float
    head: float
    gap: float
    gap_ci_low: float
    gap_ci_high: float
    n_standard: int
    n_tail: int
    tail_max_count: float

    def metrics(self, prefix: str) -> dict[str, float]:
        return {f"{prefix}.standard_acc": self.standard, f"{prefix}.tail_acc": self.tail,
                f"{prefix}.head_acc": self.head, f"{prefix}.gap": self.gap, f"{prefix}.gap_ci_low": self.gap_ci_low,
                f"{prefix}.gap_ci_high": self.gap_ci_high, f"{prefix}.n_tail": float(self.n_tail),
                f"{prefix}.tail_max_count": self.tail_max_count}


def tail_mask(counts: np.ndarray, fraction: float) -> np.ndarray:
    """The ceil(fraction · n) rarest entries of ``counts`` (ties broken by position, deterministically)."""
    if not 0 < fraction < 1:
        raise ValueError(f"tail fraction must be in (0, 1), got {fraction!r}")
    k = max(1, math.ceil(fraction * len(counts)))
    order = np.argsort(counts, kind="stable")
    mask = np.zeros(len(counts), dtype=bool)
    mask[order[:k]] = True
    return mask


def head_tail_gap(table: pd.DataFrame, x: str = "count", y: str = "accuracy", *, tail_fraction: float = 0.1,
                  n_boot: int = 2000, seed: int = 0) -> HeadTail:
    """Standard-benchmark accuracy (every seen concept, f ≥ 1) minus accuracy on its rarest ``tail_fraction``.

    Like Let it Wag!, the tail concepts do occur in pretraining, only rarely; never-seen concepts are not in
    either set (see :func:`zero_frequency_accuracy`). ``head`` is the most frequent ``tail_fraction``. The
    gap's CI resamples seen concepts (tail membership fixed).
    """
    _check_boot(n_boot, 0.95)
    counts, acc = _counts(table, x), _accuracy(table, y)
    seen = counts >= 1
    if seen.sum() < 4:
        raise ValueError(f"need >= 4 concepts with {x} >= 1 for a head/tail split, got {int(seen.sum())}")
    c, a = counts[seen], acc[seen]
    tail = tail_mask(c, tail_fraction)
    head = tail_mask(-c, tail_fraction)
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(a), size=(n_boot, len(a)))
    w = np.zeros((n_boot, len(a)))
    np.add.at(w, (np.arange(n_boot)[:, None], draws), 1.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        gaps = POINTS * ((w @ a) / w.sum(1) - (w[:, tail] @ a[tail]) / w[:, tail].sum(1))
    lo, hi = np.nanpercentile(gaps, [2.5, 97.5])
    return HeadTail(standard=float(a.mean()), tail=float(a[tail].mean()), head=float(a[head].mean()),
                    gap=float(POINTS * (a.mean() - a[tail].mean())), gap_ci_low=float(lo), gap_ci_high=float(hi),
                    n_standard=int(len(a)), n_tail=int(tail.sum()), tail_max_count=float(c[tail].max()))


# ----------------------------------------------------------------------------------------------- counting noise
def noisy_counts(true_counts: Sequence[int] | np.ndarray, n_samples: int, *, recall: float,
                 false_positive_rate: float, seed: int) -> np.ndarray:
    """Counts a simulated tagger would report: each true occurrence kept with probability ``recall``, each of
    the other ``n_samples − f`` samples hit falsely with probability ``false_positive_rate`` (per concept)."""
    f = np.asarray(true_counts)
    if f.ndim != 1 or f.size == 0 or not np.issubdtype(f.dtype, np.integer) or (f < 0).any():
        raise ValueError("true_counts must be a non-empty 1-D array of non-negative integers")
    if isinstance(n_samples, bool) or not isinstance(n_samples, int) or n_samples < int(f.max()):
        raise ValueError(f"n_samples must be an int >= the largest count ({int(f.max())}), got {n_samples!r}")
    if not 0 < recall <= 1:
        raise ValueError(f"recall must be in (0, 1], got {recall!r}")
    if not 0 <= false_positive_rate < 1:
        raise ValueError(f"false_positive_rate must be in [0, 1), got {false_positive_rate!r}")
    rng = np.random.default_rng(seed)
    kept = rng.binomial(f, recall)
    false = rng.binomial(n_samples - f, false_positive_rate)
    return (kept + false).astype(np.int64)


# ----------------------------------------------------------------------------------------------- one report
def frequency_report(table: pd.DataFrame, x: str = "count", y: str = "accuracy", *, prefix: str,
                     chance: float | None = None, tail_fraction: float = 0.1, n_bins: int = 12, gain: float = 10.0,
                     n_boot: int = 2000, seed: int = 0) -> dict[str, float]:
    """Every fit of one concept table as flat metrics under ``prefix`` (world and real path alike).

    Always: the slope fit (:meth:`SlopeFit.metrics`), multiplier metrics, r_log / r_linear. When defined
    (else a ``*_defined = 0`` flag, never NaN): the binned ρ (``binned_rho``, ``binned_p``), zero-frequency
    accuracy vs ``chance``, and the head/tail gap.
    """
    fit = fit_slope(table, x, y, n_boot=n_boot, seed=seed)
    out = fit.metrics(prefix)
    out.update(multiplier_metrics(fit, prefix, gain))
    out.update({f"{prefix}.{k}": v for k, v in log_vs_linear(table, x, y).items()})
    try:
        binned = binned_correlation(_counts(table, x), _accuracy(table, y), n_bins)
        out.update({f"{prefix}.binned_rho": binned.rho, f"{prefix}.binned_p": binned.p_value,
                    f"{prefix}.binned_bins_used": float(len(binned.edges)), f"{prefix}.binned_defined": 1.0})
    except ValueError:
        out[f"{prefix}.binned_defined"] = 0.0
    counts = _counts(table, x)
    if chance is not None and (counts == 0).any():
        out.update(zero_frequency_accuracy(table, x, y, chance=chance, n_boot=n_boot, seed=seed).metrics(prefix))
        out[f"{prefix}.zero_defined"] = 1.0
    else:
        out[f"{prefix}.zero_defined"] = 0.0
    try:
        out.update(head_tail_gap(table, x, y, tail_fraction=tail_fraction, n_boot=n_boot, seed=seed).metrics(prefix))
        out[f"{prefix}.tail_defined"] = 1.0
    except ValueError:
        out[f"{prefix}.tail_defined"] = 0.0
    return {k: float(v) for k, v in out.items()}
