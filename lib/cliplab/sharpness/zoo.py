"""Part A of the sharpness replication: a zoo of small classifiers on the world, and how sharpness ranks them.

Andriushchenko et al. (ICML 2023) measure many sharpness definitions on populations of models that differ in
training hyperparameters and ask whether sharpness predicts test error, the generalization gap or OOD error
(``docs/papers/sharpness_vs_generalization.md`` §3). Here the population is trained on the procedural world:

* **Task** (:class:`ZooTask`): classify the single-object images of ``n_classes`` world concepts (the world's
  eval streams: split ``"val"`` for training, ``"test"`` for testing; clean domain), downsampled to 16 px by
  2×2 average pooling. OOD sets are the same concepts rendered in the held-out domains (textured, sketch,
  noisy) — the analogue of CIFAR-10-C. Inputs are standardised per channel with the clean training mean/std.
* **Models** (:class:`ModelSpec`): a small bias-carrying CNN (two 3×3 conv + ReLU + max-pool stages and a
  linear head) or a 2-hidden-layer ReLU MLP, trained from scratch by SGD with momentum 0.9 at a *constant*
  learning rate (the paper's CIFAR models use a cyclic schedule; a constant rate keeps the learning rate's
  imprint on the final minimum, which is the mechanism of claim C1). Factors: learning rate, batch size,
  weight decay, augmentation (per-sample random horizontal flip and translation by up to 2 px), label noise
  (that fraction of training labels replaced by a uniformly drawn *other* class) and the seed (init and data
  order).
* **Sharpness** (:func:`sharpness_definitions`): the card's table of variants, {average, worst} × {L2, L∞} ×
  {standard, adaptive} × {logit-normalised, raw}, each at one radius ρ (see ``DEFAULT_RHOS``), measured with
  ``cliplab.sharpness`` on the first N training points (with the labels the model was trained on, in a fixed
  shuffled order) in batches of m.

Everything runs on one torch thread (many tiny ops: a second thread only waits on a shared 2-core machine).
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from scipy import stats as sps
from torch import Tensor, nn
from tqdm.auto import tqdm

from cliplab.sharpness.measures import SharpnessConfig, sharpness
from cliplab.sharpness.analysis import tau_by_factor
from cliplab.stats import kendall_tau
from cliplab.core.threads import single_threaded

ARCHS: tuple[str, ...] = ("cnn", "mlp")
OOD_DOMAINS: tuple[str, ...] = ("textured", "sketch", "noisy")
FACTORS: tuple[str, ...] = ("lr", "batch_size", "weight_decay", "augment", "label_noise")
TARGETS: tuple[str, ...] = ("test_error", "gap", "ood_error")
HEADLINE = "worst_linf_adaptive_norm"
"""The definition the reference script names best (adaptive, logit-normalised, worst-case L∞)."""

# ρ per (kind, norm, adaptive), calibrated once on this zoo's CNNs on a ×2 grid so that the logit-normalised
# sharpness is neither ≈ 0 nor saturated (card §6: "recalibrate ρ for toy nets"); the same ρ is used raw.
DEFAULT_RHOS: dict[tuple[str, str, bool], float] = {
    ("average", "l2", False): 0.04,
    ("average", "l2", True): 0.4,
    ("average", "linf", False): 0.08,
    ("average", "linf", True): 0.8,
    ("worst", "l2", False): 0.125,
    ("worst", "l2", True): 1.0,
    ("worst", "linf", False): 0.001,
    ("worst", "linf", True): 0.008,
}




# ------------------------------------------------------------------------------------------------ the task


@dataclass(frozen=True)
class ZooTask:
    """The world classification task: which concepts, how many images, which OOD domains."""

    world_seed: int = 0
    n_classes: int = 16
    n_train_per_class: int = 100
    n_test_per_class: int = 30
    n_ood_per_class: int = 20
    downsample: int = 2
    ood_domains: tuple[str, ...] = OOD_DOMAINS

    def __post_init__(self) -> None:
        for name in ("n_classes", "n_train_per_class", "n_test_per_class", "n_ood_per_class", "downsample"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"ZooTask.{name} must be a positive integer, got {value!r}")
        if self.n_classes < 2:
            raise ValueError(f"n_classes must be ≥ 2, got {self.n_classes}")
        bad = [d for d in self.ood_domains if d not in OOD_DOMAINS]
        if bad:
            raise ValueError(f"ood_domains {bad} are not held-out world domains; choose from {list(OOD_DOMAINS)}")


@dataclass(frozen=True)
class TaskData:
    """Standardised image tensors (N, 3, H, W) and labels; ``ood`` maps domain → (x, y)."""

    x_train: Tensor
    y_train: Tensor
    x_test: Tensor
    y_test: Tensor
    ood: dict[str, tuple[Tensor, Tensor]]
    classnames: list[str]

    @property
    def n_classes(self) -> int:
        return len(self.classnames)


def _world_images(world: object, concepts: Sequence[int], per_class: int, split: str, domain: str,
                  downsample: int) -> tuple[Tensor, Tensor]:
    samples = world.eval_set(per_class, domain=domain, concepts=list(concepts), split=split)  # type: ignore[attr-defined]
    x = torch.from_numpy(np.stack([s.image for s in samples])).permute(0, 3, 1, 2).float() / 255.0
    if downsample > 1:
        x = F.avg_pool2d(x, downsample)
    position = {c: i for i, c in enumerate(concepts)}
    y = torch.tensor([position[int(s.meta["objects"][0]["concept"])] for s in samples])
    return x, y


def make_task_data(task: ZooTask) -> TaskData:
    """Render the task's images (deterministic in ``task.world_seed``) and standardise them.

    Classes are the first ``n_classes`` concepts of ``World(WorldConfig(seed=world_seed))`` that are not held
    out. The training set is shuffled once (seeded), so the first N points used for sharpness mix classes.
    """
    from cliplab.world import World, WorldConfig

    world = World(WorldConfig(seed=task.world_seed))
    concepts = [c.id for c in world.concepts if not c.heldout][: task.n_classes]
    if len(concepts) < task.n_classes:
        raise ValueError(f"the world has only {len(concepts)} non-held-out concepts; lower n_classes")
    x_train, y_train = _world_images(world, concepts, task.n_train_per_class, "val", "clean", task.downsample)
    order = torch.randperm(len(y_train), generator=torch.Generator().manual_seed(task.world_seed))
    x_train, y_train = x_train[order], y_train[order]
    x_test, y_test = _world_images(world, concepts, task.n_test_per_class, "test", "clean", task.downsample)
    mean = x_train.mean(dim=(0, 2, 3), keepdim=True)
    std = x_train.std(dim=(0, 2, 3), keepdim=True).clamp_min(1e-6)
    ood = {}
    for domain in task.ood_domains:
        x, y = _world_images(world, concepts, task.n_ood_per_class, "test", domain, task.downsample)
        ood[domain] = ((x - mean) / std, y)
    return TaskData((x_train - mean) / std, y_train, (x_test - mean) / std, y_test, ood,
                    [world.concept(c).name for c in concepts])


# ------------------------------------------------------------------------------------------------ the zoo


@dataclass(frozen=True)
class ModelSpec:
    """One zoo member: architecture and training hyperparameters (the factors) plus its seed."""

    lr: float = 0.01
    batch_size: int = 64
    weight_decay: float = 0.0
    augment: bool = False
    label_noise: float = 0.0
    seed: int = 0
    arch: str = "mlp"
    width: int = 16
    epochs: int = 15
    momentum: float = 0.9

    def __post_init__(self) -> None:
        if self.arch not in ARCHS:
            raise ValueError(f"arch must be one of {list(ARCHS)}, got {self.arch!r}")
        if not (self.lr > 0 and np.isfinite(self.lr)):
            raise ValueError(f"lr must be a positive finite number, got {self.lr!r}")
        if self.weight_decay < 0 or not 0 <= self.momentum < 1:
            raise ValueError(f"need weight_decay ≥ 0 and momentum in [0, 1), got {self.weight_decay}, {self.momentum}")
        if not 0.0 <= self.label_noise < 1.0:
            raise ValueError(f"label_noise must be in [0, 1), got {self.label_noise!r}")
        for name in ("batch_size", "width", "epochs"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")


def factor_grid(lrs: Sequence[float], batch_sizes: Sequence[int], weight_decays: Sequence[float],
                augments: Sequence[bool], label_noises: Sequence[float], replicates: int = 1, seed: int = 0,
                arch: str = "mlp", width: int = 16, epochs: int = 15) -> list[ModelSpec]:
    """The full factorial over the five factors, ``replicates`` times; every model gets its own seed.

    A full factorial is what the per-factor breakdown needs: for each factor, every combination of the other
    factors is a group of models that differ in that factor only. Seeds are ``seed, seed + 1, …`` in grid
    order, so the seed varies across the whole zoo (it is a nuisance, not a grouped factor).
    """
    levels = {"lr": lrs, "batch_size": batch_sizes, "weight_decay": weight_decays, "augment": augments,
              "label_noise": label_noises}
    for name, values in levels.items():
        if len(values) == 0:
            raise ValueError(f"factor {name!r} needs at least one level")
        if len(set(values)) != len(values):
            raise ValueError(f"factor {name!r} has repeated levels {list(values)}")
    if replicates < 1:
        raise ValueError(f"replicates must be ≥ 1, got {replicates}")
    specs = []
    for r in range(replicates):
        for lr, bs, wd, aug, noise in itertools.product(lrs, batch_sizes, weight_decays, augments, label_noises):
            specs.append(ModelSpec(lr=float(lr), batch_size=int(bs), weight_decay=float(wd), augment=bool(aug),
                                   label_noise=float(noise), seed=seed + len(specs), arch=arch, width=width,
                                   epochs=epochs))
    return specs


def build_model(spec: ModelSpec, n_classes: int, image_shape: tuple[int, int, int]) -> nn.Module:
    """A fresh CNN or MLP for ``spec`` (initialised from ``spec.seed`` without touching the global RNG)."""
    c, h, w = image_shape
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(spec.seed)
        if spec.arch == "cnn":
            k = spec.width
            return nn.Sequential(
                nn.Conv2d(c, k, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                nn.Conv2d(k, 2 * k, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                nn.Flatten(), nn.Linear(2 * k * (h // 4) * (w // 4), n_classes))
        k = 8 * spec.width
        return nn.Sequential(nn.Flatten(), nn.Linear(c * h * w, k), nn.ReLU(), nn.Linear(k, k), nn.ReLU(),
                             nn.Linear(k, n_classes))


def noisy_labels(y: Tensor, fraction: float, n_classes: int, seed: int) -> Tensor:
    """Replace round(fraction·N) labels, chosen at random, by a uniformly drawn *different* class."""
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"label-noise fraction must be in [0, 1), got {fraction}")
    gen = torch.Generator().manual_seed(seed)
    out = y.clone()
    k = int(round(fraction * len(y)))
    if k == 0:
        return out
    idx = torch.randperm(len(y), generator=gen)[:k]
    shift = torch.randint(1, n_classes, (k,), generator=gen)
    out[idx] = (y[idx] + shift) % n_classes
    return out


def augment_batch(x: Tensor, gen: torch.Generator, max_shift: int = 2) -> Tensor:
    """Per-sample random horizontal flip and translation by up to ``max_shift`` px (edge-replicate padding)."""
    n, _, h, w = x.shape
    flip = torch.rand(n, generator=gen) < 0.5
    x = torch.where(flip[:, None, None, None], x.flip(-1), x)
    padded = F.pad(x, (max_shift,) * 4, mode="replicate")
    dy = torch.randint(0, 2 * max_shift + 1, (n,), generator=gen)
    dx = torch.randint(0, 2 * max_shift + 1, (n,), generator=gen)
    rows = (torch.arange(h)[None, :] + dy[:, None])[:, :, None]
    cols = (torch.arange(w)[None, :] + dx[:, None])[:, None, :]
    return padded[torch.arange(n)[:, None, None], :, rows, cols].permute(0, 3, 1, 2)


def train_model(spec: ModelSpec, data: TaskData) -> tuple[nn.Module, Tensor]:
    """Train one zoo member by SGD (momentum, constant lr, weight decay); returns (model, training labels).

    ``torch.optim.SGD`` on the nn.Module; used for CNNs (MLPs go through the batched :func:`train_mlps`).
    """
    with single_threaded():
        return _train_model(spec, data)


def _train_model(spec: ModelSpec, data: TaskData) -> tuple[nn.Module, Tensor]:
    model = build_model(spec, data.n_classes, tuple(data.x_train.shape[1:]))  # type: ignore[arg-type]
    y_train = noisy_labels(data.y_train, spec.label_noise, data.n_classes, seed=10_000 + spec.seed)
    opt = torch.optim.SGD(model.parameters(), lr=spec.lr, momentum=spec.momentum, weight_decay=spec.weight_decay)
    gen = torch.Generator().manual_seed(spec.seed)
    n = len(y_train)
    model.train()
    for _ in range(spec.epochs):
        perm = torch.randperm(n, generator=gen)
        for start in range(0, n, spec.batch_size):
            idx = perm[start:start + spec.batch_size]
            x = data.x_train[idx]
            if spec.augment:
                x = augment_batch(x, gen)
            loss = F.cross_entropy(model(x), y_train[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    model.eval()
    return model, y_train


def train_mlps(specs: Sequence[ModelSpec], data: TaskData) -> list[tuple[nn.Module, Tensor]]:
    """Train MLP specs that share (width, epochs, batch_size) at once, as one stacked network (``torch.bmm``).

    Each model keeps its own init (``build_model``), label noise, data order and augmentation draws (its own
    generator, consumed exactly as :func:`train_model` would), and its own lr, weight decay and momentum in
    the same update as ``torch.optim.SGD``: g ← ∇ + wd·p; b ← μ·b + g (b = g on the first step); p ← p − lr·b.
    The loss is the sum of the models' mean losses, so each model's gradient is its own. Returns
    (nn.Sequential model, training labels) per spec, in order.
    """
    if not specs:
        raise ValueError("specs is empty")
    with single_threaded():
        return _train_mlps(specs, data)


def _train_mlps(specs: Sequence[ModelSpec], data: TaskData) -> list[tuple[nn.Module, Tensor]]:
    shape = {(s.arch, s.width, s.epochs, s.batch_size) for s in specs}
    if len(shape) != 1 or specs[0].arch != "mlp":
        raise ValueError(f"train_mlps needs MLP specs sharing width, epochs and batch size; got {sorted(shape)}")
    image_shape = tuple(data.x_train.shape[1:])
    modules = [build_model(s, data.n_classes, image_shape) for s in specs]  # type: ignore[arg-type]
    linears = [[mod for mod in m if isinstance(mod, nn.Linear)] for m in modules]
    weights = [torch.stack([ls[k].weight.detach().T for ls in linears]).requires_grad_(True) for k in range(3)]
    biases = [torch.stack([ls[k].bias.detach()[None, :] for ls in linears]).requires_grad_(True) for k in range(3)]
    params = weights + biases
    bufs: list[Tensor | None] = [None] * len(params)
    col = lambda values: torch.tensor(values, dtype=torch.float32)[:, None, None]  # noqa: E731
    lr, wd, mu = (col([getattr(s, a) for s in specs]) for a in ("lr", "weight_decay", "momentum"))
    labels = torch.stack([noisy_labels(data.y_train, s.label_noise, data.n_classes, seed=10_000 + s.seed)
                          for s in specs])
    gens = [torch.Generator().manual_seed(s.seed) for s in specs]
    n, bs, n_models = labels.shape[1], specs[0].batch_size, len(specs)
    rows = torch.arange(n_models)[:, None]
    for _ in range(specs[0].epochs):
        perms = torch.stack([torch.randperm(n, generator=g) for g in gens])
        for start in range(0, n, bs):
            idx = perms[:, start:start + bs]
            x = data.x_train[idx]
            for j, s in enumerate(specs):
                if s.augment:
                    x[j] = augment_batch(x[j], gens[j])
            h = x.flatten(2)
            for k in range(3):
                h = torch.baddbmm(biases[k], h, weights[k])
                if k < 2:
                    h = torch.relu(h)
            losses = F.cross_entropy(h.reshape(-1, h.shape[-1]), labels[rows, idx].reshape(-1), reduction="none")
            loss = losses.view(n_models, -1).mean(dim=1).sum()
            grads = torch.autograd.grad(loss, params)
            with torch.no_grad():
                for i, (p, g) in enumerate(zip(params, grads)):
                    g = g + wd * p
                    bufs[i] = g.clone() if bufs[i] is None else bufs[i].mul_(mu).add_(g)
                    p.sub_(lr * bufs[i])
    out = []
    with torch.no_grad():
        for j, (model, ls) in enumerate(zip(modules, linears)):
            for k, layer in enumerate(ls):
                layer.weight.copy_(weights[k][j].T)
                layer.bias.copy_(biases[k][j, 0])
            model.eval()
            out.append((model, labels[j].clone()))
    return out


def train_zoo(specs: Sequence[ModelSpec], data: TaskData) -> list[tuple[nn.Module, Tensor]]:
    """Train every spec: MLPs batched per (width, epochs, batch size) group, CNNs one by one; order kept."""
    results: list[tuple[nn.Module, Tensor] | None] = [None] * len(specs)
    groups: dict[tuple, list[int]] = {}
    for i, s in enumerate(specs):
        if s.arch == "mlp":
            groups.setdefault((s.width, s.epochs, s.batch_size), []).append(i)
        else:
            results[i] = train_model(s, data)
    for members in groups.values():
        for i, res in zip(members, train_mlps([specs[i] for i in members], data)):
            results[i] = res
    return [r for r in results if r is not None]


def error_rate(model: nn.Module, x: Tensor, y: Tensor, batch_size: int = 1024) -> float:
    """Top-1 error of ``model`` on (x, y), in eval mode without gradients."""
    model.eval()
    wrong = 0
    with torch.no_grad():
        for start in range(0, len(y), batch_size):
            wrong += int((model(x[start:start + batch_size]).argmax(-1) != y[start:start + batch_size]).sum())
    return wrong / len(y)


def evaluate_model(model: nn.Module, data: TaskData, y_train: Tensor) -> dict[str, float]:
    """train error (on the labels trained on), test error, gap = test − train, OOD error per domain and mean."""
    out = {"train_error": error_rate(model, data.x_train, y_train),
           "test_error": error_rate(model, data.x_test, data.y_test)}
    out["gap"] = out["test_error"] - out["train_error"]
    for domain, (x, y) in data.ood.items():
        out[f"ood_error_{domain}"] = error_rate(model, x, y)
    out["ood_error"] = float(np.mean([out[f"ood_error_{d}"] for d in data.ood])) if data.ood else float("nan")
    return out


# ------------------------------------------------------------------------------------------------ sharpness


def sharpness_definitions(n_examples: int = 256, m: int = 128, n_iters: int = 5, n_samples: int = 10,
                          rhos: dict[tuple[str, str, bool], float] | None = None,
                          normalize: Sequence[bool] = (True, False)) -> dict[str, SharpnessConfig]:
    """The card's table of variants: {average, worst} × {l2, linf} × {standard, adaptive} × {norm, raw}.

    Keys are ``SharpnessConfig.label`` (e.g. ``worst_linf_adaptive_norm``). ρ per (kind, norm, adaptive) from
    ``rhos`` (default ``DEFAULT_RHOS``). Few ascent steps and noise draws keep ≥ 40 models affordable on a CPU.
    """
    rhos = DEFAULT_RHOS if rhos is None else rhos
    defs = {}
    for kind, norm, adaptive, normalized in itertools.product(("worst", "average"), ("linf", "l2"), (True, False),
                                                              normalize):
        if (kind, norm, adaptive) not in rhos:
            raise ValueError(f"rhos lacks an entry for {(kind, norm, adaptive)}")
        cfg = SharpnessConfig(kind=kind, norm=norm, adaptive=adaptive, rho=rhos[(kind, norm, adaptive)],
                              n_iters=n_iters, n_samples=n_samples, m=m, n_examples=n_examples,
                              normalize_logits=normalized)
        defs[cfg.label] = cfg
    return defs


def measure_sharpness(model: nn.Module, x: Tensor, y: Tensor, definitions: dict[str, SharpnessConfig],
                      seed: int = 0) -> dict[str, float]:
    """Loss sharpness (``<label>``) and error sharpness (``<label>_err``) of ``model`` per definition."""
    out = {}
    for label, cfg in definitions.items():
        res = sharpness(model, (x, y), cfg, seed=seed)
        out[label] = res.loss_sharpness
        out[f"{label}_err"] = res.error_sharpness
    return out


@dataclass
class ZooRun:
    """The zoo's table (one row per model: factors, errors, sharpness per definition) and its timings."""

    table: pd.DataFrame
    definitions: dict[str, SharpnessConfig]
    train_seconds: float
    sharpness_seconds: float
    models: list[nn.Module] = field(default_factory=list, repr=False)


def run_zoo(specs: Sequence[ModelSpec], data: TaskData, definitions: dict[str, SharpnessConfig],
            sharpness_seed: int = 0, keep_models: bool = False, progress: bool = True) -> ZooRun:
    """Train every spec, evaluate it and measure every sharpness definition on its training data."""
    if not specs:
        raise ValueError("specs is empty; build them with factor_grid(...)")
    if not definitions:
        raise ValueError("definitions is empty; use sharpness_definitions()")
    n_needed = max(cfg.n_examples for cfg in definitions.values())
    if n_needed > len(data.y_train):
        raise ValueError(f"sharpness needs the first {n_needed} training points but the task has "
                         f"{len(data.y_train)}; lower n_examples or raise n_train_per_class")
    rows, models = [], []
    with single_threaded():
        t0 = time.perf_counter()
        trained = train_zoo(specs, data)
        t_train = time.perf_counter() - t0
        for i, (spec, (model, y_train)) in enumerate(tqdm(list(zip(specs, trained)), desc="sharpness",
                                                           disable=not progress)):
            sharp = measure_sharpness(model, data.x_train, y_train, definitions, seed=sharpness_seed)
            rows.append({"model": i, **asdict(spec), **evaluate_model(model, data, y_train), **sharp})
            if keep_models:
                models.append(model)
        t_sharp = time.perf_counter() - t0 - t_train
    table = pd.DataFrame(rows)
    table["augment"] = table["augment"].astype(int)
    return ZooRun(table, definitions, t_train, t_sharp, models)


# ------------------------------------------------------------------------------------------------ analysis


def bootstrap_tau(s: np.ndarray, t: np.ndarray, n_resamples: int = 1000, confidence: float = 0.95,
                  seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap CI of Kendall τ(s, t), resampling models (pairs) with replacement.

    Resamples where either side is constant (τ undefined) are dropped.
    """
    s, t = np.asarray(s, float), np.asarray(t, float)
    if s.shape != t.shape or s.ndim != 1 or len(s) < 3:
        raise ValueError(f"need two equally long 1-D samples of ≥ 3 models, got {s.shape} and {t.shape}")
    rng = np.random.default_rng(seed)
    taus = []
    for _ in range(n_resamples):
        idx = rng.integers(0, len(s), len(s))
        if np.ptp(s[idx]) > 0 and np.ptp(t[idx]) > 0:
            taus.append(sps.kendalltau(s[idx], t[idx]).statistic)
    if not taus:
        return float("nan"), float("nan")
    lo, hi = np.quantile(taus, [(1 - confidence) / 2, (1 + confidence) / 2])
    return float(lo), float(hi)


def tau_table(table: pd.DataFrame, definitions: Sequence[str], columns: Sequence[str]) -> pd.DataFrame:
    """Kendall τ of every sharpness definition (rows) with every column (targets or factors); NaN if constant."""
    out = pd.DataFrame(index=list(definitions), columns=list(columns), dtype=float)
    for d in definitions:
        for c in columns:
            s, t = table[d].to_numpy(float), table[c].to_numpy(float)
            out.loc[d, c] = kendall_tau(s, t) if np.ptp(s) > 0 and np.ptp(t) > 0 else np.nan
    return out


def factor_breakdown(table: pd.DataFrame, definitions: Sequence[str], targets: Sequence[str] = TARGETS,
                     factors: Sequence[str] = FACTORS) -> pd.DataFrame:
    """``tau_by_factor`` for every (definition, target): long table definition, target, factor, tau, n_groups.

    Factors with a single level in the zoo are left out (no group varies them).
    """
    varying = [f for f in factors if table[f].nunique() > 1]
    frames = []
    for d in definitions:
        for t in targets:
            res = tau_by_factor(table, d, t, varying)
            res.insert(0, "target", t)
            res.insert(0, "definition", d)
            frames.append(res)
    return pd.concat(frames, ignore_index=True)


def rescaled_head_sharpness(model: nn.Module, x: Tensor, y: Tensor, config: SharpnessConfig,
                            scales: Sequence[float], seed: int = 0) -> pd.DataFrame:
    """Sharpness after multiplying the last linear layer (weight and bias) by each α: logits scale by α.

    With logit normalisation adaptive sharpness must not change with α (the perturbed logits scale by α too);
    without it the loss — and sharpness — depends on α (card C4 on a trained deep model). Columns: scale,
    normalize_logits, loss_sharpness.
    """
    linears = [mod for mod in model.modules() if isinstance(mod, nn.Linear)]
    if not linears:
        raise ValueError("model has no nn.Linear head to rescale")
    head = linears[-1]
    rows = []
    original = {n: p.detach().clone() for n, p in head.named_parameters()}
    try:
        for a in scales:
            with torch.no_grad():
                for n, p in head.named_parameters():
                    p.copy_(original[n] * a)
            for normalized in (True, False):
                res = sharpness(model, (x, y), replace(config, normalize_logits=normalized), seed=seed)
                rows.append({"scale": float(a), "normalize_logits": normalized,
                             "loss_sharpness": res.loss_sharpness})
    finally:
        with torch.no_grad():
            for n, p in head.named_parameters():
                p.copy_(original[n])
    return pd.DataFrame(rows)


__all__ = [
    "ARCHS", "DEFAULT_RHOS", "FACTORS", "HEADLINE", "OOD_DOMAINS", "TARGETS", "ModelSpec", "TaskData",
    "ZooRun", "ZooTask", "augment_batch", "bootstrap_tau", "build_model", "error_rate", "evaluate_model",
    "factor_breakdown", "factor_grid", "make_task_data", "measure_sharpness", "noisy_labels",
    "rescaled_head_sharpness", "run_zoo", "train_mlps", "train_zoo", "sharpness_definitions", "single_threaded", "tau_table", "train_model",
]
