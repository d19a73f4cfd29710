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
# # Sharpness vs generalization, and sharpness along CLIP weight interpolation — CPU replication
#
# **Papers.** (A) Andriushchenko, Croce, Müller, Hein, Flammarion. *A Modern Look at the Relationship between
# Sharpness and Generalization.* ICML 2023 (arXiv 2302.07011), notes `docs/papers/sharpness_vs_generalization.md`.
# (B) Abdollahpoorrostam. *In Search of the Successful Interpolation: On the Role of Sharpness in CLIP
# Generalization.* arXiv 2410.16476, notes `docs/papers/sharpness_in_clip_interpolation.md`.
# Library: `cliplab.sharpness` (the measures), `cliplab.sharpness.analysis` (τ per factor),
# `cliplab.sharpness.zoo` (Part A), `cliplab.sharpness.interpolation` (Part B), `cliplab.sharpness.diagonal_nets`,
# `cliplab.sharpness.separable_toy`.
#
# **Claims tested** (`replications/sharpness/claims.yaml`):
# - **A-C1** sharpness correlates poorly with generalization but well with training parameters (learning rate).
# - **A-C2** sharpness can correlate *negatively* with OOD error.
# - **A-C3** diagonal linear networks: the right sharpness measure is data-dependent (sign of τ).
# - **A-C4** without logit normalisation sharpness depends on the logit scale; normalising removes it.
# - **A-C5** BERT/MNLI — not testable here.
# - **B-W1** WiSE-FT premise: an interior α beats both endpoints out of distribution, ID stays high.
# - **B-C1** whole-model sharpness along the interpolation does not predict OOD accuracy.
# - **B-C2** the sharpness of "straggler" layers does track OOD accuracy.
# - **B-C3** sparsifying the straggler layers' task vector mitigates the failure mode (no OOD gain).
#
# **Reproduce:** `cliplab run sharpness` (smoke check: `cliplab run sharpness --smoke`).
#
# **Runtime:** `make bench` measures it on the machine at hand (the README's table of targets); the last cell prints this
# run's wall time. The zoo is trained once, before the first run, by `cliplab zoo train`.
#
# Choices the papers leave open are stated where they are made (module docstrings have the full list). The
# biggest: Part A's zoo is 48 two-hidden-layer MLPs on 16 px world images (not ResNets/ViTs on CIFAR/ImageNet);
# each sharpness definition uses one calibrated ρ, N = 256 points, 5 ascent steps / 10 noise draws; Part B
# fine-tunes a zoo CLIP (ModifiedResNet, 32 px) with a zero-shot head on 16 world concepts, and stragglers
# are the layers that moved most (drift) — the paper's own definition is not public.

# %% tags=["parameters"]
smoke: bool = False  # shrink everything for a fast CI check
seed: int = 0  # root seed: world of Part A's task, model seeds, sharpness noise, bootstrap
zoo_arch: str = "mlp"  # Part A architecture: "mlp" (batched training) or "cnn"
zoo_width: int = 16  # MLP hidden units: 8 × width; CNN channels: width and 2 × width
zoo_epochs: int = 15  # SGD epochs per zoo model
zoo_classes: int = 16  # world concepts in Part A's task
zoo_train_per_class: int = 100  # training images per concept (clean domain)
lrs: list[float] = [0.003, 0.01, 0.03]  # learning-rate levels (SGD, momentum 0.9, constant)
batch_sizes: list[int] = [32, 128]  # batch-size levels
weight_decays: list[float] = [0.0, 0.001]  # weight-decay levels
augments: list[int] = [0, 1]  # augmentation off/on (flip + 2 px translation)
label_noises: list[float] = [0.0, 0.2]  # label-noise levels (fraction of training labels replaced)
sharp_n_examples: int = 256  # N: first training points used for sharpness
sharp_m: int = 128  # m: batch size of m-sharpness
sharp_iters: int = 5  # worst-case ascent steps
sharp_samples: int = 10  # average-case noise draws per batch
n_bootstrap: int = 1000  # bootstrap resamples of models for τ CIs
diag_nets: int = 50  # diagonal linear networks in the C3 population
clip_model: str = "tiny-s0"  # Part B: zoo model name, or an open_clip architecture (with clip_pretrained)
clip_pretrained: str = ""  # open_clip pretrained tag or checkpoint path; empty: clip_model is a zoo name
train_dir: str = ""  # real path: folder <class>/*.png for fine-tuning (empty: the world task)
test_dir: str = ""  # real path: ID test folder
ood_dirs: list[str] = []  # real path: OOD test folders (same classes)
ft_classes: int = 16  # world concepts of the downstream task (evenly spaced in frequency rank)
ft_train_per_class: int = 60  # fine-tuning images per concept
ft_eval_per_class: int = 20  # ID and per-shift OOD test images per concept
ft_seeds: list[int] = [0, 1, 2]  # fine-tuning seeds (one path each; the card asks for ≥ 3)
ft_steps: int = 150  # AdamW steps
ft_lr: float = 0.001  # AdamW learning rate
ft_batch_size: int = 64  # fine-tuning batch size
path_rho: float = 0.004  # ρ of layer-wise adaptive worst-case L∞ sharpness along the path
path_n_examples: int = 64  # N for sharpness along the path (one batch)
path_iters: int = 3  # ascent steps along the path
n_stragglers: int = 2  # straggler layers: the n groups with the largest drift
keep_fractions: list[float] = [0.1, 0.3, 0.5]  # task-vector fractions kept in straggler layers
claim_keep: float = 0.3  # the keep fraction claim B-C3 is read at (must be in keep_fractions)
alpha_step: float = 0.1  # spacing of the α grid from 0 to 1 (WiSE-FT: 0.1)
out_dir: str = ""  # where metrics.json and figures/ go; empty means a scratch folder; set by the runner

# %%
import time
import warnings

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from IPython.display import Markdown, display

from cliplab import plots
from cliplab.core import paths
from cliplab.sharpness import interpolation as ip
from cliplab.sharpness import zoo as sz
from cliplab.core.artifacts import Artifacts
from cliplab.core.claims import check_claims, results_table
from cliplab.sharpness import narrative
from cliplab.sharpness.diagonal_nets import DiagonalNetsConfig, diagonal_net_population
from cliplab.sharpness.separable_toy import make_separable_toy, scale_curve
from cliplab.sharpness.measures import SharpnessConfig
from cliplab.stats import kendall_tau

warnings.filterwarnings("ignore", message="There is a performance drop")
plots.use_style()
art = Artifacts.for_notebook("sharpness", out_dir)
t_start = time.perf_counter()

if smoke:
    zoo_classes, zoo_train_per_class, zoo_epochs = 8, 40, 4
    lrs, batch_sizes, weight_decays, augments, label_noises = [0.01, 0.03], [32, 64], [0.0], [0], [0.0]
    sharp_n_examples, sharp_m, sharp_iters, sharp_samples, n_bootstrap, diag_nets = 64, 64, 2, 4, 100, 6
    ft_classes, ft_train_per_class, ft_eval_per_class, ft_seeds, ft_steps = 8, 8, 4, [0], 6
    path_n_examples, path_iters, keep_fractions, alpha_step = 32, 1, [0.3], 0.5
if claim_keep not in keep_fractions:
    raise ValueError(f"claim_keep={claim_keep} must be one of keep_fractions={keep_fractions}")
timings = {}
alphas = [round(float(a), 6) for a in np.linspace(0.0, 1.0, int(round(1 / alpha_step)) + 1)]

# %% [markdown]
# ## Part A — 1. The zoo
# A full factorial over learning rate × batch size × weight decay × augmentation × label noise; every model
# has its own seed (init, data order, noise draws). The task: single-object images of world concepts (clean
# domain, 16 px); OOD error is the mean over the held-out textured, sketch and noisy domains.

# %%
t0 = time.perf_counter()
task = sz.ZooTask(world_seed=seed, n_classes=zoo_classes, n_train_per_class=zoo_train_per_class)
data = sz.make_task_data(task)
specs = sz.factor_grid(lrs, batch_sizes, weight_decays, [bool(a) for a in augments], label_noises, seed=seed,
                       arch=zoo_arch, width=zoo_width, epochs=zoo_epochs)
definitions = sz.sharpness_definitions(n_examples=sharp_n_examples, m=sharp_m, n_iters=sharp_iters,
                                       n_samples=sharp_samples)
run = sz.run_zoo(specs, data, definitions, sharpness_seed=seed, keep_models=True, progress=False)
zoo = run.table
timings["zoo"] = time.perf_counter() - t0
defs = list(definitions)
art.log_metrics({"A.zoo.n_models": len(zoo), "A.zoo.mean_test_error": zoo.test_error.mean(),
                 "A.zoo.mean_ood_error": zoo.ood_error.mean(), "A.zoo.mean_train_error": zoo.train_error.mean()})
display(Markdown(f"{len(zoo)} models; training {run.train_seconds:.1f} s, sharpness of {len(defs)} definitions "
                 f"{run.sharpness_seconds:.1f} s ({run.sharpness_seconds / len(zoo):.2f} s per model)."))
zoo.groupby("lr")[["train_error", "test_error", "gap", "ood_error", sz.HEADLINE]].mean().round(4)

# %% [markdown]
# ## 2. Sharpness vs test error
# Each point is a model; colour = learning rate. If sharpness predicted generalization the points would line
# up; if it mostly encodes the learning rate, the colours separate along the sharpness axis instead.

# %%
fig, axes = plt.subplots(1, 3, figsize=(16, 4.5))
for ax, target in zip(axes, sz.TARGETS):
    sns.scatterplot(zoo, x=sz.HEADLINE, y=target, hue="lr", style="batch_size", palette="viridis", ax=ax)
    ax.set(xlabel="adaptive worst-case L∞ sharpness (logit-normalised)", ylabel=target.replace("_", " "),
           title=f"τ = {kendall_tau(zoo[sz.HEADLINE], zoo[target]):+.2f}")
art.save_figure(fig, "sharpness_vs_error")
plt.show()

# %% [markdown]
# ## 3. Kendall τ of every definition with the targets and the hyperparameters
# Rows: the card's 16 variants ({worst, average} × {L∞, L2} × {adaptive, standard} × {normalised, raw}).

# %%
taus = sz.tau_table(zoo, defs, [*sz.TARGETS, *sz.FACTORS])
fig, ax = plt.subplots(figsize=(10, 7))
sns.heatmap(taus, annot=True, fmt="+.2f", cmap="RdBu_r", vmin=-1, vmax=1, ax=ax)
ax.set(title="Kendall τ(sharpness, column) over the zoo", xlabel="", ylabel="")
art.save_figure(fig, "tau_heatmap")
plt.show()

s_head = zoo[sz.HEADLINE].to_numpy()
for key, col in (("A.C1.tau_test_error", "test_error"), ("A.C1.tau_gap", "gap"), ("A.C2.tau_ood_error", "ood_error")):
    lo, hi = sz.bootstrap_tau(s_head, zoo[col].to_numpy(), n_resamples=n_bootstrap, seed=seed)
    art.log_metrics({key: taus.loc[sz.HEADLINE, col], f"{key}_ci_low": lo, f"{key}_ci_high": hi})
art.log_metrics({
    "A.C1.tau_lr": taus.loc[sz.HEADLINE, "lr"], "A.C1.tau_batch_size": taus.loc[sz.HEADLINE, "batch_size"],
    "A.C1.max_abs_tau_test_error": taus["test_error"].abs().max(),
    "A.C1.median_abs_tau_test_error": taus["test_error"].abs().median(),
    "A.C1.median_abs_tau_lr": taus["lr"].abs().median(),
    "A.C2.frac_defs_negative_ood": float((taus["ood_error"] < 0).mean()),
})
for d in defs:
    art.log_metrics({f"A.tau.{d}.{c}": v for c, v in taus.loc[d].items() if np.isfinite(v)})
taus.round(2)

# %% [markdown]
# ## 4. Per-factor breakdown
# τ within groups of models that differ in one factor only (all others fixed), averaged over groups
# (`sharpness_analysis.tau_by_factor`). The card's point: the sign can differ between factors, so a
# population-level τ depends on which factors happen to vary.

# %%
breakdown = sz.factor_breakdown(zoo, [sz.HEADLINE, "average_l2_adaptive_norm"], sz.TARGETS)
pivot = breakdown.pivot_table(index=["definition", "target"], columns="factor", values="tau")
for _, r in breakdown[breakdown.definition == sz.HEADLINE].iterrows():
    if np.isfinite(r.tau):
        art.log_metrics({f"A.factor.{r.target}.{r.factor}": r.tau})
pivot.round(2)

# %% [markdown]
# ## 5. Scale dependence (A-C4)
# (a) The card's linear separable toy (closed-form m = 1 worst case, radius ρ set to 0.5 × ‖w‖): sharpness of
# α·w over α ∈ [2⁻¹⁰, 2¹⁰], raw and with normalised logits. (b) A trained zoo model whose last layer is
# multiplied by α (its logits scale by α): adaptive worst-case L∞ sharpness, raw vs normalised.

# %%
toy = make_separable_toy(legacy_rng=True)
curve_raw = scale_curve(toy, rho=0.5, definition="norm", normalize_logits=False)
curve_norm = scale_curve(toy, rho=0.5, definition="norm", normalize_logits=True)
scales = [0.25, 1.0, 4.0, 16.0]
y0 = sz.noisy_labels(data.y_train, specs[0].label_noise, data.n_classes, seed=10_000 + specs[0].seed)
with sz.single_threaded():
    head = sz.rescaled_head_sharpness(run.models[0], data.x_train, y0, definitions[sz.HEADLINE], scales, seed=seed)
fig, axes = plt.subplots(1, 2, figsize=(12, 4))
axes[0].plot(curve_raw.alpha, curve_raw.sharpness, "o-", label="raw logits")
axes[0].plot(curve_norm.alpha, curve_norm.sharpness, "s-", label="normalised logits")
axes[0].set(xscale="log", xlabel="weight scale α", ylabel="worst-case sharpness (m = 1)", title="linear toy")
axes[0].legend()
sns.lineplot(head, x="scale", y="loss_sharpness", hue="normalize_logits", marker="o", ax=axes[1])
axes[1].set(xscale="log", xlabel="last-layer scale α", title="zoo model 0, adaptive worst-case L∞")
art.save_figure(fig, "scale_dependence")
plt.show()


def nearest(curve: pd.DataFrame, a: float) -> float:
    return float(curve.iloc[(curve.alpha - a).abs().argmin()].sharpness)


h_norm = head[head.normalize_logits].loss_sharpness.to_numpy()
h_raw = head[~head.normalize_logits].loss_sharpness.to_numpy()
art.log_metrics({
    "A.C4.toy_sharpness_a0_12": nearest(curve_raw, 0.12), "A.C4.toy_sharpness_a1_27": nearest(curve_raw, 1.27),
    "A.C4.toy_sharpness_a13_9": nearest(curve_raw, 13.9), "A.C4.toy_sharpness_peak": curve_raw.sharpness.max(),
    "A.C4.toy_sharpness_alpha_max": float(curve_raw.sharpness.iloc[-1]),
    "A.C4.toy_norm_range": float(np.ptp(curve_norm.sharpness)),
    "A.C4.zoo_norm_rel_range": float(np.ptp(h_norm) / max(abs(h_norm.mean()), 1e-12)),
    "A.C4.zoo_raw_rel_range": float(np.ptp(h_raw) / max(abs(h_raw.mean()), 1e-12)),
})
head.pivot(index="scale", columns="normalize_logits", values="loss_sharpness")

# %% [markdown]
# ## 6. Diagonal linear networks (A-C3)
# y = ⟨u⊙v, x⟩ on 90 %-sparse regression with d = 200 > n = 100; the networks differ in initialisation scale,
# which moves the interpolator from sparse (generalises) to dense (does not). For τ(adaptive worst-case, gap)
# the card quotes a third-party re-run's ≈ −0.69: sharper nets generalise *better* here.

# %%
t0 = time.perf_counter()
diag = diagonal_net_population(DiagonalNetsConfig(n_nets=diag_nets, seed=seed))
timings["diag"] = time.perf_counter() - t0
diag_cols = ["worst_l2_adaptive", "worst_l2_standard", "average_l2_adaptive"]
diag_tau = {c: kendall_tau(diag[c], diag.gap) for c in diag_cols}
art.log_metrics({f"A.C3.tau_{c}_gap": v for c, v in diag_tau.items()})
art.log_metrics({"A.C3.frac_converged": diag.converged.mean()})
fig, ax = plt.subplots(figsize=(6, 4))
sns.scatterplot(diag, x="worst_l2_adaptive", y="gap", hue=np.log10(diag.alpha), palette="viridis", ax=ax)
ax.set(xscale="log", yscale="log", title="diagonal nets (hue: log10 init scale)")
art.save_figure(fig, "diagonal_nets")
plt.show()
pd.Series(diag_tau).round(3)

# %% [markdown]
# ## Part B — 7. Fine-tuning a zoo CLIP and interpolating (WiSE-FT)
# The downstream task: `ft_classes` world concepts spread evenly over frequency rank (so zero-shot accuracy
# is not saturated), clean natural-colour images; OOD shifts: uniform colours (breaks the concept–colour
# correlation), noisy, textured and sketch domains. With `train_dir`/`test_dir`/`ood_dirs` (and an open_clip
# model + `clip_pretrained`) the same functions run on real image folders.

# %%
from cliplab.models import load_model
from cliplab.zoo import colour_templates, zoo_model
from cliplab.eval import DEFAULT_TEMPLATES

t0 = time.perf_counter()
with sz.single_threaded():
    if clip_pretrained:
        loaded, world = load_model(clip_model, clip_pretrained), None
    else:
        zm = zoo_model(clip_model, smoke=smoke)
        loaded, world = zm.loaded, zm.world
    if train_dir:
        ft_data = ip.folder_task(loaded, train_dir, test_dir, ood_dirs)
        templates = list(DEFAULT_TEMPLATES)
    else:
        if world is None:
            raise ValueError("an open_clip model with clip_pretrained needs train_dir/test_dir/ood_dirs")
        ranked = zm.concepts[~zm.concepts.heldout].sort_values("frequency_rank").concept.tolist()
        step = max(1, len(ranked) // ft_classes)
        concepts = ranked[::step][:ft_classes]
        ft_data = ip.world_task(loaded, world, concepts, ft_train_per_class, ft_eval_per_class, ft_eval_per_class)
        templates = colour_templates(world.palette)
    base = ip.zero_shot_classifier(loaded, ft_data.classnames, templates)
    layer_cfg = SharpnessConfig(kind="worst", norm="linf", adaptive=True, rho=path_rho, n_iters=path_iters,
                                m=path_n_examples, n_examples=path_n_examples)
    full_cfgs = {sz.HEADLINE: layer_cfg,
                 "average_l2_adaptive_norm": SharpnessConfig(kind="average", norm="l2", adaptive=True, rho=0.2,
                                                             n_samples=10, m=path_n_examples,
                                                             n_examples=path_n_examples)}
    paths_ = [ip.run_path(base, ft_data, s, steps=ft_steps, batch_size=ft_batch_size, lr=ft_lr, weight_decay=0.1,
                          alphas=alphas, layer_config=layer_cfg, full_configs=full_cfgs,
                          n_stragglers=n_stragglers, keep_fractions=keep_fractions, sharpness_seed=seed)
              for s in ft_seeds]
timings["clip"] = time.perf_counter() - t0
acc = pd.concat([p.accuracy.assign(seed=p.seed) for p in paths_], ignore_index=True)
ood_cols = [c for c in acc.columns if c.startswith("ood_acc_")]
fig, ax = plt.subplots(figsize=(8, 4.5))
sns.lineplot(acc, x="alpha", y="id_acc", marker="o", label="ID (clean)", ax=ax, errorbar=("pi", 100))
sns.lineplot(acc, x="alpha", y="ood_acc", marker="s", label="OOD (mean of shifts)", ax=ax, errorbar=("pi", 100))
for c in ood_cols:
    sns.lineplot(acc, x="alpha", y=c, ls=":", label=c.removeprefix("ood_acc_"), ax=ax, errorbar=None)
ax.set(xlabel="α (0 = zero-shot, 1 = fine-tuned)", ylabel="top-1 accuracy", title="WiSE-FT path (band: seeds)")
ax.legend(fontsize=8, ncol=2)
art.save_figure(fig, "accuracy_vs_alpha")
plt.show()

gains, id_drops = [], []
for p in paths_:
    c = p.accuracy.sort_values("alpha")
    gains.append(ip.interior_gain(c))
    best = c.iloc[1:-1].ood_acc.idxmax()
    id_drops.append(float(c.id_acc.max() - c.loc[best, "id_acc"]))
art.log_metrics({"B.W1.ood_interior_gain": np.mean(gains), "B.W1.id_drop_at_best": np.mean(id_drops),
                 "B.W1.id_acc_zero_shot": acc[acc.alpha == 0].id_acc.mean(),
                 "B.W1.id_acc_finetuned": acc[acc.alpha == 1].id_acc.mean(),
                 "B.W1.ood_acc_zero_shot": acc[acc.alpha == 0].ood_acc.mean(),
                 "B.W1.ood_acc_finetuned": acc[acc.alpha == 1].ood_acc.mean()})
acc.groupby("alpha")[["id_acc", "ood_acc", *ood_cols]].mean().round(3)

# %% [markdown]
# ## 8. Layer-wise sharpness along α, stragglers and τ (B-C1, B-C2)
# Layer-wise adaptive worst-case L∞ sharpness (δ restricted to one layer group) at every α, first
# fine-tuning seed, on `path_n_examples` training points from one seeded shuffle (the task's images come grouped
# by class); stragglers = the `n_stragglers` groups with the largest drift ‖θ_ft,l − θ_zs,l‖/‖θ_zs,l‖. As the
# card's protocol asks, τ with OOD accuracy is taken for the whole model and for each layer on its own; the
# straggler measure is the mean |τ| of the straggler layers (`straggler_abs`), compared with |τ| of the whole model.

# %%
p0 = paths_[0]
layer_map = (p0.sharpness[p0.sharpness.group != "all"]
             .pivot(index="group", columns="alpha", values="loss_sharpness"))
layer_map = layer_map.loc[[g for g in p0.drift.group if g in layer_map.index]]
fig, ax = plt.subplots(figsize=(11, 4.5))
sns.heatmap(layer_map, annot=True, fmt=".3f", cmap="mako", ax=ax, annot_kws={"fontsize": 7})
ax.set_yticklabels([f"{g}{' ★' if g in p0.stragglers else ''}" for g in layer_map.index], rotation=0)
ax.set(title="layer-wise sharpness (★ = straggler by drift)", xlabel="α", ylabel="")
art.save_figure(fig, "layer_sharpness_heatmap")
plt.show()

tau_df = pd.DataFrame([{"seed": p.seed, **p.taus} for p in paths_])
mean_tau = tau_df.drop(columns="seed").mean()
fig, ax = plt.subplots(figsize=(9, 4))
order = mean_tau.index.tolist()
sns.barplot(tau_df.melt(id_vars="seed", var_name="measure", value_name="tau"), x="tau", y="measure", order=order,
            ax=ax, errorbar=("pi", 100))
ax.axvline(0, color="grey", lw=1)
ax.set(xlabel="Kendall τ(sharpness(α), mean OOD accuracy(α)) over α", ylabel="", title="τ comparison")
art.save_figure(fig, "tau_comparison")
plt.show()

art.log_metrics({"B.C1.tau_full": mean_tau[f"full.{sz.HEADLINE}"],
                 "B.C1.tau_full_average_l2": mean_tau["full.average_l2_adaptive_norm"],
                 "B.C1.tau_full_min": tau_df[f"full.{sz.HEADLINE}"].min(),
                 "B.C1.tau_full_max": tau_df[f"full.{sz.HEADLINE}"].max(),
                 "B.C1.abs_tau_full": tau_df[f"full.{sz.HEADLINE}"].abs().mean(),
                 "B.C1.n_flat_paths": ip.n_flat(paths_, sz.HEADLINE),
                 "B.C2.abs_tau_straggler": mean_tau["straggler_abs"],
                 "B.C2.abs_tau_straggler_min": tau_df["straggler_abs"].min(),
                 "B.C2.abs_tau_straggler_max": tau_df["straggler_abs"].max(),
                 "B.C2.max_abs_tau_layer": mean_tau[[i for i in mean_tau.index if i.startswith("layer.")]].abs().max(),
                 "B.n_seeds": len(paths_)})
display(p0.drift.merge(p0.barriers, on="group").round(4))
display(Markdown(f"Stragglers per seed: {[p.stragglers for p in paths_]}"))
tau_df.round(3)

# %% [markdown]
# ## 9. Sparsifying the straggler task vector (B-C3)
# In the straggler groups only the largest-|τ| fraction `keep` of the task vector survives:
# θ_α = θ_zs + α·(M ⊙ τ) there, unchanged elsewhere. Compared with the dense path.

# %%
sparse = pd.concat([p.sparse.assign(seed=p.seed) for p in paths_], ignore_index=True)
fig, ax = plt.subplots(figsize=(8, 4.5))
sns.lineplot(acc, x="alpha", y="ood_acc", marker="o", label="dense", ax=ax, errorbar=None, color="black")
for keep in keep_fractions:
    sns.lineplot(sparse[sparse.keep == keep], x="alpha", y="ood_acc", marker=".", label=f"keep {keep:.0%}",
                 ax=ax, errorbar=None)
ax.set(xlabel="α", ylabel="mean OOD accuracy", title="straggler task-vector sparsity")
art.save_figure(fig, "sparsity_ood")
plt.show()
for keep in keep_fractions:
    g = np.mean([ip.interior_gain(p.sparse[p.sparse.keep == keep]) for p in paths_])
    art.log_metrics({f"B.C3.gain_keep{int(round(keep * 100))}": g})
art.log_metrics({
    "B.C3.gain_dense": np.mean(gains),
    "B.C3.gain_sparse": np.mean([ip.interior_gain(p.sparse[p.sparse.keep == claim_keep]) for p in paths_]),
    "B.C3.sparse_gain_over_dense_ends": np.mean([ip.gain_over_endpoints(p.sparse[p.sparse.keep == claim_keep],
                                                                        p.accuracy) for p in paths_]),
    "B.C3.best_ood_dense": acc.groupby("alpha").ood_acc.mean().max(),
    "B.C3.best_ood_sparse": sparse[sparse.keep == claim_keep].groupby("alpha").ood_acc.mean().max(),
    "B.C3.claim_keep": claim_keep,
})
sparse.groupby(["keep", "alpha"]).ood_acc.mean().unstack(0).round(3)

# %% [markdown]
# ## 10. Verdicts
# Checks in `claims.yaml` were written from the papers' claims before the default run. At smoke scale the
# numbers only show the pipeline is wired.

# %%
verdicts = check_claims(paths.claims_path(paths.project_root(), "sharpness"), art.metrics)
display(results_table(verdicts))

# %% [markdown]
# ## 11. How to read the verdicts
#
# The list below the next cell is rendered from this run's metrics. What it means:
#
# * **A-C1.** The claim has two halves: sharpness correlates weakly with test error, and more with training
#   parameters *such as the learning rate*. In this zoo sharpness can track batch size and label noise more than
#   the learning rate (see the heatmap's hyperparameter columns). Tiny MLPs trained 15 epochs at a constant rate
#   underfit, so the learning rate mostly changes *how far* training got rather than which minimum it settled
#   in — the edge-of-stability mechanism behind the paper's lr effect needs converged models. The per-factor
#   table shows the paper's deeper point directly: within single factors τ(sharpness, test error) can take both
#   signs, so a population-level τ depends on which factors happen to vary.
# * **A-C2.** The check asks for a consistently negative τ with OOD error: its bootstrap CI over the zoo's
#   models must lie below 0. A negative sign whose CI includes 0 agrees with the paper but does not resolve it;
#   the zoo is small and the OOD domains are far from the training domain.
# * **A-C3.** Diagonal networks differ only in initialisation scale here (the card marks the varied quantity as
#   uncertain); the sign of τ is the comparable quantity, not its magnitude.
# * **A-C4.** The toy curve is the released notebook's recipe and numbers; on the zoo model only the last layer
#   is rescaled, so the logits scale exactly by α and normalised adaptive sharpness must not move.
# * **Part B in general.** Everything about Part B's method is reconstructed (no code or numbers were
#   released); the backbone is a 4.6M-parameter CLIP (3.0M in its image tower) trained on 50k procedural
#   captions. WiSE-FT's premise is a zero-shot endpoint more robust than the fine-tuned one; where it does not
#   hold, OOD accuracy rises toward α = 1 and no interior α can win. Along a path on which ID and OOD accuracy
#   are nearly monotone in α, a τ over 11 points is driven by the endpoints, so whole-model and per-layer
#   sharpness alike "track" OOD accuracy, and the contrast the paper draws — stragglers track, the whole model
#   does not — cannot show. The Part B verdicts are fragile: a zoo CLIP trained earlier by the same recipe (one
#   torch thread instead of two, which changes its last bits) gave other verdicts for B-C1 and B-C3, and every
#   measure is a τ over one near-monotone path per fine-tuning seed. The straggler τ is taken per layer (not on
#   the stragglers' averaged sharpness, where opposite trends cancel) and sharpness is measured on a
#   seeded shuffle of the class-grouped data (a class-mixed subset); both were fixed after an earlier run, and C2's
#   verdict moved with them.
# * **B-C3.** Keeping part of the straggler task vector can give a sparse path an interior gain over its *own*
#   ends only because its α = 1 end is weaker; that is not mitigation, which is why the check compares with the
#   dense path's endpoints.

# %%
display(Markdown(narrative.reading(art.metrics, verdicts)))

# %%
timings["total"] = time.perf_counter() - t_start
summary = pd.Series({k: v for k, v in art.metrics.items() if not k.startswith("A.tau.")}).sort_index()
print(summary.round(4).to_string())
print({k: round(v, 1) for k, v in timings.items()})
art.write_metrics()
