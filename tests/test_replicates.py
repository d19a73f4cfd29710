"""Scoring over replicates: pooled three-valued comparisons, per-replicate verdicts, and the one verdict rule."""

from __future__ import annotations

import numpy as np
import pytest
from cliplab.core import claims
from cliplab.core.artifacts import Artifacts
from cliplab.core.claims import Claim, verdict
from cliplab.core.replicates import CheckError, interval, replicate_series, score
from scipy import stats


def series(key: str, values: list[float]) -> dict[str, float]:
    return {**{f"{key}.r{i}": v for i, v in enumerate(values)}, key: float(np.mean(values))}


def test_interval_is_the_student_t_interval_of_the_mean() -> None:
    values = np.array([0.1, 0.4, 0.2, 0.3, 0.25])
    mean, low, high = interval(values)
    expected = stats.t.interval(0.95, len(values) - 1, loc=values.mean(), scale=stats.sem(values))
    assert mean == pytest.approx(values.mean()) and (low, high) == pytest.approx(expected)
    assert interval(np.array([0.5, 0.5])) == (0.5, 0.5, 0.5)


def test_a_consistent_effect_holds_and_every_replicate_passes() -> None:
    scored = score("X.tau < 0", series("X.tau", [-0.5, -0.4, -0.6, -0.45, -0.55]))
    assert scored.n == 5 and scored.pooled is True and all(scored.per_replicate)


def test_opposite_signs_do_not_average_into_a_verdict() -> None:
    """Seeds −0.78 … +0.27 (the B-C1 case of issue 22): 'weak' is undecided, and the replicates disagree."""
    m = series("B.tau", [-0.78, -0.4, 0.27, -0.1, 0.2])
    scored = score("-0.5 < B.tau < 0.5", m)
    assert scored.pooled is None and not all(scored.per_replicate)
    claim = Claim("B-C1", "c", "p", "", "-0.5 < B.tau < 0.5", replicates_over="fine-tuning seed", min_replicates=5)
    assert verdict(claim, scored) == (claims.INCONCLUSIVE, "replicates disagree (4 of 5 pass)")


def test_a_clear_failure_is_a_failure() -> None:
    scored = score("X.slope > 0", series("X.slope", [-0.3, -0.2, -0.25, -0.35, -0.28]))
    claim = Claim("C1", "c", "p", "", "X.slope > 0", replicates_over="seed", min_replicates=5)
    assert scored.pooled is False and verdict(claim, scored) == (claims.FAILS, "")


def test_too_few_replicates_is_inconclusive_and_smoke_needs_two() -> None:
    claim = Claim("C1", "c", "p", "", "X.slope > 0", replicates_over="seed", min_replicates=5)
    scored = score(claim.check, series("X.slope", [0.30, 0.31]))
    assert verdict(claim, scored) == (claims.INCONCLUSIVE, "2 replicate(s) of the 5 it needs")
    assert verdict(claim, scored, smoke=True) == (claims.REPLICATES, "")
    wide = score(claim.check, series("X.slope", [0.3, 0.2]))  # t(0.975, 1) = 12.7: two replicates decide little
    assert verdict(claim, wide, smoke=True) == (claims.INCONCLUSIVE, "the pooled interval straddles the threshold")


def test_straddling_interval_with_agreeing_replicates_is_inconclusive() -> None:
    m = series("X.d", [0.01, 0.9, 0.02, 0.8, 0.01])
    scored = score("X.d > 0.2", m)
    assert not all(scored.per_replicate)
    m = series("X.d", [0.21, 0.9, 0.25, 0.85, 0.22])
    scored = score("X.d > 0.2", m)
    assert all(scored.per_replicate) and scored.pooled is None
    claim = Claim("C1", "c", "p", "", "X.d > 0.2", replicates_over="seed", min_replicates=5)
    assert verdict(claim, scored) == (claims.INCONCLUSIVE, "the pooled interval straddles the threshold")


def test_comparisons_of_two_series_are_paired_per_replicate() -> None:
    """a − b is consistently positive although a and b overlap widely: pairing sees it, unpaired CIs would not."""
    base = [0.1, 0.5, 0.9, 0.3, 0.7]
    m = {**series("A.x", [v + 0.05 for v in base]), **series("A.y", base)}
    scored = score("A.x > A.y", m)
    assert scored.pooled is True and scored.comparisons[0].left == "A.x − (A.y)"


def test_kleene_logic_and_scalars_broadcast() -> None:
    m = {**series("A.x", [0.2, 0.3, 0.25]), **series("A.y", [0.1, -0.1, 0.3]), "K": 1.0}
    assert score("A.x > 0 and A.y > 0", m).pooled is None
    assert score("A.x > 0 or A.y > 0", m).pooled is True
    assert score("A.x < 0 and A.y > 0", m).pooled is False
    assert score("not A.x > 0", m).pooled is False
    assert score("K > 0.5 and A.x > 0", m).pooled is True


def test_mixed_replicate_counts_and_gaps_are_errors() -> None:
    with pytest.raises(CheckError, match="different replicate counts"):
        score("A.x > A.y", {**series("A.x", [1.0, 2.0]), **series("A.y", [1.0, 2.0, 3.0])})
    with pytest.raises(CheckError, match="not r0"):
        replicate_series({"A.x.r0": 1.0, "A.x.r2": 2.0})
    with pytest.raises(CheckError, match="'A.z'"):
        score("A.z > 0", series("A.x", [1.0, 2.0]))


def test_log_replicates_writes_each_replicate_and_the_mean(tmp_path) -> None:
    art = Artifacts(out_dir=tmp_path)
    art.log_replicates({"C1.bias": [0.1, 0.2, 0.6]})
    assert art.metrics == {"C1.bias.r0": 0.1, "C1.bias.r1": 0.2, "C1.bias.r2": 0.6, "C1.bias": pytest.approx(0.3)}
    with pytest.raises(ValueError, match="no replicates"):
        art.log_replicates({"C1.none": []})
    with pytest.raises(ValueError, match="finite"):
        art.log_replicates({"C1.nan": [0.1, float("nan")]})
