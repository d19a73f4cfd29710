"""The notebook's "how to read the verdicts" text, rendered from this run's metrics and verdicts.

Why: prose typed into Markdown states one machine's numbers and goes stale on the next machine or seed. These
functions read the numbers from ``metrics.json`` keys the notebook logged (``C1.*``, ``C2.*``, ``C4.*``) and
choose the sentence that fits them (e.g. "every head lowers CAB" only when the largest head CAB is below the
zero-shot CLIP's), so the text above a run's output always agrees with it. The paper's numbers are constants
here, attributed as the paper's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from cliplab.core.claims import ClaimResult, status_of

PAPER_CAB = 0.961  # EMNLP table, pretrained CLIP
PAPER_V1_TWO, PAPER_V1_TWO_STAR = 0.18, 0.91  # v1 chart, natural colours
PAPER_V1_UNNATURAL = 0.45  # v1 chart, unnatural colours: Two and Two* alike
C4_RHO_BAR = -0.7  # claims.yaml C4: near-monotone ranking over the heads
_SUMMARY_KEYS = ("clip", "min", "max")


def head_variants(metrics: Mapping[str, float]) -> list[str]:
    """The VQA-head variants this run logged (``C4.vqa_<variant>`` keys), in key order."""
    return sorted(k.removeprefix("C4.vqa_") for k in metrics
                  if k.startswith("C4.vqa_") and k.removeprefix("C4.vqa_") not in _SUMMARY_KEYS)


def c1_reading(metrics: Mapping[str, float], status: str) -> str:
    """C1 on natural-colour pairs: single-object accuracy, Two vs Two*, the third-colour rate, CAB."""
    single, two, star = metrics["C1.single_natural"], metrics["C1.two_natural"], metrics["C1.two_star_natural"]
    third, cab = metrics["C1.third_natural"], metrics["C1.cab_natural"]
    pull = (f"answer with the *other* object's colour {star / two:.1f} times as often as with the right one"
            if two > 0 and star > two else "do not prefer the other object's colour over the right one")
    confusion = ("so the answer is nearly always one of the two colours shown: this is a pull toward the wrong "
                 "one, not confusion among colours" if third < 0.1 else
                 "so a sizeable share of answers is neither colour shown: part of the error is plain confusion")
    return (f"**C1 ({status}).** On natural-colour pairs the models name an object's colour alone with accuracy "
            f"{single:.2f} (Single) and, with both objects shown, {pull} (Two {two:.2f}, Two\\* {star:.2f}). "
            f"The third-colour rate is {third:.2f}, {confusion}. CAB is {cab:.3f} "
            f"[{metrics['C1.cab_natural_ci_low']:.3f}, {metrics['C1.cab_natural_ci_high']:.3f}] against the "
            f"paper's {PAPER_CAB} for pretrained CLIP, and Two / Two\\* compare with the paper's v1 chart "
            f"({PAPER_V1_TWO} / {PAPER_V1_TWO_STAR}).")


def c2_reading(metrics: Mapping[str, float], status: str) -> str:
    """C2: CAB by condition, whether the weak-concept CI contains 0.5, the unnatural split, the pooled ρ."""
    natural, weak, unnatural = (metrics[f"C2.cab_{c}"] for c in ("natural", "weak", "unnatural"))
    lo, hi = metrics["C2.cab_weak_ci_low"], metrics["C2.cab_weak_ci_high"]
    absent = ("its CI contains 0.5: no pull toward either colour" if lo <= 0.5 <= hi
              else "its CI excludes 0.5: some pull remains even without an association")
    two, star = metrics["C2.two_unnatural"], metrics["C2.two_star_unnatural"]
    split = ("split nearly evenly between the two colours shown" if abs(two - star) <= 0.15 and two + star >= 0.7
             else "do not split evenly between the two colours shown")
    rho = metrics["C2.spearman_assoc"]
    return (f"**C2 ({status}).** CAB is {natural:.3f} on natural pairs, {weak:.3f} on weak concepts "
            f"[{lo:.3f}, {hi:.3f}] ({absent}) and {unnatural:.3f} on unnatural colours. Unnatural answers "
            f"{split} (Two {two:.2f}, Two\\* {star:.2f}; the paper's v1 CLIP {PAPER_V1_UNNATURAL} / "
            f"{PAPER_V1_UNNATURAL}). The pooled Spearman ρ of per-pair CAB with association strength is "
            f"{rho:+.2f} [{metrics['C2.spearman_assoc_ci_low']:+.2f}, {metrics['C2.spearman_assoc_ci_high']:+.2f}] "
            f"over {metrics['C2.n_pairs']:.0f} pairs.")


def c4_reading(metrics: Mapping[str, float], status: str) -> str:
    """C4: whether every head lowers CAB below zero-shot CLIP, the best head, and the CAB–VQA ranking."""
    variants = head_variants(metrics)
    clip = metrics["C4.cab_clip"]
    cab_min, cab_max = metrics["C4.cab_min"], metrics["C4.cab_max"]
    lowered = (f"Every head lowers CAB below the zero-shot CLIP's ({clip:.2f} → {cab_min:.2f}–{cab_max:.2f}; "
               "the star in the scatter)" if cab_max < clip else
               f"Not every head lowers CAB below the zero-shot CLIP's {clip:.2f} (heads {cab_min:.2f}–{cab_max:.2f})")
    best = max(variants, key=lambda v: metrics[f"C4.vqa_{v}"])
    worst = min(variants, key=lambda v: metrics[f"C4.vqa_{v}"])
    top_cab = max(variants, key=lambda v: metrics[f"C4.cab_{v}"])
    rho = metrics["C4.spearman_cab_vqa"]
    if not metrics.get("C4.spearman_defined", 1.0):
        ranking = "The rank correlation over the heads is undefined in this run (tied values)."
    elif rho <= C4_RHO_BAR:
        ranking = (f"Over the {len(variants)} heads Spearman ρ(CAB, VQA accuracy) is {rho:+.2f}, within the "
                   f"check's near-monotone bar (ρ ≤ {C4_RHO_BAR}).")
    else:
        ranking = (f"Over the {len(variants)} heads Spearman ρ(CAB, VQA accuracy) is {rho:+.2f}, short of the "
                   f"check's near-monotone bar (ρ ≤ {C4_RHO_BAR}): `{top_cab}` has the highest CAB "
                   f"({metrics[f'C4.cab_{top_cab}']:.2f}, VQA {metrics[f'C4.vqa_{top_cab}']:.2f}) and `{worst}` the "
                   f"lowest VQA accuracy ({metrics[f'C4.vqa_{worst}']:.2f}, CAB {metrics[f'C4.cab_{worst}']:.2f}).")
    return (f"**C4 ({status}).** {lowered}, and `{best}` has the highest VQA accuracy "
            f"({metrics[f'C4.vqa_{best}']:.2f}). {ranking}")


def reading(metrics: Mapping[str, float], verdicts: Sequence[ClaimResult]) -> str:
    """The whole "how to read the verdicts" list (Markdown) for claims C1, C2 and C4 of this run."""
    parts = [c1_reading(metrics, status_of(verdicts, "C1")), c2_reading(metrics, status_of(verdicts, "C2")),
             c4_reading(metrics, status_of(verdicts, "C4"))]
    return "\n".join(f"* {p}" for p in parts)
