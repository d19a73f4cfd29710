"""cliplab.stats against closed forms and scipy's own definitions."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as sps

from cliplab import stats


def test_mean_se_closed_form() -> None:
    mean, se = stats.mean_se([1.0, 2.0, 3.0, 4.0])
    assert mean == 2.5
    assert se == pytest.approx(np.std([1, 2, 3, 4], ddof=1) / 2)
    assert stats.mean_se([7.0]) == (7.0, 0.0)


def test_bootstrap_ci_covers_the_mean_and_shrinks_with_n() -> None:
    rng = np.random.default_rng(0)
    small, large = rng.normal(1.0, 1.0, 20), rng.normal(1.0, 1.0, 2000)
    lo_s, hi_s = stats.bootstrap_ci(small, seed=1)
    lo_l, hi_l = stats.bootstrap_ci(large, seed=1)
    assert lo_s < small.mean() < hi_s and lo_l < large.mean() < hi_l
    assert (hi_l - lo_l) < (hi_s - lo_s) / 5  # width ~ 1/sqrt(n): 10x more precise
    # the percentile interval of the mean approximates mean ± 1.96 SE for a large normal sample
    se = large.std(ddof=1) / np.sqrt(large.size)
    assert hi_l - lo_l == pytest.approx(2 * 1.96 * se, rel=0.1)


def test_t_ci_closed_form_and_its_coverage_with_few_seeds() -> None:
    x = np.array([0.2, 0.5, 0.1, 0.4, 0.3])
    half = sps.t.ppf(0.975, 4) * x.std(ddof=1) / np.sqrt(5)
    assert stats.t_ci(x) == pytest.approx((x.mean() - half, x.mean() + half))
    assert stats.t_ci([2.0, 2.0]) == (2.0, 2.0) and stats.t_ci([5.0]) == (5.0, 5.0)
    # the reason seed-level CIs use it: with 3–5 replicates it keeps its 95 %, the percentile bootstrap does not
    rng = np.random.default_rng(0)
    samples = rng.normal(0.0, 1.0, (400, 4))
    t_cover = np.mean([lo <= 0 <= hi for lo, hi in map(stats.t_ci, samples)])
    boot_cover = np.mean([lo <= 0 <= hi for lo, hi in (stats.bootstrap_ci(s, n_resamples=500) for s in samples)])
    assert abs(t_cover - 0.95) < 0.035 and boot_cover < 0.88


def test_bootstrap_ci_is_seeded_and_handles_degenerate_input() -> None:
    x = [0.1, 0.5, 0.2, 0.9, 0.4]
    assert stats.bootstrap_ci(x, seed=3) == stats.bootstrap_ci(x, seed=3)
    assert stats.bootstrap_ci([2.0, 2.0, 2.0]) == (2.0, 2.0)
    assert stats.bootstrap_ci([5.0]) == (5.0, 5.0)
    lo, hi = stats.bootstrap_ci(x, statistic=np.median, seed=0)
    assert lo <= np.median(x) <= hi


@pytest.mark.parametrize("bad", [[], [1.0, np.nan], [np.inf]])
def test_rejects_empty_or_non_finite(bad: list[float]) -> None:
    with pytest.raises(ValueError):
        stats.mean_se(bad)


def test_rank_correlations() -> None:
    assert stats.kendall_tau([1, 2, 3, 4], [1, 2, 3, 4]) == pytest.approx(1.0)
    assert stats.kendall_tau([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    a, b = [3, 1, 4, 1.5, 9, 2.6], [2, 7, 1, 8, 2.8, 1.8]
    assert stats.kendall_tau(a, b) == pytest.approx(sps.kendalltau(a, b).statistic)
    assert stats.spearman(a, b) == pytest.approx(sps.spearmanr(a, b).statistic)
    with pytest.raises(ValueError, match="equal lengths"):
        stats.spearman([1, 2], [1, 2, 3])
