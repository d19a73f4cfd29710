"""Per-world replicate series of the concept-frequency claims (cliplab.frequency.worlds) and their scoring."""

from __future__ import annotations

import pandas as pd
import pytest
from cliplab.core import paths
from cliplab.core.artifacts import Artifacts
from cliplab.core.claims import INCONCLUSIVE, REPLICATES, check_claims
from cliplab.frequency import worlds as fw

WORLDS = ["tiny-s0", "tiny-s1", "tiny-s2", "tiny-s3", "tiny-s4"]


def _model_metrics(name: str, slope: float, gap: float = 5.0) -> dict[str, float]:
    k = fw.key(name)
    out = {f"fit.{k}.slope": slope, f"fit.{k}.r_log": 0.4, f"fit.{k}.r_linear": 0.2, f"fit.{k}.pearson": 0.4,
           f"fit.{k}.spearman": 0.5, f"fit.{k}.x_decades": 2.0, f"fit.{k}.gap": gap,
           f"fit.{k}.standard_acc": 0.5, f"fit.{k}.tail_acc": 0.5 - gap / 100, f"fit.{k}.binned_rho": 0.9,
           f"fit.{k}.zero_acc": 0.01, f"ood.{k}.pooled.slope": slope / 2, f"ood.{k}.noisy.slope": slope / 3,
           f"top1.{k}.clean": 0.5, f"top1.{k}.ood": 0.3}
    out |= {f"prompt.{k}.{col}.slope": slope for col in fw.PROMPTS.values()}
    return out


def world_metrics(slopes: list[float], variants: bool = True) -> dict[str, float]:
    """Per-model metrics of len(slopes) worlds (and small-s0, tiny-c15k-s0), as the notebook logs them."""
    metrics: dict[str, float] = {}
    for name, slope in zip(WORLDS, slopes):
        metrics |= _model_metrics(name, slope)
    if variants:
        metrics |= _model_metrics("small-s0", 6.0) | _model_metrics("tiny-c15k-s0", 7.0)
    return metrics


def logged(metrics: dict[str, float], worlds: list[str], tmp_path) -> dict[str, float]:
    """What the notebook's verdict cell logs: the per-world series, C2's variants and the summary."""
    art = Artifacts(tmp_path)
    art.log_metrics(metrics)
    art.log_replicates({**fw.world_series(art.metrics, worlds, ["noisy"]),
                        **fw.variant_series(art.metrics, ["small-s0"], ["tiny-c15k-s0"])})
    art.log_metrics(fw.world_summary(art.metrics, worlds, [*worlds, "small-s0", "tiny-c15k-s0"], 200))
    return art.metrics


def test_key_and_evaluated_models() -> None:
    assert fw.key("tiny-c15k-s0") == "tiny_c15k_s0"
    assert fw.evaluated_models(["tiny-s0", "tiny-s1"], ["small-s0", "tiny-s0"]) == ["tiny-s0", "tiny-s1", "small-s0"]
    with pytest.raises(ValueError, match="world"):
        fw.evaluated_models([], ["small-s0"])


def test_world_series_reads_one_value_per_world_in_order() -> None:
    series = fw.world_series(world_metrics([1.0, 2.0, 3.0]), WORLDS[:3], ["noisy"])
    assert series["C1.slope"] == [1.0, 2.0, 3.0]
    assert series["C3.slope_ood"] == [0.5, 1.0, 1.5]
    assert series["C3.slope_noisy"] == pytest.approx([1 / 3, 2 / 3, 1.0])
    assert series["C5.slope_classname"] == [1.0, 2.0, 3.0]
    assert series["C7.standard_acc"] == [0.5] * 3
    with pytest.raises(KeyError, match="fit.tiny_s3.slope"):
        fw.world_series(world_metrics([1.0, 2.0, 3.0]), WORLDS[:4])


def test_variant_series_needs_one_size_per_corpus_variant() -> None:
    metrics = world_metrics([1.0])
    assert fw.variant_series(metrics, ["small-s0"], ["tiny-c15k-s0"]) == {"C2.slope_size": [6.0],
                                                                         "C2.slope_corpus": [7.0]}
    with pytest.raises(ValueError, match="as many"):
        fw.variant_series(metrics, ["small-s0"], [])


def test_world_summary_multiplier_is_zero_without_a_positive_mean_slope() -> None:
    up = fw.world_summary(world_metrics([10.0, 10.0]), WORLDS[:2], WORLDS[:2], 100)
    assert up["C1.multiplier"] == pytest.approx(10.0) and up["C1.chance"] == 0.01 and up["C1.n_worlds"] == 2
    flat = fw.world_summary(world_metrics([-1.0, 0.5]), WORLDS[:2], WORLDS[:2], 100)
    assert flat["C1.multiplier"] == 0.0


def test_top1_metrics_are_mean_per_concept_accuracies() -> None:
    clean, ood = pd.DataFrame({"accuracy": [0.2, 0.4]}), pd.DataFrame({"accuracy": [0.1, 0.3]})
    assert fw.top1_metrics("tiny-s1", clean, ood) == pytest.approx({"top1.tiny_s1.clean": 0.3,
                                                                    "top1.tiny_s1.ood": 0.2})


def test_claims_are_scored_over_worlds_and_c2_is_inconclusive_with_one_world(tmp_path) -> None:
    claims = paths.claims_path(paths.project_root(), "concept_frequency")
    metrics = logged(world_metrics([8.0, 9.0, 10.0, 11.0, 12.0]), WORLDS, tmp_path)
    status = {r.claim.id: r for r in check_claims(claims, metrics)}
    assert status["C1"].status == REPLICATES and status["C1"].passing == "5/5"
    assert status["C3"].status == status["C5"].status == status["C7"].status == REPLICATES
    assert status["C2"].status == INCONCLUSIVE and "1 replicate(s) of the 5" in status["C2"].reason


def test_claims_need_five_worlds_at_default_scale_and_two_at_smoke(tmp_path) -> None:
    claims = paths.claims_path(paths.project_root(), "concept_frequency")
    three = logged(world_metrics([8.0, 9.0, 10.0]), WORLDS[:3], tmp_path)
    assert {r.claim.id: r.status for r in check_claims(claims, three)}["C1"] == INCONCLUSIVE
    two = logged(world_metrics([8.0, 9.0]), WORLDS[:2], tmp_path / "smoke")
    smoke = {r.claim.id: r for r in check_claims(claims, two, smoke=True)}
    assert smoke["C1"].status == REPLICATES and smoke["C2"].status == INCONCLUSIVE


def test_worlds_of_opposite_sign_make_c1_inconclusive_not_a_small_mean(tmp_path) -> None:
    claims = paths.claims_path(paths.project_root(), "concept_frequency")
    metrics = logged(world_metrics([8.0, -6.0, 9.0, -7.0, 10.0]), WORLDS, tmp_path)
    c1 = {r.claim.id: r for r in check_claims(claims, metrics)}["C1"]
    assert c1.status == INCONCLUSIVE and "replicates disagree (3 of 5 pass)" in c1.reason
