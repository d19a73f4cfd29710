"""The notebook's "how to read the verdicts" text, rendered from this run's metrics and verdicts.

Why: prose typed into Markdown states one machine's numbers and goes stale on the next machine or seed. These
functions read the per-seed series ``C1.* … C5.*`` (``KEY.r0 …``) the notebook logged and say, per claim, where
each clause of its check stands: its mean with the 95 % t-interval over seeds (the interval the scoreboard
pools on) and how many seeds pass it alone. An inconclusive claim also says why.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from cliplab.core.claims import ClaimResult
from cliplab.core.replicates import interval, replicate_series

UNBIASED = 0.1  # claims.yaml: a signed bias inside ±UNBIASED counts as no bias
CONTROL_MARGIN = 0.05  # claims.yaml C4: a control CNN within this of its Bayes accuracy has learned its feature


def _series(metrics: Mapping[str, float], key: str) -> np.ndarray:
    """The per-seed values of ``key`` (``key.r0 …``); KeyError when the run logged no replicates of it."""
    series = replicate_series(metrics)
    if key not in series:
        raise KeyError(f"metrics have no replicates of {key!r} ({key}.r0 …)")
    return series[key]


def _ci_text(values: np.ndarray, fmt: str = "+.3f") -> str:
    mean, low, high = interval(values)
    return f"{mean:{fmt}} [{low:{fmt}}, {high:{fmt}}]"


def _ci(metrics: Mapping[str, float], key: str, fmt: str = "+.3f") -> str:
    """'mean [low, high]' of ``key`` over seeds (95 % t-interval)."""
    return _ci_text(_series(metrics, key), fmt)


def _side(values: np.ndarray, bar: float = 0.0) -> str:
    """'above' / 'below' when the whole interval over seeds is on that side of ``bar``, else 'straddles'."""
    _, low, high = interval(values)
    return "above" if low > bar else "below" if high < bar else "straddles"


def _seeds(values: np.ndarray, passing: np.ndarray, what: str) -> str:
    return f"{int(np.sum(passing))} of {values.size} seeds {what}"


def _positive(values: np.ndarray) -> str:
    """How a series stands against the check's ``> 0``: the interval's side and the seeds above 0."""
    count = _seeds(values, values > 0, "above 0")
    side = _side(values)
    if side == "above":
        return f"a bias (CI above 0; {count})"
    if side == "below":
        return f"a bias against the shortcut (CI below 0; {count})"
    return f"no resolved bias (CI straddles 0; {count})"


def _within(values: np.ndarray, bar: float = UNBIASED) -> str:
    """How a signed series stands against the check's two-sided ``-bar < X < bar``."""
    _, low, high = interval(values)
    count = _seeds(values, np.abs(values) < bar, f"inside ±{bar:g}")
    if -bar < low and high < bar:
        return f"unbiased by the check's bar of ±{bar:g} (CI inside it; {count})"
    if high < -bar or low > bar:
        return f"biased by the check's bar of ±{bar:g} (CI outside it; {count})"
    return f"not resolved against the check's bar of ±{bar:g} (CI crosses it; {count})"


def _head(claim_id: str, status: str, reason: str) -> str:
    """'**C1 (status).**', and why when the claim is inconclusive."""
    return f"**{claim_id} ({status}).**" + (f" Why inconclusive: {reason}." if reason else "")


def c1_reading(metrics: Mapping[str, float], status: str, reason: str = "") -> str:
    """C1: the linear model's signed grid-pooled bias against the ReLU and Tanh MLPs'."""
    linear = _series(metrics, "C1.bias_linear")
    relu, tanh = _series(metrics, "C1.bias_relu"), _series(metrics, "C1.bias_tanh")
    return (f"{_head('C1', status, reason)} Pooled over the grid within each seed, the linear model's bias is "
            f"{_ci_text(linear)}, {_within(linear)}; ReLU {_ci_text(relu)}, {_positive(relu)}; Tanh "
            f"{_ci_text(tanh)}, {_positive(tanh)}.")


def c2_reading(metrics: Mapping[str, float], status: str, reason: str = "") -> str:
    """C2: whether the deep model *prefers* the shortcut where the Bayes observer prefers the core."""
    lda, deep = _series(metrics, "C2.reliance_lda"), _series(metrics, "C2.reliance_deep")
    count = _seeds(deep, deep > 0, "rely on the shortcut")
    if _side(lda) != "below":
        prefers = "is read where LDA does not resolvably prefer the core, so the cell cannot show the claim"
    elif _side(deep) == "above":
        prefers = (f"relies on the shortcut (reliance CI above 0; {count}) where LDA relies on the core: it prefers "
                   "the less predictive feature")
    elif _side(deep) == "below":
        prefers = (f"relies on the core (reliance CI below 0; {count}), as LDA does: it is biased toward the "
                   "shortcut but does not prefer it")
    else:
        prefers = f"does not resolve a preference for the shortcut over the core (reliance CI contains 0; {count})"
    return (f"{_head('C2', status, reason)} At ρ_s = {metrics['C2.rho_s']:.2f}, α_s = {metrics['C2.alpha_s']:.0f} "
            f"the depth-{metrics['C2.depth']:.0f} ReLU model's reliance is {_ci_text(deep)} against LDA's "
            f"{_ci_text(lda)}: it {prefers} (bias {_ci(metrics, 'C2.bias_deep')}).")


def c3_reading(metrics: Mapping[str, float], status: str, reason: str = "") -> str:
    """C3: the per-seed slope of bias over depth, the depth-1 ReLU bias, the linear-activation MLP."""
    slope = _series(metrics, "C3.depth_slope")
    side = _side(slope)
    grows = {"above": "grows", "below": "shrinks"}.get(side, "does not resolvably change")
    depth1, linear = _series(metrics, "C3.bias_depth1"), _series(metrics, "C3.bias_mlp_linear")
    return (f"{_head('C3', status, reason)} The ReLU bias {grows} with depth (slope {_ci_text(slope)} per layer; "
            f"{_seeds(slope, slope > 0, 'with a positive slope')}); one ReLU layer gives {_ci_text(depth1)}, "
            f"{_positive(depth1)}; the linear-activation MLP {_ci_text(linear)}, {_within(linear)}.")


def c4_reading(metrics: Mapping[str, float], status: str, reason: str = "") -> str:
    """C4: the CNN's bias at the largest footprint ratio, its excess over ratio 1, and the per-seed controls."""
    top, ratio1 = _series(metrics, "C4.bias_max_ratio"), _series(metrics, "C4.bias_ratio_min")
    excess = top - ratio1
    more = {"above": "more than", "below": "less than"}.get(_side(excess), "not resolvably more than")
    learned = []
    for feature, rho_key in (("core", "C4.control_core_rho"), ("shortcut", "C4.control_shortcut_rho")):
        acc = _series(metrics, f"C4.control_{feature}_acc")
        ok = acc > metrics[rho_key] - CONTROL_MARGIN
        learned.append(f"{feature}-only accuracy {_ci_text(acc, '.3f')} for ρ {metrics[rho_key]:.2f} "
                       f"({_seeds(acc, ok, f'within {CONTROL_MARGIN:g} of it')})")
    return (f"{_head('C4', status, reason)} At footprint ratio {metrics['C4.max_ratio']:.0f}× the CNN's bias is "
            f"{_ci_text(top)}, {_positive(top)}; that is {more} at ratio 1 ({_ci_text(ratio1)}; paired difference "
            f"{_ci_text(excess)}, {_seeds(excess, excess > 0, 'larger')}). Controls: {'; '.join(learned)}.")


def c5_reading(metrics: Mapping[str, float], status: str, reason: str = "") -> str:
    """C5: linear vs ReLU NTK bias and the NTK's per-seed slope in α_s."""
    linear, ntk = _series(metrics, "C5.bias_kernel_linear"), _series(metrics, "C5.bias_kernel_ntk")
    slope = _series(metrics, "C5.kernel_ntk_alpha_slope")
    rises = {"above": "rises with α_s (slope CI above 0", "below": "falls with α_s (slope CI below 0"}.get(
        _side(slope), "does not resolvably rise with α_s (slope CI straddles 0")
    return (f"{_head('C5', status, reason)} Linear kernel ridge {_ci_text(linear)}, {_within(linear)}; ReLU NTK "
            f"(α_s ≥ 2) {_ci_text(ntk)}, {_positive(ntk)}, and its bias {rises}; "
            f"{_seeds(slope, slope > 0, 'with a positive slope')}); the NTK's sign agrees with the leading-order "
            f"prediction in {metrics['C5.ntk_sign_agreement']:.0%} of the cells where it predicts a sign.")


def reading(metrics: Mapping[str, float], verdicts: Sequence[ClaimResult]) -> str:
    """The whole "how to read the verdicts" list (Markdown) of this run, claims C1–C5."""
    readers = {"C1": c1_reading, "C2": c2_reading, "C3": c3_reading, "C4": c4_reading, "C5": c5_reading}
    by_id = {v.claim.id: v for v in verdicts}
    missing = sorted(set(readers) - set(by_id))
    if missing:
        raise KeyError(f"no verdicts for claims {missing} among {sorted(by_id)}")
    return "\n".join(f"* {read(metrics, by_id[c].status, by_id[c].reason)}" for c, read in readers.items())
