"""The rendered "how to read the verdicts" text: it states this run's numbers and picks the sentence they fit.

The metrics are a recorded smoke run's (``tests/golden``), so every key a narrative reads is one a notebook
really writes; single values are then changed to see that the text follows them.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cliplab.association import narrative as association
from cliplab.core import paths
from cliplab.core.claims import ClaimResult, check_claims, status_of
from cliplab.frequency import narrative as frequency
from cliplab.sharpness import narrative as sharpness
from cliplab.shortcut import narrative as shortcut

REPO = Path(__file__).resolve().parents[1]


def _smoke_metrics(paper: str) -> dict[str, float]:
    recorded = sorted((REPO / "tests" / "golden").glob(f"*/{paper}.smoke.json"))
    if not recorded:
        pytest.skip(f"no recorded smoke metrics of {paper} under tests/golden")
    return json.loads(recorded[0].read_text())


def _verdicts(paper: str, metrics: dict[str, float]) -> list[ClaimResult]:
    return check_claims(paths.claims_path(REPO, paper), metrics)


READERS = {
    "concept_association_bias": (association.reading, {}),
    "concept_frequency": (frequency.reading, {"primary": "tiny_s0", "domains": ["noisy"]}),
    "sharpness": (sharpness.reading, {}),
    "shortcut_learning": (shortcut.reading, {}),
}


@pytest.mark.parametrize("paper", sorted(READERS))
def test_reading_names_every_scored_claim_with_its_status_and_no_unfilled_value(paper: str) -> None:
    metrics = _smoke_metrics(paper)
    verdicts = _verdicts(paper, metrics)
    read, kwargs = READERS[paper]
    text = read(metrics, verdicts, **kwargs)
    for v in verdicts:
        if f"**{v.claim.id} (" in text:
            assert f"**{v.claim.id} ({v.status})" in text
    assert "nan" not in text and "{" not in text
    assert text.count("\n* ") == len(text.splitlines()) - 1  # one Markdown bullet per line


def test_status_of_finds_a_claim_and_names_the_known_ones_when_it_cannot() -> None:
    verdicts = _verdicts("sharpness", _smoke_metrics("sharpness"))
    assert status_of(verdicts, "A-C1") == verdicts[0].status
    with pytest.raises(KeyError, match="A-C1"):
        status_of(verdicts, "Z9")


def test_association_c1_states_this_runs_numbers() -> None:
    m = _smoke_metrics("concept_association_bias") | {"C1.two_natural": 0.2, "C1.two_star_natural": 0.6,
                                                      "C1.third_natural": 0.05, "C1.cab_natural": 0.7}
    text = association.c1_reading(m, "replicates")
    assert "3.0 times as often" in text and "CAB is 0.700" in text and "not confusion" in text
    assert "plain confusion" in association.c1_reading(m | {"C1.third_natural": 0.4}, "x")
    assert "do not prefer" in association.c1_reading(m | {"C1.two_star_natural": 0.1}, "x")


def test_association_c4_says_every_head_lowers_cab_only_when_the_largest_head_cab_is_below_clip() -> None:
    m = _smoke_metrics("concept_association_bias")
    below = association.c4_reading(m | {"C4.cab_max": m["C4.cab_clip"] - 0.01}, "x")
    above = association.c4_reading(m | {"C4.cab_max": m["C4.cab_clip"] + 0.01}, "x")
    assert below.count("Every head lowers CAB") == 1 and "Not every head" in above
    assert "short of the check's" in association.c4_reading(m | {"C4.spearman_cab_vqa": 0.2}, "x")
    assert "within the check's" in association.c4_reading(m | {"C4.spearman_cab_vqa": -0.9}, "x")
    assert set(association.head_variants(m)) >= {"pooled", "layers2"}


def test_association_c2_reads_the_weak_ci_against_one_half() -> None:
    m = _smoke_metrics("concept_association_bias")
    assert "contains 0.5" in association.c2_reading(m | {"C2.cab_weak_ci_low": 0.45, "C2.cab_weak_ci_high": 0.55}, "x")
    assert "excludes 0.5" in association.c2_reading(m | {"C2.cab_weak_ci_low": 0.55, "C2.cab_weak_ci_high": 0.6}, "x")


def test_frequency_c3_counts_the_models_whose_pooled_ci_is_above_zero() -> None:
    m = _smoke_metrics("concept_frequency")
    models = frequency.ood_models(m)
    assert len(models) >= 2 and frequency.tail_models(m) == models
    m = m | {f"ood.{n}.pooled.slope_ci_low": 1.0 for n in models} | {f"ood.{models[0]}.pooled.slope_ci_low": -1.0,
                                                                     f"ood.{models[0]}.pooled.slope": 3.0}
    text = frequency.ood_reading(m, "does not replicate", ["noisy"])
    assert text.count(f"{len(models) - 1} of {len(models)} models") == 1
    assert f"`{models[0]}` has its pooled CI" in text and "not resolved" in text
    every = frequency.ood_reading(m | {f"ood.{models[0]}.pooled.slope_ci_low": 0.5}, "replicates", ["noisy"])
    assert "every model's pooled CI is above 0" in every


def test_frequency_misalignment_control_reports_which_rates_overlap_the_clean_slope() -> None:
    m = {"C6.spearman_corpora": 0.9}
    for level, (lo, hi) in {0: (10.0, 30.0), 15: (12.0, 35.0), 35: (1.0, 8.0)}.items():
        m |= {f"ctrl.misalign.m{level}.slope": (lo + hi) / 2, f"ctrl.misalign.m{level}.slope_ci_low": lo,
              f"ctrl.misalign.m{level}.slope_ci_high": hi, f"ctrl.misalign.m{level}.top1": 0.3 - level / 100}
    text = frequency.misalignment_reading(m)
    assert frequency.misalignment_levels(m) == [0, 15, 35]
    assert text.endswith("the slope's CI overlaps the 0 % one at 15 %.")
    assert "35 %: top-1 -0.05" in text
    assert "did not run" in frequency.misalignment_reading({})


def test_frequency_slope_is_placed_against_the_papers_range() -> None:
    m = _smoke_metrics("concept_frequency")
    statuses = {c: "x" for c in ("C1", "C2", "C5")}
    assert "steeper than the paper's" in frequency.slope_reading(m | {"fit.tiny_s0.slope": 20.0}, statuses, "tiny_s0")
    assert "within the paper's" in frequency.slope_reading(m | {"fit.tiny_s0.slope": 7.0}, statuses, "tiny_s0")
    assert "flatter than the paper's" in frequency.slope_reading(m | {"fit.tiny_s0.slope": 2.0}, statuses, "tiny_s0")


def test_sharpness_wise_ft_premise_follows_which_endpoint_is_more_robust() -> None:
    m = _smoke_metrics("sharpness")
    robust = sharpness.b_endpoints_reading(m | {"B.W1.ood_acc_zero_shot": 0.6, "B.W1.ood_acc_finetuned": 0.5}, "x")
    fragile = sharpness.b_endpoints_reading(m | {"B.W1.ood_acc_zero_shot": 0.4, "B.W1.ood_acc_finetuned": 0.5}, "x")
    assert "as WiSE-FT assumes" in robust and "does not hold" in fragile
    assert "0.400 against the fine-tuned model's 0.500" in fragile


def test_sharpness_a_c1_reads_both_halves_of_the_claim() -> None:
    m = _smoke_metrics("sharpness") | {"A.C1.tau_test_error": -0.2, "A.C1.tau_lr": 0.1}
    text = sharpness.a_c1_reading(m, "does not replicate")
    assert "-0.20 (weak, as the claim says)" in text and "weaker still" in text
    assert "(+0.10) is weaker still" in text
    assert "stronger, as the claim says" in sharpness.a_c1_reading(m | {"A.C1.tau_lr": 0.5}, "x")
    assert "all" not in sharpness.factor_taus(m)


def test_shortcut_c2_says_prefers_only_when_the_deep_reliance_ci_is_above_zero_where_lda_prefers_the_core() -> None:
    m = _smoke_metrics("shortcut_learning") | {"C2.reliance_lda": -0.5}
    assert "it prefers the less predictive feature" in shortcut.c2_reading(m | {"C2.reliance_deep_ci_low": 0.1}, "x")
    unresolved = m | {"C2.reliance_deep_ci_low": -0.1, "C2.reliance_deep_ci_high": 0.1}
    assert "does not resolve a preference" in shortcut.c2_reading(unresolved, "x")
    core = m | {"C2.reliance_deep_ci_low": -0.9, "C2.reliance_deep_ci_high": -0.4}
    assert "relies on the core (reliance CI below 0), as LDA does" in shortcut.c2_reading(core, "x")
    assert "cannot show the claim" in shortcut.c2_reading(m | {"C2.reliance_lda": 0.2}, "x")


def test_shortcut_c1_applies_the_checks_unbiased_bar() -> None:
    m = _smoke_metrics("shortcut_learning")
    assert "(unbiased by" in shortcut.c1_reading(m | {"C1.bias_linear": 0.05}, "x")
    assert "(biased by" in shortcut.c1_reading(m | {"C1.bias_linear": -0.2}, "x")
