# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: cliplab (.venv)
#     language: python
#     name: cliplab
# ---

# %% [markdown]
# # No "Zero-Shot" Without Exponential Data — CPU replication
#
# **Paper:** Udandarao, Prabhu, Ghosh, Sharma, Torr, Bibi, Albanie, Bethge. *No "Zero-Shot" Without Exponential
# Data: Pretraining Concept Frequency Determines Multimodal Model Performance.* NeurIPS 2024.
# Spec: `docs/papers/concept_frequency.md`; library: `cliplab.frequency` (counting engine, `scaling` fits,
# `experiment` glue).
#
# **Claims tested** (see `replications/concept_frequency/claims.yaml`):
# - **C1** accuracy grows log-linearly with a concept's pretraining frequency (exponential data per linear gain).
# - **C2** the trend holds across pretraining sets and architectures (here: a bigger tower and a smaller corpus).
# - **C3** it persists when train–test similarity is lowered (here: held-out rendering domains; an analogue).
# - **C4** it persists with synthetic pretraining data — not separable here (everything is synthetic).
# - **C5** it holds across prompting strategies.
# - **C6** misalignment, long tails, counts correlated across corpora: not testable here (all hold by construction
#   in the world); the paper's misalignment measurement is still run on injected swaps.
# - **C7** a "Let it Wag!" analogue: the rarest seen concepts fall below the standard accuracy.
#
# **Reproduce:** `cliplab run concept_frequency` (smoke check: `cliplab run concept_frequency --smoke`).
#
# **Runtime:** `make bench` measures it on the machine at hand (the README's table of targets); the last cell prints this
# run's wall time. The zoo is trained once, before the first run, by `cliplab zoo train`.
# (`--set 'misalignment_train_levels=[]'` skips the four models of the misalignment control, its slowest part.)
#
# **Your own model and data:** `cliplab run concept_frequency --model ViT-B-32 --pretrained laion400m_e32
# --data DIR` (DIR holding `images/<class>/…`, `corpus.csv|parquet|…`, optionally `ood/<shift>/<class>/…`), or
# the parameters `model`, `pretrained`, `images`, `corpus`, `ood_images` below. The classes are counted in the
# corpus with the same engine and fitted with the same statistics; the claims are scored with the same checks
# over disjoint folds of the test images, into the model's own scoreboard (`replications/real/…`), and only
# where the model is competent on the images (the world sections are skipped).
#
# Settings fixed here: per-concept accuracy on `eval_per_concept` balanced held-out clean images per concept;
# headline x = matched count (caption names the concept ∧ image shows it) from the engine; fits over concepts
# with f ≥ 1, zero-count concepts reported separately; 95 % percentile bootstrap over concepts within one model.
#
# **Replicates.** A claim is scored over *worlds* (`seed_models`: one recipe, `tiny-s0 … tiny-s4`, each world
# with its own concept→frequency permutation), one value per world, by the rule printed with the verdicts
# (section 5). C2 compares a bigger tower and a smaller corpus with the base recipe; the zoo has those variants
# in world 0 only, so C2 has one replicate and the rule calls it inconclusive until the zoo has more.

# %% tags=["parameters"]
smoke: bool = False  # shrink everything for a fast CI check
seed_models: list[str] = ["tiny-s0", "tiny-s1", "tiny-s2", "tiny-s3", "tiny-s4"]  # the worlds: replicates (smoke: 2)
models: list[str] = ["small-s0", "tiny-c15k-s0"]  # other zoo models (size, corpus), evaluated besides the worlds
primary: str = "tiny-s0"  # the model the headline numbers are read from
size_pair: list[str] = ["tiny-s0", "small-s0"]  # same world and corpus, smaller and bigger image tower
corpus_pair: list[str] = ["tiny-c15k-s0", "tiny-s0"]  # same world, 15k and 50k corpora (C6 correlation)
eval_per_concept: int = 16  # balanced clean test images per concept
ood_domains: list[str] = ["textured", "sketch", "noisy"]  # rendering domains never seen in training (C3)
ood_per_concept: int = 6  # test images per concept in each held-out domain
tagger_model: str = "small-s0"  # CLIP tagger (the RAM++ analogue) for image counts of the seed-0 corpus
tagger_samples: int = 10000  # training images the CLIP tagger labels (a prefix of the corpus)
tagger_calibration: int = 1000  # held-out images the tagger threshold is chosen on (F1-best)
sim_recall: list[float] = [0.5, 0.2, 1.0]  # simulated taggers: recall of each ...
sim_false_positive: list[float] = [0.0, 0.0, 0.001]  # ... and its false-positive rate per (sample, concept)
misalignment_levels: list[float] = [0.05, 0.15, 0.35]  # caption-swap rates whose degree the engine measures
misalignment_train_levels: list[float] = [0.0, 0.05, 0.15, 0.35]  # rates to train a model at ([] skips; ~40 s each)
misalignment_base: str = "tiny-c15k-s0"  # zoo recipe (world, corpus, arch) of the misalignment models
misalignment_steps: int = 300  # optimiser steps of each misalignment model (fewer than the zoo's, for time)
tail_fraction: float = 0.1  # the "Let it Wag!" set: this fraction of the rarest seen concepts
n_bins: int = 12  # equal-width ln-count bins of the paper's binned ρ (first and last dropped)
n_boot: int = 2000  # bootstrap resamples for every CI
seed: int = 0  # seed of every bootstrap and simulated tagger
model: str = ""  # your CLIP: open_clip name (with pretrained), weights file, local-dir: or hf-hub:; empty: the zoo
pretrained: str = ""  # pretrained tag or weights file for model; empty: as model says (a bare name: random init)
images: str = ""  # labelled test images <class>/<image>: the classes are the concepts counted and classified
ood_images: list[str] = []  # shifted test folders with the same classes (C3); empty: C3 is not testable
corpus: str = ""  # caption corpus (parquet / CSV / TSV / JSONL / webdataset, local or fsspec URL)
caption_column: str = "caption"  # caption column of a table (digits: 0-based field of a header-less TSV), or a shard extension
templates: list[str] = ["a photo of a {}."]  # prompt templates of the headline accuracy (several: an ensemble)
folds: int = 5  # disjoint folds of the test images: the replicates of a claim on one model (smoke: 2)
count_scheduler: str = ""  # Dask for counting a big corpus: "local" (worker processes) or "tcp://host:port"
score_incompetent: bool = False  # score claims on your model even below the competence bar (wiring checks only)
device: str = "auto"  # cuda when torch sees a GPU, else cpu
batch_size: int = 64  # images per forward pass of your model
out_dir: str = ""  # where metrics.json and figures/ go; empty means a scratch folder; set by the runner

# %%
import dataclasses
import time

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
import torch
from IPython.display import Markdown, display

from cliplab import plots
from cliplab.core import paths
from cliplab.core.artifacts import Artifacts
from cliplab.core.claims import RULE, check_claims, results_table
from cliplab.frequency import narrative
from cliplab.frequency import experiment as ex
from cliplab.frequency import scaling as sc
from cliplab.frequency import worlds as fw
from cliplab.frequency.worlds import key
from cliplab.real import RealOptions, Scope, competence, validate

torch.set_num_threads(2)
plots.use_style()
art = Artifacts.for_notebook("concept_frequency", out_dir)
t_start = time.perf_counter()
real_opts = RealOptions(model=model, pretrained=pretrained, images=images, ood_images=tuple(ood_images),
                        corpus=corpus, caption_column=caption_column, device=device, batch_size=batch_size)
real_mode = real_opts.active
if real_mode:  # every option and the model checked before any work
    loaded = validate(real_opts, needs=["images", "corpus"], optional=["ood_images"])
if smoke:
    eval_per_concept, ood_per_concept, n_boot, ood_domains = 4, 3, 400, ["noisy"]
    tagger_samples, tagger_calibration, misalignment_train_levels, misalignment_steps = 500, 200, [], 30
    seed_models, folds = seed_models[:2], 2  # two worlds (folds): enough to wire the replicate scoring
evaluated = fw.evaluated_models(seed_models, models)


# %% [markdown]
# ## 1. The concept table of each model
# For each zoo model (the worlds `seed_models`, then `models`): the engine counts its training captions
# (`count_corpus`, whole-phrase lemmatised matching) and the world's ground-truth tagger its training images; matched = both. Zero-shot accuracy per
# concept comes from `eval_per_concept` held-out clean images, with three prompt styles, and from the held-out
# rendering domains. The engine's matched counts are checked against the world's metadata (they must agree
# exactly: no counting noise yet). In real mode the same table is built from the real corpus and folder.

# %%
tables: dict[str, pd.DataFrame] = {}
ood: dict[str, pd.DataFrame] = {}
zoo: dict = {}
if real_mode:
    from cliplab.eval import read_image_folder
    from cliplab.frequency import realpath as fr

    test_set = read_image_folder(images)
    shifted = [read_image_folder(d) for d in ood_images]
    real_run = fr.real_tables(loaded, test_set, corpus, folds=folds, templates=templates, ood_images=shifted,
                              column=real_opts.caption_key, batch_size=batch_size, scheduler=count_scheduler or None)
    print(real_run.counts.summary())
    scope = Scope("concept_frequency", model, pretrained, loaded.source, str(real_opts.resolved_device), smoke,
                  data=real_opts.data(), replicates=f"{folds} disjoint folds of the test images",
                  sizes={"classes": real_run.n_classes, "test images": real_run.total,
                         "shifted images": sum(len(d.labels) for d in shifted)})
    scope.not_testable(["C2"], "needs models of two sizes and two corpus sizes on one pretraining world")
    if not ood_images:
        scope.not_testable(["C3"], "needs shifted test folders (ood_images) with the same classes")
    claims_here = ["C1", "C3", "C5", "C7"]
    usable = scope.guard(competence(real_run.correct, real_run.total, real_run.n_classes), claims_here,
                         force=score_incompetent)
    problem = fr.fit_problem(real_run.tables) if usable else ""
    if problem:
        scope.not_testable(claims_here, problem)
    if usable and not problem:
        tables, ood = dict(real_run.tables), dict(real_run.ood)
    seed_models = evaluated = list(tables)  # the folds are this run's replicates
    ood_domains = sorted({d for t in ood.values() for d in t["domain"]})
    for name in [n for n in evaluated if n in ood]:
        art.log_metrics(fw.top1_metrics(name, tables[name], ood[name]))
    display(pd.Series(scope.untestable, name="not testable here").to_frame()) if scope.untestable else None
else:
    from tqdm.auto import tqdm

    from cliplab.zoo import colour_templates, zoo_model

    for name in tqdm(evaluated, desc="zoo models"):
        m = zoo_model(name, smoke=smoke)
        zoo[name] = m
        prompts = {"accuracy": colour_templates(m.world.palette), "acc_classname": ["{}"],
                   "acc_photo": ["a photo of a {}."]}
        counts = ex.corpus_counts(m.world, m.entry.corpus_size)
        agree = (counts.table["matched_count"].to_numpy() == m.concepts["matched_count"].to_numpy()).mean()
        art.log_metrics({f"counts.{key(name)}.engine_matches_truth": agree})
        weights = ex.prompt_weights(m.loaded, ex.world_classnames(m.world), prompts)  # once per model
        acc = ex.world_accuracy(m.loaded, m.world, eval_per_concept, "clean", prompts, weights)
        tables[name] = ex.concept_table(counts.table, acc, m.world)
        ood[name] = pd.concat([ex.concept_table(counts.table, ex.world_accuracy(
            m.loaded, m.world, ood_per_concept, d, {"accuracy": prompts["accuracy"]}, weights), m.world)
            for d in ood_domains], ignore_index=True)
        art.log_metrics(fw.top1_metrics(name, tables[name], ood[name]))
pd.DataFrame({n: {"concepts": len(t), "seen (f ≥ 1)": int((t["count"] >= 1).sum()),
                  "max count": int(t["count"].max()), "top-1 (clean)": t["accuracy"].mean()}
              for n, t in tables.items()}).T

# %% [markdown]
# ## 2. Fits per model: slope, unbinned and binned correlations, multiplier, zero-frequency, tail
# `frequency_report` fits accuracy (points) on log10 f over concepts with f ≥ 1, with a bootstrap CI over
# concepts; reports the unbinned Pearson r and Spearman ρ, the paper-style **binned** ρ (12 ln-count bins,
# first and last dropped), the data multiplier per +10 points, never-seen accuracy against chance and the
# head/tail gap. The same call serves the real path.

# %%
reports = {}
for name, table in tables.items():
    chance = 1.0 / len(table)
    reports[name] = sc.frequency_report(table, prefix=f"fit.{key(name)}", chance=chance, tail_fraction=tail_fraction,
                                        n_bins=n_bins, n_boot=n_boot, seed=seed)
    art.log_metrics(reports[name])
summary = pd.DataFrame({n: {k.split(".", 2)[2]: v for k, v in r.items()} for n, r in reports.items()})
summary.reindex(["slope", "slope_ci_low", "slope_ci_high", "pearson", "spearman", "r_log", "r_linear", "binned_rho",
                 "multiplier_defined", "zero_defined", "tail_defined"]).round(3)  # binned ρ may be undefined

# %% [markdown]
# ### Accuracy against frequency
# Each point is one concept (clean test images, colour-template ensemble); the line is the per-concept OLS fit
# with its 95 % bootstrap band. Never-seen concepts (f = 0) sit at the left edge, outside the fit. The binned
# curve (right) is what the paper plots: bin means of the 10 inner ln-count bins.

# %%
if not tables:
    print("no concept table to fit (the real path's scope above says why)")
else:
    n_cols = min(4, len(tables) + 1)
    n_rows = -(-(len(tables) + 1) // n_cols)
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(4.2 * n_cols, 3.8 * n_rows), squeeze=False)
    axes = axes.ravel()
    for ax in axes[len(tables) + 1:]:
        ax.set_visible(False)
    for ax, (name, table) in zip(axes, tables.items()):
        seen = table[table["count"] >= 1]
        fit = sc.fit_slope(table, n_boot=n_boot, seed=seed)
        band = sc.fit_band(fit, table, seed=seed)
        ax.scatter(seen["count"], 100 * seen["accuracy"], s=10, alpha=0.5)
        zero = table[table["count"] == 0]
        ax.scatter(np.full(len(zero), max(0.5, seen["count"].min() / 2)), 100 * zero["accuracy"], s=12, marker="x",
                   color="grey", label=f"f = 0 (n={len(zero)})")
        ax.plot(band["count"], band["fit"], color="C3", label=f"{fit.slope:.1f} pts/decade")
        ax.fill_between(band["count"], band["low"], band["high"], color="C3", alpha=0.2)
        ax.set(xscale="log", xlabel="matched training count f", ylabel="zero-shot top-1 (%)", title=name, ylim=(-3, 103))
        ax.legend(fontsize=7, loc="upper left")
    ax = axes[len(tables)]
    for name, table in tables.items():
        try:
            b = sc.binned_correlation(table["count"], table["accuracy"], n_bins)
            ax.plot(np.exp(b.edges), 100 * b.means, marker="o", label=f"{name}: binned ρ {b.rho:.2f}")
        except ValueError as err:
            print(f"{name}: binned ρ undefined ({err})")
    ax.set(xscale="log", xlabel="bin right edge (count)", ylabel="bin mean top-1 (%)", title="binned (paper-style)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    art.save_figure(fig, "accuracy_vs_frequency")
    plt.show()

# %% [markdown]
# ## 3. Headline metrics (C1, C2, C5, C7)
# Every model's fit is logged under its own key (`fit.<model>.*`, `prompt.<model>.<prompt>.*`); the claims read
# one value per world from them (section 5). C5 refits each model's slope with the three prompt styles; C7 is the
# head/tail split of each model (the rarest `tail_fraction` of seen concepts against all seen ones).

# %%
if evaluated:
    prompt_fits = {(n, col): sc.fit_slope(tables[n], y=col, n_boot=n_boot, seed=seed)
                   for n in evaluated for col in fw.PROMPTS.values()}
    for (n, col), fit in prompt_fits.items():
        art.log_metrics(fit.metrics(f"prompt.{key(n)}.{col}"))
    gaps = {n: sc.head_tail_gap(tables[n], tail_fraction=tail_fraction, n_boot=n_boot, seed=seed) for n in evaluated}
    display(pd.DataFrame({f"{n} / {c}": {"slope": f.slope, "ci_low": f.ci_low, "ci_high": f.ci_high}
                          for (n, c), f in prompt_fits.items()}).T.round(2))
    fig, ax = plt.subplots(figsize=(6, 3.6))
    gap_frame = pd.DataFrame([{"model": n, "set": s, "top-1 (%)": 100 * v} for n, g in gaps.items()
                              for s, v in (("all seen", g.standard), ("rarest 10 %", g.tail), ("most frequent 10 %", g.head))])
    sns.barplot(gap_frame, x="model", y="top-1 (%)", hue="set", ax=ax)
    ax.set(title="'Let it Wag!' analogue: rarest seen concepts vs the standard test set")
    ax.legend(fontsize=7)
    art.save_figure(fig, "head_tail")
    plt.show()

# %% [markdown]
# ## 4. Controls
# ### 4a. Permuted frequencies (concept difficulty removed)
# The seed worlds draw their concepts from the same (shape, marking, pattern) sprites but assign frequency
# ranks independently. For sprites seen in at least two worlds, a slope with one intercept per sprite uses only
# *within-concept* changes of frequency: concept difficulty cannot enter it.
# ### 4b. Model size and train–test similarity (C3)
# The bigger image tower on the same corpus (paired slope difference: negative = flatter), and the slope on test
# images from rendering domains the models never saw, pooled with per-domain intercepts.

# %%
if not real_mode:
    pair = pd.concat([tables[n].assign(world=n) for n in seed_models], ignore_index=True)
    seen_pair = pair[pair["count"] >= 1]
    shared = seen_pair[seen_pair.groupby("key")["world"].transform("nunique") >= 2]
    perm = None
    if shared["key"].nunique() >= 3:  # smoke worlds (32 of 512 sprites) rarely share any
        perm = sc.fit_slope(shared, group="key", cluster="key", n_boot=n_boot, seed=seed)
        art.log_metrics({**perm.metrics("ctrl.permutation"), "ctrl.permutation.n_sprites": perm.n_clusters})
    art.log_metrics({"ctrl.permutation.defined": float(perm is not None)})
    small_name, big_name = size_pair
    sized = tables[small_name][["concept", "count", "accuracy"]].merge(
        tables[big_name][["concept", "accuracy"]], on="concept", suffixes=("_small", "_big"))
    size_diff = sc.slope_difference(sized, "count", "accuracy_small", "accuracy_big", n_boot=n_boot, seed=seed)
    art.log_metrics({"ctrl.size.slope_small": reports[small_name][f"fit.{key(small_name)}.slope"],
                     "ctrl.size.slope_big": reports[big_name][f"fit.{key(big_name)}.slope"],
                     "ctrl.size.slope_diff": size_diff.slope, "ctrl.size.slope_diff_ci_low": size_diff.ci_low,
                     "ctrl.size.slope_diff_ci_high": size_diff.ci_high})
    if perm is not None:
        print(f"within-sprite slope (permutation control): {perm.slope:.1f} [{perm.ci_low:.1f}, {perm.ci_high:.1f}] "
              f"over {perm.n_clusters} sprites")
    print(f"bigger minus smaller model: {size_diff.slope:+.1f} [{size_diff.ci_low:+.1f}, {size_diff.ci_high:+.1f}] pts/decade")

# %%
ood_fits = {}
for n in [n for n in evaluated if n in ood]:  # the zoo's held-out domains, or your shifted folders
    pooled = sc.fit_slope(ood[n], group="domain", cluster="concept", n_boot=n_boot, seed=seed)
    art.log_metrics(pooled.metrics(f"ood.{key(n)}.pooled"))
    ood_fits[(n, "pooled")] = pooled
    for d in ood_domains:
        fit = sc.fit_slope(ood[n][ood[n]["domain"] == d], n_boot=n_boot, seed=seed)
        art.log_metrics(fit.metrics(f"ood.{key(n)}.{d}"))
        ood_fits[(n, d)] = fit
pd.DataFrame({f"{n} / {d}": {"slope": f.slope, "ci_low": f.ci_low, "ci_high": f.ci_high}
              for (n, d), f in ood_fits.items()}).T.round(2)

# %% [markdown]
# ### 4c. Counting noise
# The same accuracies of `primary` against counts from different counters: the ground truth (engine text ∧
# ground-truth images), the text count alone, a CLIP tagger (`tagger_model`, threshold chosen by F1 on held-out
# images) over the first `tagger_samples` training images alone and matched with the text, and simulated taggers
# that miss true occurrences (recall) or add false ones. Counts on a prefix of the corpus estimate the same
# frequencies up to a constant factor, which a slope per decade ignores.

# %%
if not real_mode:
    m = zoo[primary]
    tagged = ex.clip_tag_world(zoo_model(tagger_model, smoke=smoke).loaded, m.world, tagger_samples,
                               templates=colour_templates(m.world.palette), n_calibration=tagger_calibration)
    clip_counts = ex.corpus_counts(m.world, tagger_samples, image_hits=tagged.hits).table
    base = tables[primary]
    variants = {"truth (matched)": base["matched_count"], "text only": base["text_count"],
                "CLIP tagger image": base["concept"].map(clip_counts["image_count"]),
                "CLIP tagger matched": base["concept"].map(clip_counts["matched_count"])}
    for rec, fp in zip(sim_recall, sim_false_positive):
        truth = tables[primary].drop_duplicates("concept").sort_values("concept")["matched_count"].to_numpy()
        noisy = sc.noisy_counts(truth, m.entry.corpus_size, recall=rec, false_positive_rate=fp, seed=seed)
        variants[f"sim r={rec:g} fp={fp:g}"] = base["concept"].map(pd.Series(noisy))
    noise_rows = []
    for i, (label, x) in enumerate(variants.items()):
        t = base.assign(x=x.to_numpy())
        fit = sc.fit_slope(t, x="x", n_boot=n_boot, seed=seed)
        try:
            rho = sc.binned_correlation(t["x"], t["accuracy"], n_bins).rho
        except ValueError:
            rho = 0.0
        art.log_metrics({**fit.metrics(f"ctrl.noise.v{i}"), f"ctrl.noise.v{i}.binned_rho": rho})
        noise_rows.append({"counter": label, "slope": fit.slope, "ci_low": fit.ci_low, "ci_high": fit.ci_high,
                           "pearson": fit.pearson, "binned ρ": rho, "n (f ≥ 1)": fit.n})
    art.log_metrics({"ctrl.noise.tagger_threshold": tagged.threshold, "ctrl.noise.tagger_f1": tagged.calibration_f1,
                     "ctrl.noise.tagger_precision": tagged.precision, "ctrl.noise.tagger_recall": tagged.recall})
    noise = pd.DataFrame(noise_rows).set_index("counter")
    print(f"CLIP tagger on held-out images: threshold {tagged.threshold:.3g}, precision {tagged.precision:.2f}, "
          f"recall {tagged.recall:.2f}, F1 {tagged.calibration_f1:.2f}")
    display(noise.round(3))

# %% [markdown]
# ### 4d. Caption misalignment (C6)
# Captions swapped with another sample's at rate m. The engine measures the misalignment degree with the
# paper's definition (text and image concepts both present but disjoint) on the `misalignment_base` world at
# every rate; models of that recipe trained for `misalignment_steps` steps at each of `misalignment_train_levels`
# show what misalignment does to the slope (x = matched count of the misaligned corpus, headline definition).

# %%
if not real_mode:
    from cliplab.zoo import read_params
    from cliplab.world import World

    base_entry = zoo[misalignment_base].entry
    world_params = read_params().get("world") or {}
    degrees = {}
    for level in misalignment_levels:
        variant = dataclasses.replace(base_entry, world={**base_entry.world, "misalignment": level})
        measured = ex.corpus_counts(World(variant.world_config(world_params)), base_entry.corpus_size).misalignment
        degrees[level] = measured.degree
        art.log_metrics({f"C6.degree_m{round(100 * level)}": measured.degree})
    rel = [abs(degrees[lv] - lv) / lv for lv in degrees if lv > 0]
    s0, s1 = (tables[n].drop_duplicates("concept").sort_values("concept") for n in corpus_pair)
    in_training = ~s1["heldout"].to_numpy()
    seen = base[base["count"] >= 1]["count"]
    art.log_metrics({"C6.degree_rel_error_max": max(rel, default=0.0),
                     "C6.count_decades": float(np.log10(seen.max()) - np.log10(seen.min())),
                     "C6.spearman_corpora": pd.Series(s0["count"].to_numpy()[in_training]).corr(
                         pd.Series(s1["count"].to_numpy()[in_training]), method="spearman")})
    runs = ex.misalignment_control(base_entry, misalignment_train_levels, steps=misalignment_steps,
                                   per_concept=eval_per_concept, world_params=world_params, n_boot=n_boot, seed=seed)
    for run in runs:
        art.log_metrics(run.metrics())
    mis = pd.DataFrame([r.row() for r in runs], columns=["m", "slope", "ci_low", "ci_high", "top1", "degree"])
    display(pd.Series(degrees, name="measured degree").to_frame().rename_axis("injected rate").round(4))
    display(mis.round(3))

# %% [markdown]
# ### The controls side by side
# Slopes with 95 % CIs: counters (left), misalignment rates (middle), held-out test domains (right).

# %%
if not real_mode:
    fig, axes = plt.subplots(1, 3, figsize=(16, 4))
    y = np.arange(len(noise))
    axes[0].errorbar(noise["slope"], y, xerr=[noise["slope"] - noise["ci_low"], noise["ci_high"] - noise["slope"]],
                     fmt="o", capsize=3)
    axes[0].set(yticks=y, yticklabels=noise.index, xlabel="slope (points/decade)", title=f"counting noise ({primary})")
    axes[1].errorbar(100 * mis["m"], mis["slope"], yerr=[mis["slope"] - mis["ci_low"], mis["ci_high"] - mis["slope"]],
                     fmt="o-", capsize=3)
    axes[1].set(xlabel="injected caption misalignment (%)", ylabel="slope (points/decade)",
                title=f"misalignment ({misalignment_base} recipe)")
    labels = [f"{n} / {d}" for (n, d) in ood_fits]
    vals = list(ood_fits.values())
    y = np.arange(len(vals))
    axes[2].errorbar([f.slope for f in vals], y, xerr=[[f.slope - f.ci_low for f in vals], [f.ci_high - f.slope for f in vals]],
                     fmt="o", capsize=2)
    axes[2].set(yticks=y, yticklabels=labels, xlabel="slope (points/decade)", title="held-out test domains")
    axes[2].tick_params(axis="y", labelsize=6)
    for ax in axes[[0, 2]]:
        ax.axvline(0, color="grey", lw=1)
    art.save_figure(fig, "controls")
    plt.show()

# %% [markdown]
# ## 5. Verdicts
# **Replicate series.** Each statistic a check compares is logged once per world (`KEY.r0 …`, `KEY` = the mean
# over worlds): C1 (slope, r with log f and with f), C3 (pooled held-out slope), C5 (slope per prompt style) and
# C7 (all seen vs rarest accuracy) over the `seed_models` worlds; C2 (slope of the bigger tower and of the smaller
# corpus) over the worlds the zoo has those variants in: world 0 only.
#
# **When the checks were written.** The checks are written from the paper's claims. They were revised (the date
# and reason are in each claim's `revised:` entry) after earlier default runs had been seen: the within-run
# bootstrap-CI bounds (minimum over models) became per-world replicate series scored by the rule below, with the
# same quantities and directions as before. The table evaluates them on this run; at smoke
# scale the numbers only show that the pipeline is wired. On your own model the same checks score C1, C3, C5 and
# C7 over disjoint folds of your test images (`real-f0 …`), when the model is competent on them; the table says
# why a claim is not testable there.

# %%
if real_mode:
    if evaluated:
        art.log_replicates(fw.world_series(art.metrics, seed_models, ood_domains, ood=bool(ood)))
    verdicts = check_claims(paths.claims_path(paths.project_root(), "concept_frequency"),
                            art.metrics if evaluated else {}, smoke=smoke, untestable=scope.untestable)
    scope.write(art.out_dir)
    display(Markdown(f"**How a claim is scored.** {RULE}"))
    display(results_table(verdicts))
else:
    art.log_replicates({**fw.world_series(art.metrics, seed_models, ood_domains),
                        **fw.variant_series(art.metrics, size_pair[1:], corpus_pair[:1])})
    art.log_metrics(fw.world_summary(art.metrics, seed_models, evaluated, len(tables[primary])))
    verdicts = check_claims(paths.claims_path(paths.project_root(), "concept_frequency"), art.metrics, smoke=smoke)
    display(Markdown(f"**How a claim is scored.** {RULE}"))
    display(results_table(verdicts))

# %% [markdown]
# ## 6. How to read the verdicts
#
# The list below the next cell is rendered from this run's metrics. What it means:
#
# * **C1, C2, C5 (slope).** Read the slope per world and the spread over worlds, not the binned ρ: per-concept
#   accuracy is noisy (`eval_per_concept` test images per concept), so the unbinned r is small, as in the paper,
#   while the binned ρ can be high — the
#   card's warning that binned ρ is not a stable headline applies here too. A slope steeper than the paper's
#   (a smaller multiplier) is expected: the world's concepts are easy to separate once seen and the counts span
#   few decades, so the absolute slope and multiplier are not comparable with web-scale models (card §6,
#   "cannot show faithfully"). The within-sprite slope of the permutation control (section 4a) shows whether
#   the trend is a concept-difficulty artefact. C2 and the model-size control rest on one bigger tower and one
#   smaller corpus, both in world 0: one replicate, so C2 stays inconclusive whatever its sign (the zoo would need
#   `small-s1…s4` and `tiny-c15k-s1…s4`), and "bigger models flatten the slope" is a single-world observation.
# * **C3.** Read the per-domain table. The check asks for the pooled held-out slope (per-domain intercepts) to be
#   above 0 in every world and for its mean over worlds to have its t-interval above 0. With
#   `ood_per_concept` images per concept and domain one world's slope is noisy, so worlds that disagree are a
#   question of power, not a reversal. It is also a different manipulation from the
#   paper's near-duplicate pruning (held-out rendering domains lower the train–test similarity of every image at
#   once).
# * **C6 (not testable here).** Every part holds by construction: the misalignment is injected, the long tail
#   is the generator's Zipf setting, and the two corpora we can compare (15k and 50k of one world) are nested
#   samples of one distribution, so their counts correlate by design. What the run does test is the paper's
#   measurement on injected swaps: its definition counts a swapped caption as misaligned only when it shares no
#   concept with the image, which is why the measured degree sits slightly below the injected rate. The trained
#   misalignment control (section 4d) shows what misalignment does to accuracy and to the slope: if top-1 falls
#   while the slope's CI keeps overlapping the clean one, misalignment costs accuracy everywhere rather than
#   flattening the frequency trend.
# * **C7.** The "Let it Wag!" analogue takes the rarest 10 % of *seen* concepts. If it does not replicate, the
#   likely reason is power and range: tail concepts here still have tens of matched occurrences (our Zipf tail
#   is short compared with web data, where Let it Wag! concepts are orders of magnitude rarer than ImageNet
#   classes), and a few dozen concepts × `eval_per_concept` images give noisy per-world gaps.
# * **Counting noise (section 4c).** Text-only counts equal the matched counts here (no misalignment in the
#   zoo worlds). The CLIP tagger and the simulated taggers change the slope and the binned ρ: recall loss alone
#   rescales counts and barely moves the slope, false positives compress the low end and steepen it; compare
#   the rows before trusting a slope computed from tagger counts. The CLIP tagger (`small-s0`) was trained on the
#   very corpus it tags, so its recall itself grows with a concept's frequency: its counts are circular in a way
#   RAM++ on LAION is not, and part of a steeper slope from its counts may be that circularity.

# %%
if not real_mode:
    display(Markdown(narrative.reading(art.metrics, verdicts, domains=ood_domains)))

# %%
print(f"wall time {time.perf_counter() - t_start:.1f} s")
art.write_metrics()
