"""The notebook's "how to read the verdicts" text, rendered from this run's metrics and verdicts.

Why: prose typed into Markdown states one machine's numbers and goes stale on the next machine or seed. These
functions read the ``C1.*`` … ``C5.*`` metrics the notebook logged and say, per claim, which part of its check
this run meets, so the text above a run's output always agrees with it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from cliplab.core.claims import ClaimResult, status_of

UNBIASED = 0.1  # claims.yaml: |bias| below this counts as no bias


def _ci(metrics: Mapping[str, float], key: str) -> str:
    return f"{metrics[key]:+.3f} [{metrics[f'{key}_ci_low']:+.3f}, {metrics[f'{key}_ci_high']:+.3f}]"


def _biased(metrics: Mapping[str, float], key: str) -> str:
    return "a bias (CI above 0)" if metrics[f"{key}_ci_low"] > 0 else "no resolved bias (CI reaches 0)"


def c1_reading(metrics: Mapping[str, float], status: str) -> str:
    """C1: the linear model's pooled bias against the ReLU and Tanh MLPs'."""
    linear = metrics["C1.bias_linear"]
    return (f"**C1 ({status}).** Pooled over the grid, the linear model's bias is {_ci(metrics, 'C1.bias_linear')}"
            f" ({'unbiased' if abs(linear) < UNBIASED else 'biased'} by the check's bar of {UNBIASED}); ReLU "
            f"{_ci(metrics, 'C1.bias_relu')}, {_biased(metrics, 'C1.bias_relu')}; Tanh "
            f"{_ci(metrics, 'C1.bias_tanh')}, {_biased(metrics, 'C1.bias_tanh')}.")


def c2_reading(metrics: Mapping[str, float], status: str) -> str:
    """C2: whether the deep model *prefers* the shortcut where the Bayes observer prefers the core."""
    lda, deep_low, deep_high = (metrics[f"C2.reliance{s}"] for s in ("_lda", "_deep_ci_low", "_deep_ci_high"))
    if lda >= 0:
        prefers = "is read where LDA does not prefer the core, so the cell cannot show the claim"
    elif deep_low > 0:
        prefers = ("relies on the shortcut (reliance CI above 0) where LDA relies on the core: it prefers the less "
                   "predictive feature")
    elif deep_high < 0:
        prefers = ("relies on the core (reliance CI below 0), as LDA does: it is biased toward the shortcut but "
                   "does not prefer it")
    else:
        prefers = "does not resolve a preference for the shortcut over the core (reliance CI contains 0)"
    return (f"**C2 ({status}).** At ρ_s = {metrics['C2.rho_s']:.2f}, α_s = {metrics['C2.alpha_s']:.0f} the depth-"
            f"{metrics['C2.depth']:.0f} ReLU model's reliance is {_ci(metrics, 'C2.reliance_deep')} against LDA's "
            f"{lda:+.3f}: it {prefers} (bias {metrics['C2.bias_deep']:+.3f}).")


def c3_reading(metrics: Mapping[str, float], status: str) -> str:
    """C3: the bias's slope over depth, the depth-1 ReLU bias, the linear-activation MLP."""
    grows = "grows" if metrics["C3.depth_slope_ci_low"] > 0 else "does not resolvably grow"
    return (f"**C3 ({status}).** The ReLU bias {grows} with depth (slope {_ci(metrics, 'C3.depth_slope')} per "
            f"layer); one ReLU layer gives {_ci(metrics, 'C3.bias_depth1')}, {_biased(metrics, 'C3.bias_depth1')};"
            f" the linear-activation MLP {_ci(metrics, 'C3.bias_mlp_linear')}.")


def c4_reading(metrics: Mapping[str, float], status: str) -> str:
    """C4: the CNN's bias at the largest footprint ratio and the single-object controls."""
    return (f"**C4 ({status}).** At footprint ratio {metrics['C4.max_ratio']:.0f}× the CNN's bias is "
            f"{_ci(metrics, 'C4.bias_max_ratio')}, {_biased(metrics, 'C4.bias_max_ratio')}; at ratio 1 it is "
            f"{metrics['C4.bias_ratio_min']:+.3f}. Controls: core-only accuracy {metrics['C4.control_core_acc']:.3f}"
            f" for ρ_c {metrics['C4.control_core_rho']:.2f}, shortcut-only {metrics['C4.control_shortcut_acc']:.3f}"
            f" for ρ_s {metrics['C4.control_shortcut_rho']:.2f}.")


def c5_reading(metrics: Mapping[str, float], status: str) -> str:
    """C5: linear kernel vs ReLU NTK bias and the NTK's slope in α_s."""
    slope = ("rises with α_s (slope CI above 0)" if metrics["C5.kernel_ntk_alpha_slope_ci_low"] > 0
             else "does not resolvably rise with α_s")
    return (f"**C5 ({status}).** Linear kernel ridge {_ci(metrics, 'C5.bias_kernel_linear')}; ReLU NTK "
            f"{_ci(metrics, 'C5.bias_kernel_ntk')}, {_biased(metrics, 'C5.bias_kernel_ntk')}, and its bias {slope}"
            f"; the NTK's sign agrees with the leading-order prediction in {metrics['C5.ntk_sign_agreement']:.0%}"
            " of the cells where it predicts a sign.")


def reading(metrics: Mapping[str, float], verdicts: Sequence[ClaimResult]) -> str:
    """The whole "how to read the verdicts" list (Markdown) of this run, claims C1–C5."""
    readers = {"C1": c1_reading, "C2": c2_reading, "C3": c3_reading, "C4": c4_reading, "C5": c5_reading}
    return "\n".join(f"* {read(metrics, status_of(verdicts, c))}" for c, read in readers.items())
