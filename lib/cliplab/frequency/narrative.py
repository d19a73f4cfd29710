"""The notebook's "how to read the verdicts" text, rendered from this run's metrics and verdicts.

Why: prose typed into Markdown states one machine's numbers and goes stale on the next machine or seed. These
functions read the numbers from the ``metrics.json`` keys the notebook logged — the per-world replicate series
(``C1.slope.r0 …``, see ``cliplab.frequency.worlds``), the per-model fits (``fit.<model>.*``,
``ood.<model>.*``), the misalignment control (``ctrl.misalign.m<percent>.*``) — and the verdicts (status and,
when inconclusive, why), and pick the sentence that fits them, so the text above a run's output always agrees
with it. The paper's numbers are constants here, attributed as the paper's.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import numpy as np

from cliplab.core.claims import INCONCLUSIVE, ClaimResult
from cliplab.core.replicates import interval, replicate_series

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


def series(metrics: Mapping[str, float], name: str) -> np.ndarray:
    """The per-world values ``name.r0 …`` of a replicate metric; KeyError when the run did not log it."""
    found = replicate_series(metrics)
    if name not in found:
        raise KeyError(f"replicate metric '{name}' (keys {name}.r0 …) is not in this run's metrics")
    return found[name]


def _pooled(values: np.ndarray, unit: str = "", digits: int = 1) -> str:
    """'mean [low, high] unit over n worlds' with the 95 % t-interval over worlds (no interval for one world)."""
    mean, low, high = interval(values)
    span = f" [{low:.{digits}f}, {high:.{digits}f}]" if values.size > 1 else ""
    worlds = "world" if values.size == 1 else "worlds"
    return f"{mean:.{digits}f}{span}{unit} over {values.size} {worlds}"


def _positive(values: np.ndarray) -> str:
    """'k of n worlds' in which a value is above 0."""
    return f"{int((values > 0).sum())} of {values.size} worlds"


def _status(result: ClaimResult) -> str:
    """The bold lead of one claim's bullet: '**C1 (status).**', plus why when the claim is inconclusive."""
    why = f" Inconclusive because {result.reason}." if result.status == INCONCLUSIVE and result.reason else ""
    return f"**{result.claim.id} ({result.status}).**{why}"


def slope_reading(metrics: Mapping[str, float], results: Mapping[str, ClaimResult]) -> str:
    """C1 and C5: the slope per world against the paper's, log f vs f, and the slope per prompt style."""
    slope, r_log, r_lin = (series(metrics, f"C1.{s}") for s in ("slope", "r_log", "r_linear"))
    mean = float(slope.mean())
    place = ("steeper than" if mean > PAPER_SLOPE_RANGE[1] else "flatter than" if mean < PAPER_SLOPE_RANGE[0]
             else "within")
    per_world = ", ".join(f"{v:.1f}" for v in slope)
    c1 = (f"{_status(results['C1'])} The slope is above 0 in {_positive(slope)} ({per_world} points/decade); "
          f"mean {_pooled(slope, ' points/decade')}, {place} the paper's {PAPER_SLOPE}. Accuracy correlates more "
          f"with log10 f than with f in {_positive(r_log - r_lin)} (r {r_log.mean():.2f} vs {r_lin.mean():.2f} on "
          f"average); unbinned r {series(metrics, 'C1.pearson').mean():.2f} on average (the paper's "
          f"{PAPER_PEARSON}), over {series(metrics, 'C1.x_decades').mean():.1f} decades of seen counts.")
    prompts = {"class name": "C5.slope_classname", "'a photo of a …'": "C5.slope_photo",
               "ensemble": "C5.slope_ensemble"}
    parts = [f"{label} {_pooled(series(metrics, name))}, above 0 in {_positive(series(metrics, name))}"
             for label, name in prompts.items()]
    c5 = f"{_status(results['C5'])} Slope by prompt style (points/decade): " + "; ".join(parts) + "."
    return f"{c1}\n* {c5}"


def variant_reading(metrics: Mapping[str, float], result: ClaimResult) -> str:
    """C2: the bigger tower's and the smaller corpus's slopes, and how many worlds they exist in."""
    size, corpus = series(metrics, "C2.slope_size"), series(metrics, "C2.slope_corpus")
    short = (f" The zoo has these variants in {size.size} world(s) only; more replicates need the size and "
             "corpus variants trained in the other worlds." if size.size < result.claim.min_replicates else "")
    return (f"{_status(result)} Bigger image tower: slope {_pooled(size)}, above 0 in {_positive(size)}; "
            f"smaller corpus: slope {_pooled(corpus)}, above 0 in {_positive(corpus)} (points/decade).{short}")


def ood_reading(metrics: Mapping[str, float], result: ClaimResult, domains: Sequence[str]) -> str:
    """C3: the pooled held-out-domain slope per world, and each world's strongest domain."""
    pooled = series(metrics, "C3.slope_ood")
    parts = []
    for m in ood_models(metrics):
        per_domain = {d: metrics[f"ood.{m}.{d}.slope"] for d in domains if f"ood.{m}.{d}.slope" in metrics}
        top = max(per_domain, key=per_domain.get) if per_domain else None
        strongest = f"; strongest domain {top} {_ci(metrics, f'ood.{m}.{top}')}" if top else ""
        parts.append(f"`{m}` pooled {_ci(metrics, f'ood.{m}.pooled')}{strongest}")
    return (f"{_status(result)} The pooled held-out-domain slope is above 0 in {_positive(pooled)}; mean "
            f"{_pooled(pooled, ' points/decade')}. Per model (points/decade, bootstrap CI over concepts): "
            + "; ".join(parts) + ".")


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


def tail_reading(metrics: Mapping[str, float], result: ClaimResult) -> str:
    """C7: the rarest-concepts gap per world against the paper's Let-it-Wag! drop."""
    gap = series(metrics, "C7.gap")
    per_world = ", ".join(f"{v:.1f}" for v in gap)
    return (f"{_status(result)} The rarest-concept gap (all seen minus rarest, points) is above 0 in "
            f"{_positive(gap)} ({per_world}); mean {_pooled(gap, ' points')}, {gap.mean() / PAPER_WAG_GAP:.0%} of "
            f"the paper's {PAPER_WAG_GAP}.")


def reading(metrics: Mapping[str, float], verdicts: Sequence[ClaimResult], *, domains: Sequence[str]) -> str:
    """The whole "how to read the verdicts" list (Markdown) of this run."""
    results = {r.claim.id: r for r in verdicts}
    missing = sorted({"C1", "C2", "C3", "C5", "C7"} - set(results))
    if missing:
        raise KeyError(f"no verdicts for {missing} among {sorted(results)}")
    parts = [slope_reading(metrics, results), variant_reading(metrics, results["C2"]),
             ood_reading(metrics, results["C3"], domains), misalignment_reading(metrics),
             tail_reading(metrics, results["C7"])]
    return "\n".join(f"* {p}" for p in parts)
