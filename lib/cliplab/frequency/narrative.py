"""The notebook's "how to read the verdicts" text, rendered from this run's metrics and verdicts.

Why: prose typed into Markdown states one machine's numbers and goes stale on the next machine or seed. These
functions read the numbers from the ``metrics.json`` keys the notebook logged (``fit.<model>.*``,
``ood.<model>.*``, ``ctrl.misalign.m<percent>.*``, ``C*.``) and pick the sentence that fits them, so the text
above a run's output always agrees with it. The paper's numbers are constants here, attributed as the paper's.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from cliplab.core.claims import ClaimResult, status_of

PAPER_SLOPE_RANGE = (5.0, 10.0)  # points per decade of pretraining frequency (the paper's figures)
PAPER_SLOPE = "5–10"
PAPER_PEARSON = "0.23–0.42"  # the paper's unbinned r
PAPER_WAG_GAP = 22.7  # "Let it Wag!" vs ImageNet accuracy drop, points


def ood_models(metrics: Mapping[str, float]) -> list[str]:
    """Model keys (``tiny_s0``…) with a pooled held-out-domain fit in this run."""
    return sorted(m.group(1) for k in metrics if (m := re.fullmatch(r"ood\.(\w+)\.pooled\.slope", k)))


def tail_models(metrics: Mapping[str, float]) -> list[str]:
    """Model keys with a rarest-concepts gap (``fit.<model>.gap``) in this run."""
    return sorted(m.group(1) for k in metrics if (m := re.fullmatch(r"fit\.(\w+)\.gap", k)))


def misalignment_levels(metrics: Mapping[str, float]) -> list[int]:
    """The caption-swap rates (percent) of the trained misalignment control in this run."""
    return sorted(int(m.group(1)) for k in metrics if (m := re.fullmatch(r"ctrl\.misalign\.m(\d+)\.slope", k)))


def _ci(metrics: Mapping[str, float], prefix: str) -> str:
    return (f"{metrics[f'{prefix}.slope']:.1f} [{metrics[f'{prefix}.slope_ci_low']:.1f}, "
            f"{metrics[f'{prefix}.slope_ci_high']:.1f}]")


def slope_reading(metrics: Mapping[str, float], statuses: Mapping[str, str], primary: str) -> str:
    """C1, C2, C5: the primary model's slope against the paper's, unbinned r vs binned ρ, the count range."""
    p = f"fit.{primary}"
    slope = metrics[f"{p}.slope"]
    steeper = "steeper than" if slope > PAPER_SLOPE_RANGE[1] else "flatter than" if slope < PAPER_SLOPE_RANGE[0] \
        else "within"
    binned = (f", binned ρ {metrics[f'{p}.binned_rho']:.2f}" if metrics.get(f"{p}.binned_defined") else "")
    return (f"**C1 ({statuses['C1']}), C2 ({statuses['C2']}), C5 ({statuses['C5']}).** `{primary}`'s slope is "
            f"{_ci(metrics, p)} points/decade, {steeper} the paper's {PAPER_SLOPE}, over "
            f"{metrics[f'{p}.x_decades']:.1f} decades of seen counts; unbinned r {metrics[f'{p}.pearson']:.2f} "
            f"(the paper's {PAPER_PEARSON}){binned}.")


def ood_reading(metrics: Mapping[str, float], status: str, domains: Sequence[str]) -> str:
    """C3: how many models keep a pooled held-out slope with CI above 0, and each one's strongest domain."""
    models = ood_models(metrics)
    resolved = [m for m in models if metrics[f"ood.{m}.pooled.slope_ci_low"] > 0]
    parts = []
    for m in models:
        per_domain = {d: metrics[f"ood.{m}.{d}.slope"] for d in domains if f"ood.{m}.{d}.slope" in metrics}
        top = max(per_domain, key=per_domain.get) if per_domain else None
        strongest = f"; strongest domain {top} {_ci(metrics, f'ood.{m}.{top}')}" if top else ""
        parts.append(f"`{m}` pooled {_ci(metrics, f'ood.{m}.pooled')}{strongest}")
    missed = [m for m in models if m not in resolved]
    verdict = ("every model's pooled CI is above 0" if not missed else
               f"{', '.join(f'`{m}`' for m in missed)} {'has its' if len(missed) == 1 else 'have their'} pooled CI "
               "reaching 0 or below, and the check asks for every model"
               + (" — a positive trend not resolved at this sample size" if all(
                   metrics[f"ood.{m}.pooled.slope"] > 0 for m in missed) else ""))
    return (f"**C3 ({status}).** {len(resolved)} of {len(models)} models keep a pooled held-out-domain slope "
            f"with its CI above 0: {verdict}. Per model (points/decade): " + "; ".join(parts) + ".")


def misalignment_reading(metrics: Mapping[str, float]) -> str:
    """C6's trained control: top-1 and the matched-count slope at each injected caption-swap rate."""
    levels = misalignment_levels(metrics)
    if not levels:
        return "**C6 (not testable here).** The trained misalignment control did not run."
    rows = ", ".join(f"{lv} %: top-1 {metrics[f'ctrl.misalign.m{lv}.top1']:.2f}, slope "
                     f"{_ci(metrics, f'ctrl.misalign.m{lv}')}" for lv in levels)
    base = f"ctrl.misalign.m{levels[0]}"
    held = [lv for lv in levels[1:] if metrics[f"ctrl.misalign.m{lv}.slope_ci_high"] >= metrics[f"{base}.slope_ci_low"]
            and metrics[f"ctrl.misalign.m{lv}.slope_ci_low"] <= metrics[f"{base}.slope_ci_high"]]
    overlap = (f"the slope's CI overlaps the {levels[0]} % one at {', '.join(f'{lv} %' for lv in held)}"
               if held else f"no rate's slope CI overlaps the {levels[0]} % one")
    return (f"**C6 (not testable here).** The two nested corpora's counts correlate by design (Spearman "
            f"{metrics['C6.spearman_corpora']:.2f}). Trained control: {rows}; {overlap}.")


def tail_reading(metrics: Mapping[str, float], status: str) -> str:
    """C7: the rarest-concepts gap per model against the paper's Let-it-Wag! drop."""
    per_model = ", ".join(f"`{m}` {metrics[f'fit.{m}.gap']:.1f} [{metrics[f'fit.{m}.gap_ci_low']:.1f}, "
                          f"{metrics[f'fit.{m}.gap_ci_high']:.1f}] ({metrics[f'fit.{m}.n_tail']:.0f} concepts)"
                          for m in tail_models(metrics))
    sign = ("positive for every model" if metrics["C7.gap_min"] > 0 else "not positive for every model")
    return (f"**C7 ({status}).** The rarest-concept gap (points) is {sign}: {per_model}; the mean "
            f"{metrics['C7.gap_mean']:.1f} is {metrics['C7.gap_mean'] / PAPER_WAG_GAP:.0%} of the paper's "
            f"{PAPER_WAG_GAP}.")


def reading(metrics: Mapping[str, float], verdicts: Sequence[ClaimResult], *, primary: str,
            domains: Sequence[str]) -> str:
    """The whole "how to read the verdicts" list (Markdown) of this run; ``primary`` is a model key."""
    statuses = {c: status_of(verdicts, c) for c in ("C1", "C2", "C3", "C5", "C7")}
    parts = [slope_reading(metrics, statuses, primary), ood_reading(metrics, statuses["C3"], domains),
             misalignment_reading(metrics), tail_reading(metrics, statuses["C7"])]
    return "\n".join(f"* {p}" for p in parts)
