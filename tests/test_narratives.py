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
    "concept_frequency": (frequency.reading, {"domains": ["noisy"]}),
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


def _association_run(**overrides: list[float]) -> dict[str, float]:
    """The metrics an association run logs over 5 replicates (zoo CLIPs; head seeds for C4), synthetic values.

    ``overrides`` replace whole series, named with '__' for '.' (``C2__spearman_assoc=[...]``).
    """
    from cliplab.core.artifacts import Artifacts

    n = 5
    series = {
        "C1.single_natural": [0.9] * n, "C1.two_natural": [0.2] * n, "C1.two_star_natural": [0.6] * n,
        "C1.third_natural": [0.05] * n, "C1.cab_natural": [0.7] * n,
        "C2.cab_natural": [0.7] * n, "C2.cab_weak": [0.5, 0.49, 0.51, 0.5, 0.52], "C2.cab_unnatural": [0.5] * n,
        "C2.two_unnatural": [0.45] * n, "C2.two_star_unnatural": [0.42, 0.44, 0.46, 0.43, 0.45],
        "C2.spearman_assoc": [0.3, 0.35, 0.4, 0.32, 0.38], "C2.spearman_defined": [1.0] * n,
        "C4.spearman_cab_vqa": [-0.9, -1.0, -0.8, -0.9, -1.0], "C4.spearman_defined": [1.0] * n,
        "C4.cab_transformer_heads": [0.3] * n,
        **{f"C4.{stat}_{v}": [value] * n for v, vqa, cab in (("pooled", 0.5, 0.5), ("layers1", 0.6, 0.35),
                                                            ("layers2", 0.7, 0.25))
           for stat, value in (("vqa", vqa), ("cab", cab))},
    }
    series |= {key.replace("__", "."): values for key, values in overrides.items()}
    art = Artifacts(Path("unused"))
    art.log_replicates(series)
    art.log_metrics({"C1.n_models": 5.0, "C2.n_models": 5.0, "C2.n_pairs": 200.0, "C4.n_variants": 3.0,
                     "C4.n_seeds": 5.0, "C4.cab_clip": 0.6, "C4.vqa_clip": 0.2, "C4.vqa_min": 0.5,
                     "C4.vqa_max": 0.7, "C4.cab_min": 0.25, "C4.cab_max": 0.5, "model.small_s0.natural.cab": 0.8})
    return art.metrics


def test_association_reading_states_each_status_and_why_it_is_inconclusive() -> None:
    m = _association_run(C4__spearman_cab_vqa=[-0.9, -1.0, 0.2, -0.9, -1.0])
    verdicts = check_claims(paths.claims_path(REPO, "concept_association_bias"), m)
    assert {v.claim.id: v.status for v in verdicts if v.scored} == {"C1": "replicates", "C2": "replicates",
                                                                      "C4": "inconclusive"}
    text = association.reading(m, verdicts, extra_models=["small-s0"])
    assert "**C1 (replicates).**" in text and "**C4 (inconclusive).**" in text
    assert "The verdict is inconclusive: replicates disagree (4 of 5 pass)" in text
    assert "small-s0 0.800" in text and "5 of 5 above 0.5" in text


def test_association_c1_states_this_runs_numbers() -> None:
    m = _association_run()
    text = association.c1_reading(m, "replicates")
    assert "3.0 times as often" in text and "CAB is 0.700" in text and "not confusion" in text
    assert "Over 5 zoo CLIPs" in text and "inconclusive" not in text
    assert "plain confusion" in association.c1_reading(m | {"C1.third_natural": 0.4}, "x")
    assert "do not prefer" in association.c1_reading(m | {"C1.two_star_natural": 0.1}, "x")


def test_association_c2_counts_models_in_the_weak_band_and_says_when_rho_signs_disagree() -> None:
    text = association.c2_reading(_association_run(), "replicates")
    assert "every model's within 0.5 ± 0.075" in text and "in every model" in text
    assert "every replicate's ρ is positive" in text
    mixed = association.c2_reading(_association_run(C2__spearman_assoc=[0.3, -0.3, 0.2, -0.2, 0.05],
                                                    C2__cab_weak=[0.5, 0.6, 0.5, 0.5, 0.5]), "x")
    assert "disagree in sign (3 positive, 2 negative of 5)" in mixed and "4 of 5 models within" in mixed


def test_association_c4_reads_every_head_seed() -> None:
    m = _association_run()
    below = association.c4_reading(m | {"C4.cab_max": m["C4.cab_clip"] - 0.01}, "x")
    above = association.c4_reading(m | {"C4.cab_max": m["C4.cab_clip"] + 0.01}, "x")
    assert below.count("Every head lowers CAB") == 1 and "Not every head" in above
    assert "5 of 5 head seeds" in below and "5 of 5 seeds reach" in below and "every replicate's ρ is negative" in below
    ties = association.c4_reading(_association_run(C4__spearman_cab_vqa=[-0.9, 0.0, 0.5, -0.9, -1.0],
                                                   C4__spearman_defined=[1.0, 0.0, 1.0, 1.0, 1.0]), "x")
    assert "1 seed(s) with tied values" in ties and "3 of 5 seeds reach" in ties and "disagree in sign" in ties
    assert "`pooled` has the highest seed-mean CAB" in ties
    assert association.head_variants(m) == ["layers1", "layers2", "pooled"]


def _frequency_worlds(slopes: list[float], gaps: list[float] | None = None) -> dict[str, float]:
    """The metrics a concept-frequency run logs for len(slopes) worlds (plus small-s0 and tiny-c15k-s0)."""
    from cliplab.core.artifacts import Artifacts
    from cliplab.frequency import worlds

    names = [f"tiny-s{i}" for i in range(len(slopes))]
    gaps = gaps or [5.0] * len(slopes)
    art = Artifacts(Path("unused"))
    for name, slope, gap in [*zip(names, slopes, gaps), ("small-s0", 6.0, 4.0), ("tiny-c15k-s0", 7.0, 3.0)]:
        k = worlds.key(name)
        art.log_metrics({f"fit.{k}.slope": slope, f"fit.{k}.r_log": 0.4, f"fit.{k}.r_linear": 0.2,
                         f"fit.{k}.pearson": 0.3, f"fit.{k}.spearman": 0.4, f"fit.{k}.x_decades": 2.0,
                         f"fit.{k}.gap": gap, f"fit.{k}.standard_acc": 0.5, f"fit.{k}.tail_acc": 0.5 - gap / 100,
                         f"top1.{k}.clean": 0.5, f"top1.{k}.ood": 0.3, "C6.spearman_corpora": 0.9,
                         **{f"prompt.{k}.{c}.slope": slope for c in worlds.PROMPTS.values()},
                         **{f"ood.{k}.{d}.{s}": v for d in ("pooled", "noisy")
                            for s, v in (("slope", slope / 2), ("slope_ci_low", slope / 2 - 3),
                                         ("slope_ci_high", slope / 2 + 3))}})
    art.log_replicates({**worlds.world_series(art.metrics, names, ["noisy"]),
                        **worlds.variant_series(art.metrics, ["small-s0"], ["tiny-c15k-s0"])})
    art.log_metrics(worlds.world_summary(art.metrics, names, [*names, "small-s0", "tiny-c15k-s0"], 200))
    return art.metrics


def test_frequency_reading_states_each_claims_status_and_why_it_is_inconclusive() -> None:
    m = _frequency_worlds([8.0, 9.0, 10.0, 11.0, 12.0])
    text = frequency.reading(m, _verdicts("concept_frequency", m), domains=["noisy"])
    assert "**C1 (replicates).** The slope is above 0 in 5 of 5 worlds" in text
    assert "**C2 (inconclusive).** Inconclusive because 1 replicate(s) of the 5 it needs." in text
    assert "in 1 world(s) only" in text
    assert "nan" not in text and "{" not in text and text.count("\n* ") == len(text.splitlines()) - 1


def test_frequency_c3_counts_the_worlds_whose_pooled_held_out_slope_is_above_zero() -> None:
    m = _frequency_worlds([8.0, -6.0, 9.0, 10.0, 11.0])
    text = frequency.reading(m, _verdicts("concept_frequency", m), domains=["noisy"])
    c3 = next(line for line in text.splitlines() if line.startswith("* **C3"))
    assert "**C3 (inconclusive).** Inconclusive because replicates disagree (4 of 5 pass)." in c3
    assert "above 0 in 4 of 5 worlds" in c3 and "`tiny_s1` pooled -3.0 [-6.0, 0.0]" in c3


def test_frequency_c7_reads_the_gap_per_world_against_the_papers_drop() -> None:
    m = _frequency_worlds([8.0, 9.0, 10.0, 11.0, 12.0], gaps=[11.35] * 5)
    text = frequency.tail_reading(m, _verdicts("concept_frequency", m)[-1])
    assert text.startswith("**C7 (replicates).**") and "above 0 in 5 of 5 worlds" in text and "50% of" in text


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
    def place(slopes: list[float]) -> str:
        m = _frequency_worlds(slopes)
        return frequency.slope_reading(m, {r.claim.id: r for r in _verdicts("concept_frequency", m)})

    assert "steeper than the paper's" in place([20.0, 22.0, 21.0, 19.0, 23.0])
    assert "within the paper's" in place([7.0, 6.0, 8.0, 7.5, 6.5])
    assert "flatter than the paper's" in place([2.0, 1.0, 3.0, 2.5, 1.5])
    assert "above 0 in 3 of 5 worlds" in place([2.0, -1.0, 3.0, -2.5, 1.5])


def _sharpness_series(metrics: dict[str, float], key: str, values: list[float]) -> None:
    metrics.update({f"{key}.r{i}": v for i, v in enumerate(values)} | {key: sum(values) / len(values)})


def _sharpness_metrics(**series: list[float]) -> dict[str, float]:
    """Every key the sharpness narrative and claims read, five replicates each; ``series`` overrides some
    (``A_C1_tau_lr=[...]`` for ``A.C1.tau_lr``)."""
    m: dict[str, float] = {"A.C4.toy_sharpness_a0_12": 0.138, "A.C4.toy_sharpness_a1_27": 0.0208,
                           "A.C4.toy_sharpness_a13_9": 0.0, "A.C4.toy_sharpness_peak": 0.2, "A.C4.toy_norm_range": 0.0,
                           "A.factor.test_error.lr": 0.3, "A.factor.test_error.label_noise": -0.2,
                           "B.n_seeds": 5.0, "B.C3.claim_keep": 0.3, "A.C3.n_nets": 50.0}
    defaults = {
        "A.C1.tau_test_error": 0.1, "A.C1.tau_gap": 0.0, "A.C1.tau_lr": -0.5, "A.C1.tau_batch_size": 0.2,
        "A.C1.median_abs_tau_test_error": 0.1, "A.C1.max_abs_tau_test_error": 0.3, "A.C1.median_abs_tau_lr": 0.4,
        "A.C2.tau_ood_error": -0.2, "A.C2.frac_defs_negative_ood": 0.6, "A.zoo.mean_train_error": 0.4,
        "A.zoo.mean_test_error": 0.5, "A.zoo.mean_ood_error": 0.7, "A.zoo.n_models": 24.0,
        "A.C4.zoo_norm_rel_range": 0.0, "A.C4.zoo_raw_rel_range": 2.0,
        "A.C3.tau_worst_l2_adaptive_gap": -0.6, "A.C3.tau_worst_l2_standard_gap": 0.1,
        "A.C3.tau_average_l2_adaptive_gap": -0.3, "A.C3.frac_converged": 1.0,
        "B.W1.ood_interior_gain": 0.01, "B.W1.id_drop_at_best": 0.01, "B.W1.id_acc_zero_shot": 0.5,
        "B.W1.id_acc_finetuned": 0.9, "B.W1.ood_acc_zero_shot": 0.4, "B.W1.ood_acc_finetuned": 0.3,
        "B.C1.tau_full": 0.1, "B.C1.tau_full_average_l2": 0.2, "B.C1.flat": 0.0,
        "B.C2.tau_straggler": -0.8, "B.C2.tau_other": -0.1, "B.C2.abs_tau_straggler": 0.8,
        "B.C2.max_abs_tau_layer": 0.9, "B.C3.gain_dense": 0.0, "B.C3.gain_sparse": 0.01,
        "B.C3.sparse_gain_over_dense_ends": 0.02, "B.C3.best_ood_dense": 0.4, "B.C3.best_ood_sparse": 0.42,
        "B.C3.gain_keep30": 0.01,
    }
    for key, value in defaults.items():
        _sharpness_series(m, key, series.get(key.replace(".", "_"), [value + 0.001 * i for i in range(5)]))
    return m


def test_sharpness_reading_says_inconclusive_when_seeds_disagree_in_sign() -> None:
    m = _sharpness_metrics(B_C1_tau_full=[0.8, -0.8, 0.7, -0.7, 0.8])
    verdicts = _verdicts("sharpness", m)
    assert status_of(verdicts, "B-C1") == "inconclusive" and status_of(verdicts, "B-C2") == "replicates"
    text = sharpness.reading(m, verdicts)
    assert "**B-C1 (inconclusive) / B-C2 (replicates).**" in text and "opposite signs" in text
    assert "**A-C3 (replicates).**" in text and "negative in all 5 draws" in text
    assert "nan" not in text and "{" not in text and text.count("\n* ") == len(text.splitlines()) - 1


def test_sharpness_b_c2_compares_the_signed_straggler_tau_with_the_other_layers() -> None:
    m = _sharpness_metrics(B_C2_tau_straggler=[-0.8, -0.7, 0.6, -0.9, -0.8])
    text = sharpness.b_c1_c2_reading(m, {"B-C1": "x", "B-C2": "y"})
    assert "≤ −0.5 (flatter straggler, higher OOD accuracy) on 4 of 5 seeds" in text
    assert "the stragglers' τ is the lower on 4 of 5 seeds" in text
    assert "a weak τ (within ±0.5) on all 5 seeds" in text
    assert status_of(_verdicts("sharpness", m), "B-C2") == "inconclusive"


def test_sharpness_wise_ft_premise_follows_which_endpoint_is_more_robust() -> None:
    m = _sharpness_metrics()
    robust = sharpness.b_endpoints_reading(m | {"B.W1.ood_acc_zero_shot": 0.6, "B.W1.ood_acc_finetuned": 0.5}, "x")
    fragile = sharpness.b_endpoints_reading(m | {"B.W1.ood_acc_zero_shot": 0.4, "B.W1.ood_acc_finetuned": 0.5}, "x")
    assert "as WiSE-FT assumes" in robust and "does not hold" in fragile
    assert "0.400 against the fine-tuned model's 0.500" in fragile
    assert "interior α beats both ends in all 5 seeds" in robust


def test_sharpness_a_c1_reads_both_halves_of_the_claim_per_zoo() -> None:
    m = _sharpness_metrics(A_C1_tau_test_error=[-0.2, -0.2, -0.2, 0.4, -0.2], A_C1_tau_lr=[0.1, 0.5, 0.5, 0.5, 0.5])
    text = sharpness.a_c1_reading(m, "inconclusive")
    assert "-0.08 on average (5 zoos: -0.20 … +0.40)" in text and "weak (within ±0.3) in 4 of 5 zoos" in text
    assert "is the stronger in 4 of 5 zoos; where it is not" in text
    assert "stronger in 5 of 5 zoos, as the claim says" in sharpness.a_c1_reading(_sharpness_metrics(), "x")
    assert "takes both signs" in text and "all" not in sharpness.factor_taus(m)
    assert status_of(_verdicts("sharpness", m), "A-C1") == "inconclusive"
    assert status_of(_verdicts("sharpness", _sharpness_metrics()), "A-C1") == "replicates"


def test_sharpness_keep_gains_ignore_the_per_seed_entries() -> None:
    assert sharpness.keep_gains(_sharpness_metrics()) == {30: pytest.approx(0.012)}


def _replicated(series: dict[str, list[float]], scalars: dict[str, float]) -> dict[str, float]:
    """Metrics as Artifacts.log_replicates writes them: KEY.r0 … KEY.r{n-1} and KEY (their mean)."""
    out = dict(scalars)
    for key, values in series.items():
        out.update({f"{key}.r{i}": v for i, v in enumerate(values)})
        out[key] = sum(values) / len(values)
    return out


def _shortcut_metrics(**changes: list[float]) -> dict[str, float]:
    """Every key the shortcut checks, 'ours' templates and narrative read, over five seeds (``changes`` override)."""
    series = {
        "C1.bias_linear": [0.01, -0.02, 0.0, 0.03, 0.01], "C1.bias_relu": [0.3, 0.25, 0.35, 0.3, 0.28],
        "C1.bias_tanh": [0.2, 0.22, 0.18, 0.25, 0.2], "C2.reliance_lda": [-0.94, -0.93, -0.95, -0.94, -0.94],
        "C2.reliance_deep": [0.4, 0.5, 0.45, 0.42, 0.48], "C2.bias_deep": [1.3, 1.4, 1.4, 1.36, 1.42],
        "C3.depth_slope": [0.1, 0.12, 0.08, 0.11, 0.1], "C3.bias_mlp_linear": [0.02, 0.0, -0.01, 0.03, 0.01],
        "C3.bias_depth1": [0.3, 0.28, 0.32, 0.3, 0.31], "C3.bias_depth2": [0.4] * 5, "C3.bias_depth3": [0.5] * 5,
        "C3.bias_depth4": [0.6] * 5, "C4.bias_max_ratio": [0.3, 0.35, 0.28, 0.4, 0.33],
        "C4.bias_ratio_min": [0.0, 0.02, -0.01, 0.01, 0.0], "C4.control_core_acc": [0.9, 0.91, 0.9, 0.89, 0.9],
        "C4.control_shortcut_acc": [0.9, 0.9, 0.91, 0.9, 0.9], "C5.bias_kernel_linear": [0.0] * 5,
        "C5.bias_kernel_ntk": [0.1, 0.12, 0.09, 0.11, 0.1], "C5.kernel_ntk_alpha_slope": [0.02, 0.03, 0.02, 0.025, 0.02],
        "C5.bias_kernel_arccos1": [0.1] * 5, "C5.kernel_arccos1_alpha_slope": [0.02] * 5,
    }
    scalars = {"C2.rho_s": 0.8, "C2.alpha_s": 5.0, "C2.depth": 4.0, "C4.max_ratio": 5.0, "C4.control_core_rho": 0.9,
               "C4.control_shortcut_rho": 0.9, "C5.ntk_sign_agreement": 0.5}
    return _replicated(series | changes, scalars)


def test_shortcut_reading_states_each_status_and_why_a_claim_is_inconclusive() -> None:
    metrics = _shortcut_metrics(**{"C1.bias_relu": [0.3, -0.1, 0.35, 0.3, 0.28]})
    verdicts = _verdicts("shortcut_learning", metrics)
    text = shortcut.reading(metrics, verdicts)
    assert "**C1 (inconclusive).** Why inconclusive: replicates disagree (4 of 5 pass)." in text
    assert "**C2 (replicates).** At" in text and "Why inconclusive" not in text.split("\n")[1]
    assert "nan" not in text and "{" not in text and text.count("\n* ") == len(text.splitlines()) - 1


def test_shortcut_c2_says_prefers_only_when_the_deep_reliance_ci_is_above_zero_where_lda_prefers_the_core() -> None:
    m = _shortcut_metrics()
    assert "it prefers the less predictive feature" in shortcut.c2_reading(m, "x")
    unresolved = _shortcut_metrics(**{"C2.reliance_deep": [0.2, -0.1, 0.1, -0.2, 0.05]})
    assert "does not resolve a preference" in shortcut.c2_reading(unresolved, "x")
    core = _shortcut_metrics(**{"C2.reliance_deep": [-0.5, -0.6, -0.4, -0.5, -0.45]})
    assert "relies on the core (reliance CI below 0; 0 of 5 seeds rely on the shortcut), as LDA does" in (
        shortcut.c2_reading(core, "x"))
    no_core = _shortcut_metrics(**{"C2.reliance_lda": [0.2, -0.1, 0.1, 0.0, 0.1]})
    assert "cannot show the claim" in shortcut.c2_reading(no_core, "x")


def test_shortcut_c1_applies_the_checks_two_sided_unbiased_bar_to_the_signed_bias() -> None:
    assert "(unbiased by" not in shortcut.c1_reading(_shortcut_metrics(), "x")  # phrased without a parenthesis
    assert "unbiased by the check's bar of ±0.1 (CI inside it; 5 of 5 seeds" in shortcut.c1_reading(
        _shortcut_metrics(), "x")
    negative = _shortcut_metrics(**{"C1.bias_linear": [-0.2, -0.25, -0.3, -0.2, -0.22]})
    assert "biased by the check's bar of ±0.1 (CI outside it; 0 of 5" in shortcut.c1_reading(negative, "x")
    crossing = _shortcut_metrics(**{"C1.bias_linear": [0.05, 0.15, 0.0, 0.2, 0.1]})
    assert "not resolved against the check's bar" in shortcut.c1_reading(crossing, "x")


def test_shortcut_c4_reads_the_excess_over_equal_footprints_seed_by_seed() -> None:
    text = shortcut.c4_reading(_shortcut_metrics(**{"C4.bias_ratio_min": [0.3, 0.4, 0.2, 0.5, 0.3]}), "x")
    assert "that is not resolvably more than at ratio 1" in text and "2 of 5 seeds larger" in text
    assert "that is more than at ratio 1" in shortcut.c4_reading(_shortcut_metrics(), "x")
    assert "core-only accuracy" in text and "5 of 5 seeds within 0.05 of it" in text
