"""The notebook's "how to read the verdicts" text, rendered from this run's metrics and verdicts.

Why: prose typed into Markdown states one machine's numbers and goes stale on the next machine or seed. These
functions read the numbers from ``metrics.json`` keys the notebook logged (``C1.*``, ``C2.*``, ``C4.*``, each
claim statistic as a replicate series ``KEY.r0 …`` with ``KEY`` = its mean) and choose the sentence that fits
them: how many replicates (zoo CLIPs for C1/C2, head seeds for C4) show the effect, and whether they agree in
sign, so a mean of opposite-sign correlations is never read as "no correlation". The paper's numbers are
constants here, attributed as the paper's.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import numpy as np

from cliplab.core.claims import INCONCLUSIVE, ClaimResult

PAPER_CAB = 0.961  # EMNLP table, pretrained CLIP
PAPER_V1_TWO, PAPER_V1_TWO_STAR = 0.18, 0.91  # v1 chart, natural colours
PAPER_V1_UNNATURAL = 0.45  # v1 chart, unnatural colours: Two and Two* alike
WEAK_BAND = 0.075  # claims.yaml C2: weak-concept CAB within 0.5 ± this (|Two* − Two| ≤ 0.15)
SPLIT_BAR, SPLIT_SHARE = 0.15, 0.7  # claims.yaml C2: unnatural |Two − Two*| ≤ 0.15 and Two + Two* ≥ 0.7
C4_RHO_BAR = -0.7  # claims.yaml C4: near-monotone ranking over the heads, per head seed
_SUMMARY_KEYS = ("clip", "min", "max")
_REPLICATE = re.compile(r"\.r\d+$")


def series(metrics: Mapping[str, float], key: str) -> np.ndarray:
    """The replicates ``KEY.r0, KEY.r1, …`` of a metric, in order (just ``[KEY]`` when it has none)."""
    values = []
    while f"{key}.r{len(values)}" in metrics:
        values.append(float(metrics[f"{key}.r{len(values)}"]))
    return np.array(values if values else [float(metrics[key])])


def head_variants(metrics: Mapping[str, float]) -> list[str]:
    """The VQA-head variants this run logged (``C4.vqa_<variant>`` keys, replicates aside), in key order."""
    return sorted(k.removeprefix("C4.vqa_") for k in metrics if k.startswith("C4.vqa_") and not _REPLICATE.search(k)
                  and k.removeprefix("C4.vqa_") not in _SUMMARY_KEYS)


def _label(status: str) -> str:
    return f"({status})"


def _why(status: str, reason: str) -> str:
    return f" The verdict is inconclusive: {reason}." if status == INCONCLUSIVE and reason else ""


def _spread(values: np.ndarray, fmt: str = ".2f") -> str:
    """'x' for one value, else 'x–y' (the range over replicates; 'x to y' for signed values)."""
    if values.size == 1:
        return f"{values[0]:{fmt}}"
    dash = " to " if fmt.startswith("+") else "–"
    return f"{values.min():{fmt}}{dash}{values.max():{fmt}}"


def _signs(values: np.ndarray, what: str) -> str:
    """Whether replicate correlations agree in sign: said outright when they do not."""
    positive, negative = int((values > 0).sum()), int((values < 0).sum())
    if positive and negative:
        return (f"the replicates disagree in sign ({positive} positive, {negative} negative of {values.size}), "
                f"so the mean {what} is not a small effect but no consistent one")
    sign = "positive" if positive else "negative" if negative else "zero"
    return f"every replicate's {what} is {sign}" if values.size > 1 else f"the {what} is {sign}"


def c1_reading(metrics: Mapping[str, float], status: str, reason: str = "",
               extra_models: Sequence[str] = ()) -> str:
    """C1 on natural-colour pairs: single-object accuracy, Two vs Two*, the third-colour rate, CAB per model."""
    single, two, star = metrics["C1.single_natural"], metrics["C1.two_natural"], metrics["C1.two_star_natural"]
    third, cab = metrics["C1.third_natural"], metrics["C1.cab_natural"]
    cabs = series(metrics, "C1.cab_natural")
    pull = (f"answer with the *other* object's colour {star / two:.1f} times as often as with the right one"
            if two > 0 and star > two else "do not prefer the other object's colour over the right one")
    confusion = ("so the answer is nearly always one of the two colours shown: this is a pull toward the wrong "
                 "one, not confusion among colours" if third < 0.1 else
                 "so a sizeable share of answers is neither colour shown: part of the error is plain confusion")
    beside = [f"{m} {metrics[key]:.3f}" for m in extra_models
              if (key := f"model.{m.replace('-', '_')}.natural.cab") in metrics]
    extra = (f" Beside the series (another recipe, not a replicate): CAB {', '.join(beside)}." if beside else "")
    return (f"**C1 {_label(status)}.** Over {cabs.size} zoo CLIPs of one recipe (means over models), the models "
            f"name an object's colour alone with accuracy {single:.2f} (Single) and, with both objects shown, "
            f"{pull} (Two {two:.2f}, Two\\* {star:.2f}). The third-colour rate is {third:.2f}, {confusion}. "
            f"CAB is {cab:.3f} (models {_spread(cabs, '.3f')}; {int((cabs > 0.5).sum())} of {cabs.size} above "
            f"0.5) against the paper's {PAPER_CAB} for pretrained CLIP, and Two / Two\\* compare with the "
            f"paper's v1 chart ({PAPER_V1_TWO} / {PAPER_V1_TWO_STAR}).{extra}{_why(status, reason)}")


def c2_reading(metrics: Mapping[str, float], status: str, reason: str = "") -> str:
    """C2: CAB by condition, how many models keep weak CAB near 0.5, the unnatural split, per-model ρ."""
    natural, weak, unnatural = (metrics[f"C2.cab_{c}"] for c in ("natural", "weak", "unnatural"))
    weaks = series(metrics, "C2.cab_weak")
    inside = int((np.abs(weaks - 0.5) <= WEAK_BAND).sum())
    absent = (f"every model's within 0.5 ± {WEAK_BAND}: no pull toward either colour" if inside == weaks.size
              else f"{inside} of {weaks.size} models within 0.5 ± {WEAK_BAND}")
    two, star = series(metrics, "C2.two_unnatural"), series(metrics, "C2.two_star_unnatural")
    even = int(((np.abs(two - star) <= SPLIT_BAR) & (two + star >= SPLIT_SHARE)).sum())
    split = ("split nearly evenly between the two colours shown in every model" if even == two.size
             else f"split evenly between the two colours shown in {even} of {two.size} models")
    rhos = series(metrics, "C2.spearman_assoc")
    return (f"**C2 {_label(status)}.** CAB is {natural:.3f} on natural pairs, {weak:.3f} on weak concepts "
            f"(models {_spread(weaks, '.3f')}; {absent}) and {unnatural:.3f} on unnatural colours. Unnatural "
            f"answers {split} (mean Two {two.mean():.2f}, Two\\* {star.mean():.2f}; the paper's v1 CLIP "
            f"{PAPER_V1_UNNATURAL} / {PAPER_V1_UNNATURAL}). Per model, Spearman ρ of per-pair CAB with association "
            f"strength (pairs of all conditions) is {rhos.mean():+.2f} on average (models {_spread(rhos, '+.2f')}); "
            f"{_signs(rhos, 'ρ')}.{_why(status, reason)}")


def c4_reading(metrics: Mapping[str, float], status: str, reason: str = "") -> str:
    """C4: whether the heads lower CAB below zero-shot CLIP, the best head, the CAB–VQA ranking per head seed."""
    variants = head_variants(metrics)
    clip = metrics["C4.cab_clip"]
    cab_min, cab_max = metrics["C4.cab_min"], metrics["C4.cab_max"]
    lowered = (f"Every head lowers CAB below the zero-shot CLIP's on average over head seeds ({clip:.2f} → "
               f"{cab_min:.2f}–{cab_max:.2f}; the star in the scatter)" if cab_max < clip else
               f"Not every head lowers CAB below the zero-shot CLIP's {clip:.2f} (seed-mean CAB of the heads "
               f"{cab_min:.2f}–{cab_max:.2f})")
    if "C4.cab_transformer_heads" in metrics:
        heads = series(metrics, "C4.cab_transformer_heads")
        lowered += (f"; the Transformer heads' mean CAB is below it for {int((heads < clip).sum())} of "
                    f"{heads.size} head seeds")
    best = max(variants, key=lambda v: metrics[f"C4.vqa_{v}"])
    top_cab = max(variants, key=lambda v: metrics[f"C4.cab_{v}"])
    rhos = series(metrics, "C4.spearman_cab_vqa")
    defined = series(metrics, "C4.spearman_defined") if "C4.spearman_defined" in metrics else np.ones(rhos.size)
    undefined = int((defined == 0).sum())
    ties = f" ({undefined} seed(s) with tied values, ρ undefined and counted as 0)" if undefined else ""
    meeting = int((rhos <= C4_RHO_BAR).sum())
    ranking = (f"Per head seed, Spearman ρ(CAB, VQA accuracy) over the {len(variants)} heads is {rhos.mean():+.2f} "
               f"on average (seeds {_spread(rhos, '+.2f')}){ties}; {meeting} of {rhos.size} seeds reach the "
               f"check's near-monotone bar (ρ ≤ {C4_RHO_BAR}), and {_signs(rhos, 'ρ')}.")
    if meeting < rhos.size:
        ranking += (f" `{top_cab}` has the highest seed-mean CAB ({metrics[f'C4.cab_{top_cab}']:.2f}, VQA "
                    f"{metrics[f'C4.vqa_{top_cab}']:.2f}).")
    return (f"**C4 {_label(status)}.** {lowered}, and `{best}` has the highest seed-mean VQA accuracy "
            f"({metrics[f'C4.vqa_{best}']:.2f}). {ranking}{_why(status, reason)}")


def _find(verdicts: Sequence[ClaimResult], claim_id: str) -> ClaimResult:
    for result in verdicts:
        if result.claim.id == claim_id:
            return result
    raise KeyError(f"no claim {claim_id!r} among {[r.claim.id for r in verdicts]}")


def reading(metrics: Mapping[str, float], verdicts: Sequence[ClaimResult], extra_models: Sequence[str] = ()) -> str:
    """The whole "how to read the verdicts" list (Markdown) for claims C1, C2 and C4 of this run.

    ``extra_models``: zoo models probed beside the C1/C2 series (another recipe), named in C1's paragraph.
    """
    c1, c2, c4 = (_find(verdicts, c) for c in ("C1", "C2", "C4"))
    parts = [c1_reading(metrics, c1.status, c1.reason, extra_models), c2_reading(metrics, c2.status, c2.reason),
             c4_reading(metrics, c4.status, c4.reason)]
    return "\n".join(f"* {p}" for p in parts)
