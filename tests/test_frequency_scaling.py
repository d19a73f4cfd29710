"""Fits of accuracy on concept frequency (cliplab.frequency.scaling) and the replication's glue (experiment).

Expectations are independent of the code under test: synthetic data with a known slope, scipy's own
correlations, a hand-binned example of the paper's binned ρ, closed forms (10^(gain/β)), and hand counts of a
caption corpus written by the test for the real path.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from scipy import stats as sps

from cliplab.frequency import experiment as ex
from cliplab.frequency import scaling as sc


def synthetic(slope_pp: float, n: int = 300, noise: float = 0.05, seed: int = 0, zeros: int = 10) -> pd.DataFrame:
    """Concepts with log10 f uniform on [0, 4] and accuracy = 0.2 + slope/100 · log10 f + noise (in [0, 1])."""
    rng = np.random.default_rng(seed)
    counts = np.round(10 ** rng.uniform(0, 4, n)).astype(int)
    acc = np.clip(0.2 + slope_pp / 100 * np.log10(counts) + rng.normal(0, noise, n), 0, 1)
    table = pd.DataFrame({"count": counts, "accuracy": acc})
    zero = pd.DataFrame({"count": np.zeros(zeros, dtype=int), "accuracy": np.full(zeros, 0.01)})
    return pd.concat([table, zero], ignore_index=True)


# ----------------------------------------------------------------------------------------------- slopes
def test_slope_recovers_truth_and_correlations_match_scipy() -> None:
    table = synthetic(8.0, noise=0.03)
    fit = sc.fit_slope(table, n_boot=500, seed=1)
    seen = table[table["count"] >= 1]
    ref = sps.linregress(np.log10(seen["count"]), 100 * seen["accuracy"])
    assert fit.slope == pytest.approx(ref.slope, rel=1e-9)
    assert fit.intercept == pytest.approx(ref.intercept, rel=1e-9)
    assert fit.slope == pytest.approx(8.0, abs=0.5)
    assert fit.ci_low < fit.slope < fit.ci_high
    assert fit.pearson == pytest.approx(ref.rvalue, rel=1e-9)
    assert fit.spearman == pytest.approx(sps.spearmanr(seen["count"], seen["accuracy"]).statistic, rel=1e-9)
    assert fit.n == len(seen) and fit.n_excluded == 10  # zero-count concepts are counted, not silently lost
    assert fit.pearson_ci_low < fit.pearson < fit.pearson_ci_high


def test_bootstrap_ci_covers_the_true_slope_at_about_the_nominal_rate() -> None:
    covered = [sc.fit_slope(synthetic(6.0, n=80, noise=0.1, seed=s), n_boot=300, seed=s).ci_low < 6.0
               < sc.fit_slope(synthetic(6.0, n=80, noise=0.1, seed=s), n_boot=300, seed=s).ci_high
               for s in range(40)]
    assert 0.85 <= np.mean(covered) <= 1.0


def test_fit_is_deterministic_given_the_seed() -> None:
    table = synthetic(5.0)
    assert sc.fit_slope(table, n_boot=200, seed=3) == sc.fit_slope(table, n_boot=200, seed=3)
    assert sc.fit_slope(table, n_boot=200, seed=3).ci_low != sc.fit_slope(table, n_boot=200, seed=4).ci_low


def test_group_intercepts_remove_a_between_group_confound() -> None:
    # Within each task accuracy rises 5 pts/decade, but the frequent task is much harder: pooled OLS is negative.
    rng = np.random.default_rng(0)
    rows = []
    for task, (centre, offset) in enumerate([(1.0, 0.7), (3.0, 0.1)]):
        lx = centre + rng.uniform(-0.8, 0.8, 200)
        rows.append(pd.DataFrame({"count": np.round(10 ** lx).astype(int), "task": task,
                                  "accuracy": offset + 0.05 * lx + rng.normal(0, 0.01, 200)}))
    table = pd.concat(rows, ignore_index=True)
    table["accuracy"] = table["accuracy"].clip(0, 1)
    assert sc.fit_slope(table, n_boot=200).slope < 0
    within = sc.fit_slope(table, group="task", n_boot=300)
    assert within.slope == pytest.approx(5.0, abs=0.5)
    assert within.ci_low > 0 and within.intercept is None


def test_clusters_widen_the_ci_of_duplicated_rows() -> None:
    table = synthetic(5.0, n=60, noise=0.1)
    table["concept"] = np.arange(len(table))
    doubled = pd.concat([table, table], ignore_index=True)
    naive = sc.fit_slope(doubled, n_boot=1000, seed=0)
    clustered = sc.fit_slope(doubled, cluster="concept", n_boot=1000, seed=0)
    assert naive.slope == pytest.approx(clustered.slope)
    assert (clustered.ci_high - clustered.ci_low) > 1.2 * (naive.ci_high - naive.ci_low)


def test_slope_difference_is_the_difference_of_slopes() -> None:
    a, b = synthetic(4.0, seed=1), synthetic(9.0, seed=1)
    table = pd.DataFrame({"count": a["count"], "acc_a": a["accuracy"], "acc_b": b["accuracy"]})
    diff = sc.slope_difference(table, "count", "acc_a", "acc_b", n_boot=300)
    expected = (sc.fit_slope(table, y="acc_b", n_boot=100).slope - sc.fit_slope(table, y="acc_a", n_boot=100).slope)
    assert diff.slope == pytest.approx(expected, rel=1e-9)
    assert diff.ci_low > 0


def test_log_vs_linear_prefers_log_for_log_linear_data() -> None:
    r = sc.log_vs_linear(synthetic(8.0, noise=0.02))
    assert r["r_log"] > 0.9 and r["r_log"] > r["r_linear"]
    flat = pd.DataFrame({"count": [1, 10, 100, 1000], "accuracy": [0.5] * 4})
    assert sc.log_vs_linear(flat) == {"r_log": 0.0, "r_linear": 0.0}


def test_fit_band_brackets_the_line() -> None:
    table = synthetic(7.0)
    fit = sc.fit_slope(table, n_boot=200)
    band = sc.fit_band(fit, table, n_boot=200)
    assert (band["low"] <= band["fit"] + 1e-9).all() and (band["fit"] <= band["high"] + 1e-9).all()
    assert band["count"].min() == pytest.approx(1.0)


@pytest.mark.parametrize("table, kwargs, match", [
    (pd.DataFrame({"count": [1, 10, 100], "acc": [0.1, 0.2, 0.3]}), {}, "accuracy column 'accuracy'"),
    (pd.DataFrame({"count": [1, 10, 100], "accuracy": [10.0, 20.0, 30.0]}), {}, "fractions in \\[0, 1\\]"),
    (pd.DataFrame({"count": [-1, 10, 100], "accuracy": [0.1, 0.2, 0.3]}), {}, "negative counts"),
    (pd.DataFrame({"count": [1, np.nan, 100], "accuracy": [0.1, 0.2, 0.3]}), {}, "missing or non-numeric"),
    (pd.DataFrame({"count": [0, 0, 100], "accuracy": [0.1, 0.2, 0.3]}), {}, "need >= 3 rows"),
    (pd.DataFrame({"count": [5, 5, 5], "accuracy": [0.1, 0.2, 0.3]}), {}, "does not vary"),
    (pd.DataFrame({"count": [1, 10, 100], "accuracy": [0.1, 0.2, 0.3]}), {"n_boot": 10}, "n_boot"),
    (pd.DataFrame({"count": [1, 10, 100], "accuracy": [0.1, 0.2, 0.3]}), {"group": "task"}, "group column"),
])
def test_bad_input_is_rejected_with_a_clear_message(table: pd.DataFrame, kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        sc.fit_slope(table, **kwargs)
    with pytest.raises(TypeError, match="DataFrame"):
        sc.fit_slope({"count": [1]})  # type: ignore[arg-type]


# ----------------------------------------------------------------------------------------------- binned ρ
def test_binned_correlation_follows_the_paper_definition() -> None:
    # ln counts 0, 0.5, 1.5, ..., 10.5, 11: edges are 0..11, bin b (1..11) holds the concept at b − 0.5, and the
    # concepts at 0 (a zero count) and 11 (the maximum) fall in the first and last bins.
    x = np.concatenate([[0.0], np.arange(11) + 0.5, [11.0]])
    counts = np.exp(x)
    counts[0] = 0  # zero -> 1 -> ln 0: bin 0
    acc = np.array([0.9, 0.1, 0.2, 0.25, 0.5, 0.4, 0.6, 0.55, 0.8, 0.7, 0.9, 0.3, 0.0])
    res = sc.binned_correlation(counts, acc, n_bins=12)
    x = np.log(np.where(counts == 0, 1, counts))
    edges = np.linspace(x.min(), x.max(), 12)
    expected = sps.pearsonr(edges[1:11], acc[1:11])
    assert res.rho == pytest.approx(expected.statistic, rel=1e-9)
    assert res.p_value == pytest.approx(expected.pvalue, rel=1e-9)
    assert len(res.edges) == 10 and res.n_empty == 0
    # the first bin (zero/one counts) and the last bin never enter
    changed = acc.copy()
    changed[[0, 11, 12]] = [0.0, 1.0, 1.0]
    assert sc.binned_correlation(counts, changed).rho == pytest.approx(res.rho)
    assert res.significant == (expected.pvalue < 0.05)


def test_binned_correlation_averages_bins_and_skips_empty_ones() -> None:
    # three concepts share bin 3, bins 5..10 except 7 are filled, bin 7 is empty
    x = np.array([0.0, 1.0, 2.0, 2.6, 2.8, 3.0, 4.0, 5.0, 6.0, 8.0, 9.0, 10.0, 11.0])
    acc = np.array([0.5, 0.1, 0.2, 0.3, 0.35, 0.4, 0.45, 0.5, 0.6, 0.7, 0.75, 0.8, 0.2])
    res = sc.binned_correlation(np.exp(x), acc)
    assert res.n_empty == 1
    bin3 = acc[(x > 2) & (x <= 3)].mean()
    assert bin3 in res.means
    assert res.sizes.sum() == 11  # everything except bin 0 (x = 0) and bin 11 (x = 11)


def test_binned_correlation_rejects_degenerate_input() -> None:
    with pytest.raises(ValueError, match="all counts are equal"):
        sc.binned_correlation([3, 3, 3], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="n_bins"):
        sc.binned_correlation([1, 10, 100], [0.1, 0.2, 0.3], n_bins=3)
    with pytest.raises(ValueError, match="equally long"):
        sc.binned_correlation([1, 10], [0.1])


# ----------------------------------------------------------------------------------------------- multiplier etc.
def test_data_multiplier_closed_form() -> None:
    assert sc.data_multiplier(10.0) == pytest.approx(10.0)
    assert sc.data_multiplier(5.0) == pytest.approx(100.0)
    assert sc.data_multiplier(20.0, gain=10) == pytest.approx(math.sqrt(10))
    for bad in (0.0, -2.0, float("nan")):
        with pytest.raises(ValueError, match="positive slope"):
            sc.data_multiplier(bad)


def test_a_rounding_noise_slope_has_no_multiplier_instead_of_overflowing() -> None:
    with pytest.raises(ValueError, match="too flat"):
        sc.data_multiplier(9.8e-15)
    counts = np.array([1.0, 4.0, 16.0])  # accuracy 0, 1, 0: the exact slope is 0, float OLS gives ~1e-14
    fit = sc.fit_slope(pd.DataFrame({"count": counts, "accuracy": [0.0, 1.0, 0.0]}), n_boot=100)
    assert abs(fit.slope) < 1e-9
    assert sc.multiplier_metrics(fit, "x")["x.multiplier_defined"] == 0.0


def test_multiplier_metrics_flags_undefined_multipliers() -> None:
    fit = sc.fit_slope(synthetic(8.0, noise=0.02), n_boot=200)
    m = sc.multiplier_metrics(fit, "x")
    assert m["x.multiplier_defined"] == 1.0 and m["x.multiplier"] == pytest.approx(10 ** (10 / fit.slope))
    assert m["x.multiplier_ci_low"] <= m["x.multiplier"] <= m["x.multiplier_ci_high"]
    falling = synthetic(8.0, noise=0.02).assign(accuracy=lambda t: 1 - t["accuracy"])
    m = sc.multiplier_metrics(sc.fit_slope(falling, n_boot=200), "x")
    assert m == {"x.multiplier_defined": 0.0}


def test_zero_frequency_and_head_tail() -> None:
    table = pd.DataFrame({"count": [0, 0, 1, 2, 3, 10, 100, 1000, 5000, 10000, 20000, 50000],
                          "accuracy": [0.0, 0.1, 0.1, 0.2, 0.3, 0.5, 0.6, 0.7, 0.8, 0.9, 0.9, 1.0]})
    zero = sc.zero_frequency_accuracy(table, chance=0.01, n_boot=200)
    assert zero.accuracy == pytest.approx(0.05) and zero.n == 2 and zero.chance == 0.01
    gap = sc.head_tail_gap(table, tail_fraction=0.2, n_boot=500)
    seen = table["accuracy"].iloc[2:]
    assert gap.n_tail == 2 and gap.tail == pytest.approx(0.15) and gap.head == pytest.approx(0.95)
    assert gap.standard == pytest.approx(seen.mean())
    assert gap.gap == pytest.approx(100 * (seen.mean() - 0.15))
    assert gap.gap_ci_low <= gap.gap <= gap.gap_ci_high and gap.tail_max_count == 2
    with pytest.raises(ValueError, match="never-seen"):
        sc.zero_frequency_accuracy(table.iloc[2:], chance=0.01)
    with pytest.raises(ValueError, match="tail fraction"):
        sc.head_tail_gap(table, tail_fraction=1.5)


def test_noisy_counts() -> None:
    truth = np.array([0, 10, 1000, 5000])
    assert (sc.noisy_counts(truth, 10000, recall=1.0, false_positive_rate=0.0, seed=0) == truth).all()
    draws = np.stack([sc.noisy_counts(truth, 10000, recall=0.5, false_positive_rate=0.01, seed=s) for s in range(200)])
    expected = 0.5 * truth + 0.01 * (10000 - truth)
    np.testing.assert_allclose(draws.mean(0), expected, rtol=0.05, atol=1.0)
    with pytest.raises(ValueError, match="recall"):
        sc.noisy_counts(truth, 10000, recall=0.0, false_positive_rate=0.0, seed=0)
    with pytest.raises(ValueError, match="n_samples"):
        sc.noisy_counts(truth, 100, recall=1.0, false_positive_rate=0.0, seed=0)


def test_frequency_report_has_finite_metrics_and_flags() -> None:
    report = sc.frequency_report(synthetic(8.0), prefix="m", chance=0.01, n_boot=200)
    assert all(math.isfinite(v) for v in report.values())
    assert report["m.binned_defined"] == report["m.zero_defined"] == report["m.tail_defined"] == 1.0
    no_zero = sc.frequency_report(synthetic(8.0, zeros=0), prefix="m", chance=0.01, n_boot=200)
    assert no_zero["m.zero_defined"] == 0.0 and "m.zero_acc" not in no_zero


def test_f1_threshold_separates_clean_scores() -> None:
    truth = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0]], dtype=bool)
    scores = np.where(truth, 0.8, 0.1) + np.linspace(0, 0.05, 12).reshape(4, 3)
    t = ex.f1_threshold(scores, truth)
    assert 0.15 <= t < 0.8
    with pytest.raises(ValueError, match="no positives"):
        ex.f1_threshold(scores, np.zeros_like(truth))


# ----------------------------------------------------------------------------------------------- glue on a world
def test_world_counts_and_accuracy_table() -> None:
    from cliplab.models import load_model
    from cliplab.world import World, WorldConfig, true_frequencies

    world = World(WorldConfig(seed=2, n_concepts=12, n_heldout=2, misalignment=0.2))
    counts = ex.corpus_counts(world, 600)
    truth = true_frequencies(world, 600)
    for column in ("text_count", "image_count", "matched_count"):
        np.testing.assert_array_equal(counts.table[column], truth[column])
    assert 0.05 < counts.misalignment.degree < 0.25
    loaded = load_model("cliplab-tiny", seed=0)
    acc = ex.world_accuracy(loaded, world, 3, "clean", {"accuracy": ["a {}"], "acc_photo": ["a photo of a {}."]})
    assert (acc["n"] == 3).all() and acc["accuracy"].between(0, 1).all() and len(acc) == 12
    table = ex.concept_table(counts.table, acc, world)
    assert (table["count"] == truth["matched_count"]).all()
    assert table["key"].tolist() == ["/".join(c.parts) for c in world.concepts]
    assert table["heldout"].sum() == 2 and (table.loc[table["heldout"], "count"] == 0).all()
    prompts = {"accuracy": ["a {}"], "acc_photo": ["a photo of a {}."]}
    weights = ex.prompt_weights(loaded, ex.world_classnames(world), prompts)
    pd.testing.assert_frame_equal(ex.world_accuracy(loaded, world, 3, "clean", prompts, weights), acc)
    with pytest.raises(ValueError, match="number of classes"):
        ex.world_accuracy(loaded, world, 3, "clean", prompts, {"accuracy": weights["accuracy"][:, :5]})


# ----------------------------------------------------------------------------------------------- the real path
def test_real_path_on_a_fixture(tmp_path: Path) -> None:
    """A random-init open_clip model saved to disk, a caption CSV with image paths, and a labelled folder go
    through the notebook's real-path functions (real_concept_table, then frequency_report)."""
    from cliplab.eval import read_image_folder
    from cliplab.models import load_model, save_checkpoint

    random_model = load_model("cliplab-tiny", seed=1)
    folder = save_checkpoint(random_model.model, "cliplab-tiny", tmp_path / "model")
    loaded = load_model(f"local-dir:{folder}")

    rng = np.random.default_rng(0)
    classes = {"red_panda": "red panda", "zebra": "zebra", "kiwi": "kiwi", "okapi": "okapi", "axolotl": "axolotl"}
    for i, sub in enumerate(classes):
        (tmp_path / "images" / sub).mkdir(parents=True)
        for j in range(3):
            pixels = rng.integers(0, 255, (32, 32, 3), dtype=np.uint8) // (i + 1)
            Image.fromarray(pixels).save(tmp_path / "images" / sub / f"{j}.png")
    wanted = {"red panda": 1, "zebra": 3, "kiwi": 9, "okapi": 27, "axolotl": 0}
    captions = [f"A photo of {'two Red Pandas' if name == 'red panda' else 'a ' + name} outside"
                for name, k in wanted.items() for _ in range(k)]
    captions += ["a red car next to a panda"] * 4  # words of "red panda" apart: not a whole-phrase hit
    (tmp_path / "corpus").mkdir()
    paths = []
    for i in range(len(captions)):
        Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(tmp_path / "corpus" / f"{i}.png")
        paths.append(f"{i}.png")
    pd.DataFrame({"path": paths, "caption": captions}).to_csv(tmp_path / "corpus" / "captions.csv", index=False)

    images = read_image_folder(tmp_path / "images")
    table, run = ex.real_concept_table(loaded, images, tmp_path / "corpus" / "captions.csv",
                                       prompts={"accuracy": ["a photo of a {}."]}, column="caption",
                                       image_column="path")
    assert run.n_captions == len(captions) and run.bad_rows.count == 0
    got = dict(zip(table["name"], table["text_count"]))
    assert got == wanted
    assert (table["matched_count"] <= table["text_count"]).all()
    assert (table["count"] == table["matched_count"]).all()
    assert (table["n"] == 3).all() and table["accuracy"].between(0, 1).all()

    text_only, _ = ex.real_concept_table(loaded, images, tmp_path / "corpus" / "captions.csv",
                                         prompts={"accuracy": ["a photo of a {}.", "a {}"]})
    assert (text_only["count"] == text_only["text_count"]).all()
    report = sc.frequency_report(text_only, prefix="fit.real", chance=1 / 5, n_boot=200)
    assert report["fit.real.n"] == 4 and report["fit.real.n_excluded"] == 1
    assert report["fit.real.zero_defined"] == 1.0
    assert all(math.isfinite(v) for v in report.values())


# ----------------------------------------------------------------------------------------------- trained variants
def test_train_world_model_applies_overrides_and_is_deterministic(tmp_path: Path) -> None:
    """A 3-step model on a 128-sample corpus of an 8-concept world with 30 % caption swaps: the override reaches
    the world (its captions equal those of a world built directly with it), the step override replaces the
    entry's epochs, the recipe itself is untouched, and the same seed gives identical weights."""
    import torch

    from cliplab.zoo import ZooEntry
    from cliplab.world import World, WorldConfig

    entry = ZooEntry(name="t", arch="cliplab-tiny", corpus_size=128, seed=3, world={"n_concepts": 8, "n_heldout": 1},
                     train={"epochs": 1.0, "batch_size": 32, "warmup": 1})

    def train(folder: str, misalignment: float) -> ex.TrainedWorldModel:
        return ex.train_world_model(entry, tmp_path / folder, world_overrides={"misalignment": misalignment},
                                    train_overrides={"steps": 3, "num_threads": 1})

    a, b = train("a", 0.3), train("b", 0.3)
    assert a.world.config.misalignment == 0.3 and a.world.config.n_concepts == 8 and a.world.config.seed == 3
    assert a.entry.train == {"steps": 3, "batch_size": 32, "warmup": 1, "num_threads": 1}
    assert entry.world == {"n_concepts": 8, "n_heldout": 1} and "misalignment" not in entry.world
    direct = World(WorldConfig(seed=3, n_concepts=8, n_heldout=1, misalignment=0.3))
    clean = World(WorldConfig(seed=3, n_concepts=8, n_heldout=1))
    captions = [a.world.draw(i, "train").caption for i in range(128)]
    assert captions == [direct.draw(i, "train").caption for i in range(128)]
    assert captions != [clean.draw(i, "train").caption for i in range(128)]
    assert ex.corpus_counts(a.world, 128).misalignment.degree > 0 == ex.corpus_counts(clean, 128).misalignment.degree
    assert a.folder == tmp_path / "a" and a.loaded.model.training is False
    sa, sb = a.loaded.model.state_dict(), b.loaded.model.state_dict()
    assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)
    # other captions (no swaps), same seed: the weights move apart, so the override reached training too
    c = train("c", 0.0).loaded.model.state_dict()
    assert not all(torch.equal(sa[k], c[k]) for k in sa)


def test_misalignment_control_trains_one_model_per_rate(tmp_path: Path) -> None:
    """Two 2-step models of a 16-concept world at 0 % and 40 % caption swaps: one run per rate in order, the
    measured degree follows the rate, metrics keep the notebook's keys, and the same seed repeats exactly."""
    from cliplab.zoo import ZooEntry

    entry = ZooEntry(name="t", arch="cliplab-tiny", corpus_size=256, seed=5, world={"n_concepts": 16, "n_heldout": 2},
                     train={"steps": 50, "batch_size": 32, "warmup": 1})

    def control() -> list[ex.MisalignedRun]:
        return ex.misalignment_control(entry, [0.0, 0.4], steps=2, per_concept=2, n_boot=100, num_threads=1,
                                       progress=False)

    runs = control()
    assert [r.level for r in runs] == [0.0, 0.4]
    assert runs[0].degree == 0.0 and 0.2 < runs[1].degree < 0.4  # swaps that keep a concept are not misaligned
    assert all(0.0 <= r.top1 <= 1.0 and math.isfinite(r.fit.slope) for r in runs)
    metrics = runs[1].metrics()
    assert {"ctrl.misalign.m40.slope", "ctrl.misalign.m40.slope_ci_low", "ctrl.misalign.m40.top1",
            "ctrl.misalign.m40.degree"} <= set(metrics)
    assert [r.row() for r in control()] == [r.row() for r in runs]
    assert entry.world == {"n_concepts": 16, "n_heldout": 2} and entry.train["steps"] == 50


@pytest.mark.parametrize("levels, steps, n_boot", [([0.0, 1.5], 2, 200), ([True], 2, 200), ([0.1], 0, 200),
                                                   ([0.1], 2, 10)])
def test_misalignment_control_rejects_bad_input_before_training(levels: list, steps: int, n_boot: int) -> None:
    from cliplab.zoo import ZooEntry

    entry = ZooEntry(name="t", arch="cliplab-tiny", corpus_size=64, seed=0)
    with pytest.raises(ValueError, match="misalignment levels|positive integers|n_boot"):
        ex.misalignment_control(entry, levels, steps=steps, per_concept=2, n_boot=n_boot, progress=False)


# ----------------------------------------------------------------------------------------------- the notebook
@pytest.mark.slow
def test_notebook_real_path_runs(tmp_path: Path) -> None:
    """The notebook's real path end to end: random-init cliplab-tiny, a labelled folder and a caption CSV
    written here (5 classes named 1, 3, 27, 9 and 0 times), no world and no zoo; the competence guard is
    overridden (a random model), so the folds are fitted and scored."""
    import json

    from cliplab.core.runner import run_paper
    from cliplab.eval import read_image_folder
    from cliplab.eval.data import LabeledImages
    from cliplab.frequency import realpath as fr
    from cliplab.models import load_model

    rng = np.random.default_rng(0)
    wanted = {"zebra": 1, "kiwi": 3, "okapi": 27, "lemur": 9, "axolotl": 0}
    for i, name in enumerate(wanted):
        (tmp_path / "images" / name).mkdir(parents=True)
        for j in range(4):
            pixels = rng.integers(0, 255, (32, 32, 3), dtype=np.uint8) // (i + 1)
            Image.fromarray(pixels).save(tmp_path / "images" / name / f"{j}.png")
    captions = [f"a photo of a {name} outside" for name, k in wanted.items() for _ in range(k)] + ["a red car"] * 3
    pd.DataFrame({"text": captions}).to_csv(tmp_path / "captions.csv", index=False)
    templates = ["a {}", "the {}"]

    result = run_paper("concept_frequency", smoke=True, root=Path(__file__).resolve().parents[1],
                       out=tmp_path / "out", progress=False,
                       overrides={"model": "cliplab-tiny", "corpus": str(tmp_path / "captions.csv"),
                                  "caption_column": "text", "images": str(tmp_path / "images"),
                                  "templates": templates, "score_incompetent": True})
    metrics = json.loads((result.out_dir / "metrics.json").read_text())
    scope = json.loads((result.out_dir / "scope.json").read_text())
    assert not any(k.startswith(("counts.", "ctrl.", "C6.", "C2.")) for k in metrics)  # no world, no control keys
    assert scope["untestable"].keys() >= {"C2", "C3"}  # one model; no shifted folders given
    assert scope["sizes"] == {"classes": 5, "test images": 20, "shifted images": 0}
    assert scope["competence"]["chance"] == pytest.approx(1 / 5) and scope["competence"]["forced"]
    # each fold (every other image of each class: smoke runs two folds) is one replicate of C1 ...
    images = read_image_folder(tmp_path / "images")
    loaded = load_model("cliplab-tiny")
    for k, index in enumerate(fr.fold_indices(images.labels, 2)):
        fold = LabeledImages([images.images[i] for i in index], images.labels[index], images.classnames)
        acc = ex.concept_accuracy(loaded, fold, {"accuracy": templates}).set_index("name")
        seen = [name for name, c in wanted.items() if c]
        if "C1" in scope["untestable"]:  # a random model may give every class the same top-1: undefined
            assert scope["untestable"]["C1"].startswith("fit undefined")
            continue
        ref = sps.linregress(np.log10([wanted[n] for n in seen]), 100 * acc.loc[seen, "accuracy"].to_numpy())
        assert metrics[f"fit.real_f{k}.slope"] == pytest.approx(ref.slope, abs=1e-9)
        assert metrics[f"C1.slope.r{k}"] == pytest.approx(ref.slope, abs=1e-9)
        assert metrics[f"fit.real_f{k}.zero_acc"] == pytest.approx(acc.loc["axolotl", "accuracy"])
    figures = {p.name for p in (result.out_dir / "figures").glob("*.png")}  # none when every fit is undefined
    assert "controls.png" not in figures
