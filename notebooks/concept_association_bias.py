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
# # When are Lemons Purple? The Concept Association Bias — CPU replication
#
# **Paper:** Tang, Yamada, Zhang, Yildirim. *When are Lemons Purple? The Concept Association Bias of
# Vision-Language Models.* EMNLP 2023 (arXiv 2212.12043). Spec: `docs/papers/concept_association_bias.md`;
# library: `cliplab.association`.
#
# **Claims tested** (see `replications/concept_association_bias/claims.yaml`):
# - **C1** a contrastive model answers "what colour is the lemon?" with the *other* object's colour (CAB).
# - **C2** CAB is strong when the object–colour association is strong, absent when weak; unnatural colours
#   split about evenly between the two colours shown.
# - **C3** contrastive vs autoregressive losses — not testable here (no captioner in the zoo).
# - **C4** a Transformer head over both encoders, fine-tuned on VQA, lowers CAB; lower CAB ↔ higher VQA accuracy.
# - **C5** part–whole on Rel3D — not testable here.
#
# **Reproduce:** `cliplab run concept_association_bias` (smoke check: `cliplab run concept_association_bias --smoke`).
# Your own model and photos: `cliplab run concept_association_bias --model ViT-B-32 --pretrained openai
# --set colour_images=/data/fruit` (folder `<object>/<colour>/*.jpg`, or a CSV of
# path, object, colour[, condition]); pairs are composed side by side automatically.
#
# **Runtime:** `make bench` measures it on the machine at hand (the README's table of targets); the last cell prints this
# run's wall time. The zoo is trained once, before the first run, by `cliplab zoo train`.
#
# Choices the paper leaves open, fixed here: the candidate colours are the world's whole 10-colour palette
# (it always contains both objects' colours, card §5); only objects seen ≥ `min_matched` times in training
# are probed (the model must know the word); every two-object image is asked about both objects; probes
# come from the world's probe stream, never from training samples. Association strength is
# P(colour | object) counted from the model's own training captions (metadata of the `corpus_size`
# training samples), replacing ConceptNet.

# %% tags=["parameters"]
smoke: bool = False  # shrink everything for a fast CI check
models: list[str] = ["tiny-s0", "tiny-s1", "tiny-s2", "tiny-s3", "tiny-s4"]  # C1/C2 replicates: one recipe, 5 seeds
extra_models: list[str] = ["small-s0"]  # probed the same way, reported beside the series (another recipe)
n_pairs: int = 300  # two-object probe images per condition and model (each asked about both objects)
min_matched: int = 100  # probe only concepts with ≥ this many matched training occurrences
probe_seed: int = 0  # seed of the probe sets (pairs, colours, scene jitter)
template: str = "In this picture, the color of the {object} is {color}."  # the statement scored per colour
association_measure: str = "p_colour_given_object"  # or "pmi", association strength from training captions
vqa_model: str = "tiny-s0"  # zoo CLIP the VQA heads are trained on
vqa_variants: list[str] = ["pooled", "pooled_unfrozen", "layers1", "layers2", "layers2_unfrozen"]  # head variants
vqa_train_images: int = 4000  # training scenes (1–2 objects) for the VQA heads
vqa_test_images: int = 500  # held-out two-object test scenes for VQA accuracy
vqa_steps: int = 300  # AdamW steps per head
vqa_batch_size: int = 64  # questions per step
vqa_lr: float = 0.001  # head learning rate; unfrozen encoders use 1e-4
vqa_width: int = 64  # head width
vqa_resnet_stage: int = 3  # ModifiedResNet stage giving image tokens, 2 for layer2 (4×4 at 32 px), 3 for layer3 (2×2)
vqa_seeds: list[int] = [0, 1, 2, 3, 4]  # C4 replicates: head seeds (init and minibatches), each all variants
vqa_jobs: int = 2  # heads trained at once in separate processes (one thread each); results do not depend on it
model: str = ""  # your CLIP: open_clip name (with pretrained), weights file, local-dir: or hf-hub:; empty: the zoo
pretrained: str = ""  # pretrained tag or weights file for model; empty: as model says (a bare name: random init)
colour_images: str = ""  # your single-object photos <object>/<colour>/<image> (or a CSV path, object, colour[, condition])
folds: int = 5  # disjoint folds of the probe pairs: the replicates of C1 on one model (smoke: 2)
score_incompetent: bool = False  # score claims on your model even below the competence bar (wiring checks only)
device: str = "auto"  # cuda when torch sees a GPU, else cpu
batch_size: int = 32  # images per forward pass of your model
out_dir: str = ""  # where metrics.json and figures/ go; empty means a scratch folder; set by the runner

# %%
import time

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
import torch
from IPython.display import Markdown, display
from tqdm.auto import tqdm

from cliplab import plots
from cliplab.core import paths
from cliplab import association as ca
from cliplab.association import narrative
from cliplab.core.artifacts import Artifacts
from cliplab.core.claims import check_claims, results_table
from cliplab.models.preprocess import image_size
from cliplab.real import RealOptions, Scope, competence, validate
from cliplab.zoo import zoo_model

torch.set_num_threads(1)  # tiny models: one thread is faster than two on shared cores
plots.use_style()
art = Artifacts.for_notebook("concept_association_bias", out_dir)
t_start = time.perf_counter()
real_opts = RealOptions(model=model, pretrained=pretrained, colour_images=colour_images, device=device,
                        batch_size=batch_size)
real = real_opts.active
if real:  # every option and the model checked before any work
    loaded_real = validate(real_opts, needs=["colour_images"])
if not real and vqa_model not in [*models, *extra_models]:
    raise ValueError(f"vqa_model {vqa_model!r} must be one of the probed models {[*models, *extra_models]}")

if smoke:
    models, extra_models, n_pairs, min_matched = ["tiny-s0", "tiny-s1"], [], 40, 20
    vqa_train_images, vqa_test_images, vqa_steps, vqa_seeds, vqa_jobs, folds = 300, 100, 25, [0, 1], 1, 2
metrics: dict[str, float] = {}

# %% [markdown]
# ## 1. Probes
# Three conditions per model, each `n_pairs` two-object images (objects side by side, colours always
# different) plus a single-object control for each object in the same colour:
# **natural** (strong concepts in their canonical colours: the lemon + eggplant case), **unnatural** (strong
# concepts recoloured so that neither shows its own or its partner's canonical colour), **weak** (concepts
# with no canonical colour, random distinct colours). Below: a few natural probes with the question asked.

# %%
if real:
    photos = ca.read_object_photos(colour_images)
    probe_sets = {"real": ca.build_photo_probes(photos, n_pairs, probe_seed, size=image_size(loaded_real.model))}
    zoo = {}
else:
    zoo = {name: zoo_model(name, smoke=smoke) for name in tqdm([*models, *extra_models], desc="loading zoo models")}
    probe_sets = {}
    for name, m in zoo.items():
        known = ca.known_concepts(m.concepts, min_matched)
        probe_sets[name] = ca.concat_probes([ca.build_probes(m.world, c, n_pairs, probe_seed, concepts=known)
                                             for c in ca.CONDITIONS])
first = next(iter(probe_sets.values()))
show = first.table[first.table.kind == "two"].groupby("condition").head(2)
fig, axes = plt.subplots(1, len(show), figsize=(2.2 * len(show), 2.6), squeeze=False)
for ax, (_, row) in zip(axes[0], show.iterrows()):
    ax.imshow(np.asarray(first.images[row.image_index]))
    ax.set_title(f"{row.condition}\n{row.query}? ({row.query_colour}; other {row.other_colour})", fontsize=7)
    ax.axis("off")
art.save_figure(fig, "probe_examples")
plt.show()
pd.DataFrame({name: s.table.groupby(["condition", "kind"]).size() for name, s in probe_sets.items()})

# %% [markdown]
# ## 2. Zero-shot CAB: Single, Two, Two* per condition (C1, C2)
# Each statement "In this picture, the color of the {object} is {c}." is scored for every palette colour c by
# 100 · image · text on normalised features; the answer is the best colour. **Single** = accuracy on the
# controls, **Two** = correct colour on two-object images, **Two\*** = the *other* object's colour, **third** =
# a colour on neither object, **CAB** = (1 − Two + Two\*)/2 (1: always the other colour, 0.5: no preference).
# Each zoo CLIP of `models` (one recipe, its own world seed and model seed) is one replicate of the claims; the
# models of `extra_models` (another recipe) are scored alike and shown beside them, never pooled into the series.

# %%
scored = []
for name, probes in tqdm(probe_sets.items(), desc="scoring probes"):
    clip = loaded_real if real else zoo[name].loaded
    scored.append(ca.run_probes(clip, probes, template).assign(model=name))
scored = pd.concat(scored, ignore_index=True)
per_model = ca.cab_by(scored, ["model", "condition"])
series_models = [m for m in models if m in set(scored.model)] if not real else []
per_model["series"] = per_model.model.isin(series_models)
per_model.round(3)

# %%
bars = per_model.melt(id_vars=["model", "condition", "series"], value_vars=["single", "two", "two_star"],
                      var_name="metric", value_name="rate")
bars["metric"] = bars["metric"].map({"single": "Single", "two": "Two", "two_star": "Two*"})
fig, ax = plt.subplots(figsize=(7.5, 4))
sns.barplot(bars[bars.series | real], x="condition", y="rate", hue="metric", errorbar=None, ax=ax, palette="Set2")
sns.stripplot(bars, x="condition", y="rate", hue="metric", dodge=True, ax=ax, palette="dark:k", size=4,
              legend=False, alpha=0.7)
ax.axhline(0.5, color="grey", lw=1, ls=":")
ax.set(ylim=(0, 1.02), ylabel="fraction of answers", xlabel="",
       title="Single, Two (correct) and Two* (other object's colour): bars = series mean, dots = models")
art.save_figure(fig, "single_two_twostar")
plt.show()
per_model.pivot(index="model", columns="condition", values="cab").round(3)

# %% [markdown]
# ## 3. CAB vs association strength (C2)
# Association strength of an (object, colour) binding is P(colour | object) counted in the model's own
# training captions (each zoo model has its own world and corpus). A pair's strength is the mean over its two
# objects with the colours they show; per-pair CAB averages the questions asked about that (object, colour,
# other object, colour) combination. Spearman ρ is taken per model, over that model's pairs of all conditions:
# one value per replicate.

# %%
if not real:
    per_pair, strengths = [], {}
    for name, m in tqdm(zoo.items(), desc="counting training captions"):
        key = (repr(m.world.config), m.entry.corpus_size)  # models sharing a world and corpus share the counts
        if key not in strengths:
            strengths[key] = ca.association_strength(m.world, m.entry.corpus_size)
        table, _ = ca.cab_vs_association(scored[scored.model == name], strengths[key], association_measure,
                                         which="pair")
        per_pair.append(table.assign(model=name))
    per_pair = pd.concat(per_pair, ignore_index=True)
    summaries = {name: ca.model_summary(scored, per_pair, name) for name in zoo}
    shown = per_pair[per_pair.model.isin(series_models)]
    fig, ax = plt.subplots(figsize=(7, 4.2))
    jitter = np.random.default_rng(0).uniform(-0.02, 0.02, len(shown))
    sns.scatterplot(x=shown.association, y=shown.cab + jitter, hue=shown.condition, alpha=0.5, s=18, ax=ax)
    bins = pd.qcut(shown.association.rank(method="first"), 8, labels=False)
    binned = shown.groupby(bins)[["association", "cab"]].mean()
    ax.plot(binned.association, binned.cab, "k-o", lw=1.5, ms=4, label="binned mean")
    ax.axhline(0.5, color="grey", lw=1, ls=":")
    rhos = ", ".join(f"{summaries[m]['spearman_assoc']:+.2f}" for m in series_models)
    ax.set(xlabel=f"association strength of the pair ({association_measure}, training captions)",
           ylabel="per-pair CAB (jittered)", title=f"series models; Spearman ρ per model: {rhos}")
    ax.legend(fontsize=7)
    art.save_figure(fig, "cab_vs_association")
    plt.show()
    display(pd.DataFrame(summaries).T[["spearman_assoc", "spearman_assoc_query", "spearman_assoc_other",
                                      "n_pairs"]].round(3))

# %% [markdown]
# ## 4. Mitigation and the VQA link (C4)
# Heads on one zoo CLIP, trained on templated VQA ("what color is the {object}?") over training scenes with
# one or two objects, evaluated on held-out two-object test scenes. Variants, least to most cross-modal
# capacity: an MLP on the pooled embeddings (frozen / encoders fine-tuned), and 1–2 Transformer layers over
# [image tokens; text tokens] (frozen, or 2 layers with fine-tuned encoders). The image tower is a
# ModifiedResNet whose last map is 1×1 at 32 px, so its image tokens are the 2×2 layer3 map (`vqa_resnet_stage`).
# CAB of a head: the same natural-colour probes, each question answered by the head. Each head seed of
# `vqa_seeds` trains every variant (its own init and minibatch order) and gives its own Spearman ρ(CAB, VQA
# accuracy) over the variants: one replicate of C4. Frozen-encoder heads train on the encoders' outputs
# computed once (the same computation as re-encoding every minibatch); `vqa_jobs` heads train at once.

# %%
if not real:
    base = zoo[vqa_model]
    vqa_train = ca.vqa_data(base.world, vqa_train_images, "train")
    vqa_test = ca.vqa_data(base.world, vqa_test_images, "test", n_objects=(2,))
    natural = scored[(scored.model == vqa_model) & (scored.condition == "natural")]
    natural_probes = probe_sets[vqa_model]
    natural_probes = ca.ProbeSet(natural_probes.table[natural_probes.table.condition == "natural"],
                                 natural_probes.images, natural_probes.palette)
    config = ca.VQAConfig(steps=vqa_steps, batch_size=vqa_batch_size, lr=vqa_lr, width=vqa_width,
                          resnet_stage=vqa_resnet_stage, num_threads=1)
    t_heads = time.perf_counter()
    sweep = ca.variant_sweep(base.loaded, vqa_train, vqa_test, natural_probes, vqa_variants, vqa_seeds, config,
                             jobs=vqa_jobs)
    print(f"{len(sweep)} VQA heads in {time.perf_counter() - t_heads:.1f} s ({vqa_jobs} at once)")
    clip_vqa = ca.zero_shot_vqa_accuracy(base.loaded, vqa_test, template)
    clip_cab = ca.cab_metrics(natural)["cab"]
    head_series = ca.head_seed_series(sweep)
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    sns.scatterplot(sweep, x="cab", y="vqa_accuracy", hue="variant", s=25, alpha=0.5, ax=ax, legend=False)
    means = sweep.groupby("variant", sort=False)[["cab", "vqa_accuracy"]].mean().reset_index()
    sns.scatterplot(means, x="cab", y="vqa_accuracy", hue="variant", s=90, ax=ax, edgecolor="k")
    ax.scatter([clip_cab], [clip_vqa], marker="*", s=180, color="k", label="zero-shot CLIP (no head)")
    for r in means.itertuples():
        ax.annotate(r.variant, (r.cab, r.vqa_accuracy), fontsize=7, xytext=(4, 3), textcoords="offset points")
    ax.axhline(1 / len(vqa_train.palette), color="grey", lw=1, ls=":", label="chance")
    rhos = ", ".join(f"{r:+.2f}" for r in head_series["C4.spearman_cab_vqa"])
    ax.set(xlabel="CAB on natural-colour probes", ylabel="VQA accuracy (held-out two-object scenes)",
           title=f"{vqa_model}: small dots = head seeds, big = seed means\nρ(CAB, VQA) per seed: {rhos}")
    ax.legend(fontsize=7)
    art.save_figure(fig, "cab_vs_vqa")
    plt.show()
    display(sweep.pivot(index="variant", columns="seed", values=["vqa_accuracy", "cab"]).round(3))

# %% [markdown]
# ## 5. Metrics and verdicts
# Each claim statistic is logged per replicate (`KEY.r0 …`, and `KEY` = their mean) and scored over replicates
# by the rule in `replications/REPORT.md`. How the checks came to be: they were first written from the paper's
# claims before any default-scale run; they were then revised (issue 22), after earlier default-scale runs had
# been seen, to score each statistic over replicates (zoo CLIPs, head seeds) instead of one run's bootstrap
# CIs; each revision is recorded under `revised:` in `claims.yaml`. At smoke scale the models are barely
# trained and only two replicates run, so the verdicts there only show that the pipeline is wired.

# %%
if real:
    for r in per_model.itertuples():
        for metric in ca.METRICS:
            metrics[f"model.{r.model.replace('-', '_')}.{r.condition}.{metric}"] = getattr(r, metric)
    art.log_metrics(metrics)
    singles = scored[scored.kind == "single"]
    scope = Scope("concept_association_bias", model, pretrained, loaded_real.source, real_opts.resolved_device,
                  smoke, data=real_opts.data(), replicates=f"{folds} disjoint folds of the probe pairs",
                  sizes={"photos": len(photos), "objects": photos.object.nunique(),
                         "colours": photos.colour.nunique(), "probe pairs": n_pairs})
    scope.not_testable(["C2"], "needs the association strength of each object and colour in the model's "
                       "pretraining captions")
    scope.not_testable(["C4"], "needs VQA heads trained on the model; this notebook trains them on zoo CLIPs only")
    if "natural" not in set(photos.get("condition", [])):
        scope.not_testable(["C1"], "needs photos of objects in their typical colours, labelled 'natural' "
                           "(a CSV with a condition column)")
    # competence: the colour of one object alone, against chance over the palette
    if scope.guard(competence(int((singles.predicted == singles.query_colour).sum()), len(singles),
                               photos.colour.nunique()), ["C1"], force=score_incompetent):
        if "C1" not in scope.untestable:
            art.log_replicates(ca.fold_series(scored, folds))
    verdicts = check_claims(paths.claims_path(paths.project_root(), "concept_association_bias"), art.metrics,
                            smoke=smoke, untestable=scope.untestable)
    scope.write(art.out_dir)
    display(results_table(verdicts))
else:
    art.log_replicates(ca.model_series(scored, per_pair, series_models))
    art.log_metrics(ca.model_metrics(scored, per_pair, list(zoo)))
    art.log_metrics({"C1.n_models": float(len(series_models)), "C2.n_models": float(len(series_models))})
    art.log_replicates(head_series)
    art.log_metrics(ca.head_summary(sweep) | {"C4.cab_clip": clip_cab, "C4.vqa_clip": clip_vqa})
    verdicts = check_claims(paths.claims_path(paths.project_root(), "concept_association_bias"), art.metrics,
                            smoke=smoke)
    display(results_table(verdicts))

# %% [markdown]
# ## 6. How to read the verdicts
#
# The list below the next cell is rendered from this run's metrics. What it means:
#
# * **C1** is read on natural-colour pairs. A model that names each object's colour alone but answers with the
#   *other* object's colour when both are shown is the paper's "bag of concepts": the colour is bound to the
#   name, not to the position. A low third-colour rate rules out plain confusion among colours. Compare our
#   numbers with the paper's as a mechanism, not as a level: these are 4.6–7.9 M parameter CLIPs on a
#   procedural world, not a web-scale CLIP. Each zoo CLIP of the series is one replicate (world and model seed).
# * **C2.** Where the names carry no colour (weak concepts) or the shown colours contradict the names
#   (unnatural), there is no association to lean on, and the card's reading predicts answers split between
#   the two colours shown (Two close to Two\*). Each model's Spearman ρ with association strength mostly
#   restates the contrast between conditions: natural pairs have both high association and high CAB, weak and
#   unnatural pairs low of both, while inside the natural condition the strengths span only 0.8 to 1.0 (the
#   world's design). So the data can support the claim's contrast — strong when associated, absent when weak —
#   not a graded dose–response.
# * **C4.** The paper's variants A–E are not documented (card §2), and a ranking among heads whose CAB differs
#   by a few points moves with the head's seed: a single seed's ρ is not a measurement (an earlier zoo CLIP
#   of the same recipe ranked the heads differently). So C4 is scored over head seeds, each seed's ρ over all
#   variants, on one zoo CLIP (`vqa_model`). The claim's first half (a VQA head on top of CLIP lowers CAB) and
#   its monotonicity over our five variants are read separately below.
# * **C3, C5** are not testable here (no autoregressive captioner in the zoo; no Rel3D part–whole task).

# %%
if not real:
    display(Markdown(narrative.reading(art.metrics, verdicts, extra_models=[m for m in zoo if m not in models])))

# %%
print(pd.Series(art.metrics).sort_index().round(4).to_string())
print(f"wall time {time.perf_counter() - t_start:.1f} s")
art.write_metrics()
