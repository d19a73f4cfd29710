"""Shortcut learning (Hermann et al., ICLR 2024): generative framework, LDA reference, reliance and bias.

The framework separates a feature's *predictivity* (ρ_i = P(sign z_i = y)) from its *availability*
(amplitude α_i and nesting depth η_i of its embedding). Two latents, a shortcut z_s and a core z_c, are drawn
as z ~ N(y·μ, Σ) with μ_i = Φ⁻¹(ρ_i), embedded as e_i = α_i·w_i·z_i (w_i random unit vectors in R^d),
optionally bent by η_i random tanh layers, and summed into x. A model's *reliance* on z_s is read off its hard
decisions on a 30 × 30 grid of latent probes embedded the same way; *shortcut bias* is the model's reliance
minus that of the Bayes-optimal LDA fitted to the same inputs (see the paper card ``shortcut_learning.md``).

Training is batched: every (cell × seed) model of a sweep is one slice of a single stacked network trained
with ``torch.bmm``, so a whole sweep costs seconds on a CPU.

Design choices the paper leaves open (documented here and in the notebook):

* Loss and head: squared error on ±1 targets, decision ``sign(f(x))`` (f = 0 counts as +1), for the models and
  for the kernel machines; the LDA uses its own ``predict``.
* Optimiser: plain minibatch SGD (batch 64, lr 1e-2), PyTorch-default initialisation, width 128. SGD is what
  the NTK account (C5) describes, and it is rotation-equivariant, so the random embedding directions only
  matter through their overlap. That makes an exact shortcut possible: with η = 0 every input is
  x = c·B (c = α∘z, B = rows w_s, w_c), so the first layer's pre-activation x·W₁ = c·(B W₁) and an SGD step
  on W₁ ∈ R^{d×h} moves U = B W₁ by −lr·B Bᵀ ∂L/∂U. We train U with that preconditioned step, which is the
  same network trained in R^d (tested against a dense run), at a cost independent of d.
* Nesting: each of the η_i layers maps e ↦ tanh(g·Q e)/g with Q a random orthogonal d × d matrix and gain
  g = √d, so small latents pass almost linearly while large ones saturate (the feature gets harder to read).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field, replace
from typing import Callable, Sequence

import numpy as np
import pandas as pd
import torch
from scipy.linalg import solve
from scipy.special import erfinv
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

from cliplab import stats
from cliplab.threads import single_threaded

ARCHS: tuple[str, ...] = ("linear", "mlp_linear", "relu", "tanh")
KERNELS: tuple[str, ...] = ("linear", "arccos1", "ntk_relu")
RESULT_COLUMNS: tuple[str, ...] = (
    "arch", "depth", "rho_s", "alpha_s", "eta_c", "seed",
    "reliance_model", "reliance_lda", "reliance_bayes", "bias", "acc_model", "acc_lda",
)




# --------------------------------------------------------------------------------------------------------
# Generative framework
# --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ShortcutConfig:
    """One cell of the generative framework (card §2 defaults)."""

    rho_s: float = 0.9
    rho_c: float = 0.9
    sigma_sc: float = 0.6
    alpha_s: float = 1.0
    alpha_c: float = 1.0
    eta_s: int = 0
    eta_c: int = 0
    d: int = 100
    n_train: int = 3200
    n_test: int = 2000
    grid_size: int = 30

    def __post_init__(self) -> None:
        for name in ("rho_s", "rho_c"):
            value = getattr(self, name)
            if not 0.5 < value < 1.0:
                raise ValueError(f"{name}={value}: predictivity must lie in (0.5, 1); 0.5 is chance, 1 is Φ⁻¹(1)=∞")
        if not -1.0 < self.sigma_sc < 1.0:
            raise ValueError(f"sigma_sc={self.sigma_sc}: the latent correlation must lie in (-1, 1)")
        for name in ("alpha_s", "alpha_c"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name}={getattr(self, name)}: amplitudes must be positive")
        for name in ("eta_s", "eta_c", "d", "n_train", "n_test", "grid_size"):
            value = getattr(self, name)
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool):
                raise TypeError(f"{name} must be an int, got {type(value).__name__}")
        if self.eta_s < 0 or self.eta_c < 0:
            raise ValueError("eta_s and eta_c (nesting depths) must be >= 0")
        if self.d < 2:
            raise ValueError(f"d={self.d}: the embedding needs at least 2 dimensions")
        for name in ("n_train", "n_test", "grid_size"):
            if getattr(self, name) < 2 or getattr(self, name) % 2:
                raise ValueError(f"{name}={getattr(self, name)}: must be even and >= 2 (class balance / symmetric grid)")

    @property
    def mu(self) -> np.ndarray:
        """Class-conditional latent mean for y = +1: (μ_s, μ_c)."""
        return np.array([latent_mean(self.rho_s), latent_mean(self.rho_c)])

    @property
    def nested(self) -> bool:
        return self.eta_s > 0 or self.eta_c > 0


def latent_mean(rho: float) -> float:
    """μ = Φ⁻¹(ρ) = √2·erf⁻¹(2ρ − 1): the mean that makes P(sign z = y) = ρ for unit variance."""
    if not 0.0 < rho < 1.0:
        raise ValueError(f"rho={rho} must lie in (0, 1)")
    return float(math.sqrt(2.0) * erfinv(2.0 * rho - 1.0))


def latent_covariance(sigma_sc: float) -> np.ndarray:
    """Σ = [[1, σ_sc], [σ_sc, 1]]."""
    return np.array([[1.0, sigma_sc], [sigma_sc, 1.0]])


def sample_latents(
    n: int, rho_s: float, rho_c: float, sigma_sc: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Draw n exactly class-balanced (z, y): y ∈ {−1, +1} shuffled, z ~ N(y·μ, Σ). Returns z (n, 2), y (n,)."""
    if n < 2 or n % 2:
        raise ValueError(f"n={n}: need an even n >= 2 for exact class balance")
    y = np.repeat([-1.0, 1.0], n // 2)
    rng.shuffle(y)
    mu = np.array([latent_mean(rho_s), latent_mean(rho_c)])
    noise = rng.standard_normal((n, 2)) @ np.linalg.cholesky(latent_covariance(sigma_sc)).T
    return y[:, None] * mu + noise, y


def probe_grid(rho_s: float, rho_c: float, grid_size: int = 30) -> np.ndarray:
    """The grid_size² Cartesian probes over [−3μ_s, 3μ_s] × [−3μ_c, 3μ_c] (z_s slow, z_c fast), shape (G², 2)."""
    if grid_size < 2 or grid_size % 2:
        raise ValueError(f"grid_size={grid_size}: use an even size so no probe has a zero latent")
    zs = np.linspace(-3 * latent_mean(rho_s), 3 * latent_mean(rho_s), grid_size)
    zc = np.linspace(-3 * latent_mean(rho_c), 3 * latent_mean(rho_c), grid_size)
    return np.stack(np.meshgrid(zs, zc, indexing="ij"), axis=-1).reshape(-1, 2)


def _random_orthogonal(d: int, rng: np.random.Generator) -> np.ndarray:
    q, r = np.linalg.qr(rng.standard_normal((d, d)))
    return q * np.sign(np.diag(r))


@dataclass(frozen=True)
class Embedding:
    """The fixed map z ↦ x of one seed: directions w (2, d), amplitudes α (2,), nesting layers per feature."""

    directions: np.ndarray
    alphas: np.ndarray
    nest_layers: tuple[tuple[np.ndarray, ...], tuple[np.ndarray, ...]] = ((), ())
    nest_gain: float = 10.0

    def feature(self, z_i: np.ndarray, i: int) -> np.ndarray:
        """e'_i for latent column i: amplitude, direction, then the nesting cascade."""
        e = self.alphas[i] * z_i[:, None] * self.directions[i][None, :]
        for q in self.nest_layers[i]:
            e = np.tanh(self.nest_gain * e @ q.T) / self.nest_gain
        return e

    def __call__(self, z: np.ndarray) -> np.ndarray:
        """x = e'_s + e'_c, shape (n, d)."""
        z = _check_latents(z)
        return self.feature(z[:, 0], 0) + self.feature(z[:, 1], 1)

    @property
    def linear(self) -> bool:
        return not (self.nest_layers[0] or self.nest_layers[1])

    def factors(self, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(coords, basis) with x = coords @ basis: (α∘z, W) when η = 0, else (x, I_d)."""
        z = _check_latents(z)
        if self.linear:
            return z * self.alphas, self.directions
        return self(z), np.eye(self.directions.shape[1])


def random_embedding(config: ShortcutConfig, rng: np.random.Generator) -> Embedding:
    """Fresh random unit directions (and nesting layers) for one seed."""
    w = rng.standard_normal((2, config.d))
    w /= np.linalg.norm(w, axis=1, keepdims=True)
    layers = tuple(tuple(_random_orthogonal(config.d, rng) for _ in range(eta)) for eta in (config.eta_s, config.eta_c))
    return Embedding(w, np.array([config.alpha_s, config.alpha_c]), layers, math.sqrt(config.d))


def _check_latents(z: np.ndarray) -> np.ndarray:
    z = np.asarray(z, dtype=float)
    if z.ndim != 2 or z.shape[1] != 2:
        raise ValueError(f"latents must have shape (n, 2) = (z_s, z_c); got {z.shape}")
    return z


@dataclass(frozen=True)
class ShortcutData:
    """Training, iid test and probe latents of one (cell, seed), with the embedding that maps them to x."""

    config: ShortcutConfig
    seed: int
    z_train: np.ndarray
    y_train: np.ndarray
    z_test: np.ndarray
    y_test: np.ndarray
    z_probe: np.ndarray
    embedding: Embedding = field(repr=False)

    @property
    def x_train(self) -> np.ndarray:
        return self.embedding(self.z_train)

    @property
    def x_test(self) -> np.ndarray:
        return self.embedding(self.z_test)

    @property
    def x_probe(self) -> np.ndarray:
        return self.embedding(self.z_probe)


def make_data(config: ShortcutConfig, seed: int) -> ShortcutData:
    """Sample one seed's data. The stream depends only on the seed (common random numbers across cells).

    The same seed gives the same standard-normal noise and the same directions in every (ρ_s, α_s) cell, so
    cells differ only by the parameters; seeds are the independent replicates.
    """
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed={seed!r} must be a non-negative int")
    train_rng, test_rng, embed_rng = (np.random.default_rng([int(seed), k]) for k in (0, 1, 2))
    z_train, y_train = sample_latents(config.n_train, config.rho_s, config.rho_c, config.sigma_sc, train_rng)
    z_test, y_test = sample_latents(config.n_test, config.rho_s, config.rho_c, config.sigma_sc, test_rng)
    return ShortcutData(
        config, int(seed), z_train, y_train, z_test, y_test,
        probe_grid(config.rho_s, config.rho_c, config.grid_size), random_embedding(config, embed_rng),
    )


# --------------------------------------------------------------------------------------------------------
# Reference classifiers and the metric
# --------------------------------------------------------------------------------------------------------


def hard_decision(scores: np.ndarray) -> np.ndarray:
    """Map real outputs of a ±1-target head to decisions in {−1, +1} (0 counts as +1)."""
    return np.where(np.asarray(scores) >= 0, 1.0, -1.0)


def bayes_weights(rho_s: float, rho_c: float, sigma_sc: float) -> np.ndarray:
    """Σ⁻¹μ: the Bayes-optimal latent rule is sign(μᵀΣ⁻¹z) (equal priors, equal covariances).

    In closed form for Σ = [[1, σ], [σ, 1]], so equal predictivities give exactly equal weights (a numerical
    solve differed in the last bit, which decided every tie probe on the anti-diagonal one way).
    """
    if not abs(sigma_sc) < 1:
        raise ValueError(f"sigma_sc must be in (-1, 1) for Σ to be invertible, got {sigma_sc}")
    mu_s, mu_c = latent_mean(rho_s), latent_mean(rho_c)
    return np.array([mu_s - sigma_sc * mu_c, mu_c - sigma_sc * mu_s]) / (1.0 - sigma_sc**2)


def bayes_decision(z: np.ndarray, rho_s: float, rho_c: float, sigma_sc: float) -> np.ndarray:
    """Hard Bayes decisions sign(μᵀΣ⁻¹z) on latents (n, 2)."""
    return hard_decision(_check_latents(z) @ bayes_weights(rho_s, rho_c, sigma_sc))


def reliance(y_hat: np.ndarray, z_probe: np.ndarray) -> float:
    """Reliance on z_s: Σ ŷ·(sign z_s − sign z_c) / Σ |sign z_s − sign z_c| over the probes.

    On the full symmetric grid exactly half the probes conflict and each contributes ±2, so the denominator
    equals the number of probes and this is the card's "mean over probes of ŷ·(sign z_s − sign z_c)".
    Dividing by the conflict weight instead of the count keeps the bounds when probes are excluded (image
    arm): ŷ = sign(z_s) gives +1, ŷ = sign(z_c) gives −1, and |reliance| ≤ 1 always.
    """
    y_hat = np.asarray(y_hat, dtype=float).ravel()
    z_probe = _check_latents(z_probe)
    if y_hat.shape[0] != z_probe.shape[0]:
        raise ValueError(f"{y_hat.shape[0]} decisions for {z_probe.shape[0]} probes")
    if not np.all(np.isin(y_hat, (-1.0, 1.0))):
        raise ValueError("decisions must be hard labels in {-1, +1}; threshold scores with hard_decision()")
    conflict = np.sign(z_probe[:, 0]) - np.sign(z_probe[:, 1])
    weight = np.abs(conflict).sum()
    if weight == 0:
        raise ValueError("no probe has conflicting latent signs; reliance is undefined")
    value = float((y_hat * conflict).sum() / weight)
    assert abs(value) <= 1.0 + 1e-12, value
    return value


def fit_lda(x: np.ndarray, y: np.ndarray) -> LinearDiscriminantAnalysis:
    """The reference observer: LDA(solver="lsqr") on the embedded training inputs (singular Σ_x is fine)."""
    return LinearDiscriminantAnalysis(solver="lsqr").fit(np.asarray(x), np.asarray(y))


def accuracy(y_hat: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean(np.asarray(y_hat) == np.asarray(y)))


# --------------------------------------------------------------------------------------------------------
# Batched networks
# --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TrainConfig:
    """A network and its training (see the module docstring for why SGD + squared error)."""

    arch: str = "relu"
    depth: int = 1
    width: int = 128
    epochs: int = 20
    batch_size: int = 64
    lr: float = 1e-2

    def __post_init__(self) -> None:
        if self.arch not in ARCHS:
            raise ValueError(f"arch={self.arch!r}: choose one of {ARCHS}")
        if self.arch == "linear" and self.depth != 0:
            raise ValueError("arch='linear' has no hidden layer: use depth=0")
        if self.arch != "linear" and self.depth < 1:
            raise ValueError(f"arch={self.arch!r} needs depth >= 1 hidden layers")
        if self.width < 1 or self.epochs < 1 or self.batch_size < 1 or not self.lr > 0:
            raise ValueError("width, epochs, batch_size must be >= 1 and lr > 0")


_ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "mlp_linear": lambda h: h, "relu": torch.relu, "tanh": torch.tanh,
}


class BatchedMLP:
    """M independent MLPs stacked on a leading axis; the first layer acts on coords through U = basis·W₁."""

    def __init__(self, params: list[torch.Tensor], arch: str) -> None:
        self.params = params
        self.arch = arch

    @property
    def n_models(self) -> int:
        return int(self.params[0].shape[0])

    def __call__(self, coords: torch.Tensor) -> torch.Tensor:
        """Outputs (M, n) for coords (M, n, k)."""
        h = torch.baddbmm(self.params[1], coords, self.params[0])
        for i in range(2, len(self.params), 2):
            h = torch.baddbmm(self.params[i + 1], _ACTIVATIONS[self.arch](h), self.params[i])
        return h[..., 0]


def _model_seed(seed: int) -> int:
    return int(np.random.SeedSequence([int(seed), 7]).generate_state(1)[0])


def init_mlp(basis: torch.Tensor, cfg: TrainConfig, seeds: Sequence[int]) -> BatchedMLP:
    """PyTorch-default (Kaiming-uniform) init of each model in R^d, drawn from its own seed; U₀ = basis·W₁."""
    d = basis.shape[-1]
    dims = [d] + [cfg.width] * cfg.depth + [1]
    per_model: list[list[torch.Tensor]] = []
    for s in seeds:
        g = torch.Generator().manual_seed(_model_seed(s))
        layer = []
        for fan_in, fan_out in zip(dims[:-1], dims[1:]):
            bound = 1.0 / math.sqrt(fan_in)
            layer.append((torch.rand(fan_in, fan_out, generator=g, dtype=torch.float64) * 2 - 1) * bound)
            layer.append((torch.rand(1, fan_out, generator=g, dtype=torch.float64) * 2 - 1) * bound)
        per_model.append(layer)
    params = [torch.stack([m[j] for m in per_model]).float() for j in range(len(per_model[0]))]
    params[0] = torch.bmm(basis, params[0])
    return BatchedMLP(params, cfg.arch)


def train_mlps(
    coords: torch.Tensor, basis: torch.Tensor, y: torch.Tensor, cfg: TrainConfig, seeds: Sequence[int]
) -> BatchedMLP:
    """Train M models at once with minibatch SGD on ½(f(x) − y)², x = coords·basis.

    coords (M, n, k), basis (M, k, d), y (M, n) in {−1, +1}. Each model's init and minibatch order come from
    its own seed, so a model's result does not depend on which other models share the batch.
    """
    if coords.ndim != 3 or basis.ndim != 3 or y.ndim != 2:
        raise ValueError("expected coords (M, n, k), basis (M, k, d), y (M, n)")
    m, n, k = coords.shape
    if basis.shape[:2] != (m, k) or y.shape != (m, n) or len(seeds) != m:
        raise ValueError(f"shape mismatch: coords {tuple(coords.shape)}, basis {tuple(basis.shape)}, "
                         f"y {tuple(y.shape)}, {len(seeds)} seeds")
    model = init_mlp(basis, cfg, seeds)
    for p in model.params:
        p.requires_grad_(True)
    gram = torch.bmm(basis, basis.transpose(1, 2))  # SGD on W₁ ∈ R^{d×h} moves U = B·W₁ by −lr·BBᵀ∂L/∂U
    gens = [torch.Generator().manual_seed(_model_seed(s) + 1) for s in seeds]
    rows = torch.arange(m)[:, None]
    steps_per_epoch = math.ceil(n / cfg.batch_size)
    for _ in range(cfg.epochs):
        order = torch.stack([torch.randperm(n, generator=g) for g in gens])
        for b in range(steps_per_epoch):
            idx = order[:, b * cfg.batch_size:(b + 1) * cfg.batch_size]
            out = model(coords[rows, idx])
            loss = 0.5 * ((out - y[rows, idx]) ** 2).mean(dim=1).sum()
            grads = torch.autograd.grad(loss, model.params)
            with torch.no_grad():
                model.params[0] -= cfg.lr * torch.bmm(gram, grads[0])
                for p, g in zip(model.params[1:], grads[1:]):
                    p -= cfg.lr * g
    for p in model.params:
        p.requires_grad_(False)
    return model


def _stack_factors(datas: Sequence[ShortcutData], which: str) -> tuple[torch.Tensor, torch.Tensor]:
    pairs = [d.embedding.factors(getattr(d, f"z_{which}")) for d in datas]
    coords = torch.tensor(np.stack([p[0] for p in pairs]), dtype=torch.float32)
    basis = torch.tensor(np.stack([p[1] for p in pairs]), dtype=torch.float32)
    return coords, basis


def evaluate_models(
    datas: Sequence[ShortcutData], cfgs: Sequence[TrainConfig]
) -> list[dict[str, float | int | str]]:
    """Train each TrainConfig on every dataset (one batched run per config); one result row per model."""
    if not datas:
        raise ValueError("no datasets given")
    if len({d.embedding.linear for d in datas}) > 1 or len({d.config.d for d in datas}) > 1:
        raise ValueError("datasets in one batch must share d and nesting kind (η = 0 or η > 0)")
    coords, basis = _stack_factors(datas, "train")
    c_test, _ = _stack_factors(datas, "test")
    c_probe, _ = _stack_factors(datas, "probe")
    y = torch.tensor(np.stack([d.y_train for d in datas]), dtype=torch.float32)
    rows: list[dict[str, float | int | str]] = []
    with single_threaded():
        refs = [reference_metrics(d.config, d.seed) for d in datas]
        outputs = []
        for cfg in cfgs:
            model = train_mlps(coords, basis, y, cfg, [d.seed for d in datas])
            with torch.no_grad():
                outputs.append((cfg, model(c_probe).numpy(), model(c_test).numpy()))
    for cfg, probe_out, test_out in outputs:
        for i, data in enumerate(datas):
            rel = reliance(hard_decision(probe_out[i]), data.z_probe)
            rows.append(_row(cfg.arch, cfg.depth, data, rel, accuracy(hard_decision(test_out[i]), data.y_test), refs[i]))
    return rows


def _reference(data: ShortcutData, n_fit: int | None = None) -> dict[str, float]:
    """LDA (fitted on the first n_fit training points, default all) and latent-Bayes reliance, LDA test accuracy."""
    n = data.config.n_train if n_fit is None else n_fit
    lda = fit_lda(data.x_train[:n], data.y_train[:n])
    c = data.config
    return {
        "reliance_lda": reliance(lda.predict(data.x_probe), data.z_probe),
        "reliance_bayes": reliance(bayes_decision(data.z_probe, c.rho_s, c.rho_c, c.sigma_sc), data.z_probe),
        "acc_lda": accuracy(lda.predict(data.x_test), data.y_test),
    }


@functools.lru_cache(maxsize=4096)
def reference_metrics(config: ShortcutConfig, seed: int, n_fit: int | None = None) -> dict[str, float]:
    """Cached reference numbers of one (cell, seed): the data are a pure function of (config, seed)."""
    return dict(_reference(make_data(config, seed), n_fit))


def _row(arch: str, depth: int, data: ShortcutData, rel: float, acc: float, ref: dict[str, float]) -> dict:
    c = data.config
    reference = ref["reliance_bayes"] if c.nested else ref["reliance_lda"]
    return {
        "arch": arch, "depth": depth, "rho_s": c.rho_s, "alpha_s": c.alpha_s, "eta_c": c.eta_c, "seed": data.seed,
        "reliance_model": rel, "reliance_lda": ref["reliance_lda"], "reliance_bayes": ref["reliance_bayes"],
        "bias": rel - reference, "acc_model": acc, "acc_lda": ref["acc_lda"],
    }


def sweep_data(
    rho_s_values: Sequence[float], alpha_s_values: Sequence[float], seeds: Sequence[int],
    base: ShortcutConfig = ShortcutConfig(),
) -> list[ShortcutData]:
    """All (ρ_s, α_s, seed) datasets of a sweep, in that order."""
    if not rho_s_values or not alpha_s_values or not seeds:
        raise ValueError("rho_s_values, alpha_s_values and seeds must be non-empty")
    return [make_data(replace(base, rho_s=float(r), alpha_s=float(a)), int(s))
            for r in rho_s_values for a in alpha_s_values for s in seeds]


def run_sweep(
    cfgs: Sequence[TrainConfig], rho_s_values: Sequence[float], alpha_s_values: Sequence[float],
    seeds: Sequence[int], base: ShortcutConfig = ShortcutConfig(),
) -> pd.DataFrame:
    """Train every config on every (ρ_s, α_s, seed) cell; tidy frame with RESULT_COLUMNS, one row per model.

    ``bias`` = reliance_model − reliance_lda for η = 0 (the card's definition). With nesting the embedding is
    nonlinear, LDA on x is no longer Bayes-optimal, and ``bias`` uses the latent Bayes rule instead.
    """
    datas = sweep_data(rho_s_values, alpha_s_values, seeds, base)
    return pd.DataFrame(evaluate_models(datas, cfgs), columns=list(RESULT_COLUMNS))


def nesting_sweep(
    cfg: TrainConfig, eta_c_values: Sequence[int], seeds: Sequence[int], base: ShortcutConfig = ShortcutConfig(),
) -> pd.DataFrame:
    """Availability via nesting: vary η_c (random tanh layers on the core) at fixed ρ_s, α_s of ``base``."""
    frames = []
    for eta in eta_c_values:
        datas = [make_data(replace(base, eta_c=int(eta)), int(s)) for s in seeds]
        frames.append(pd.DataFrame(evaluate_models(datas, [cfg]), columns=list(RESULT_COLUMNS)))
    return pd.concat(frames, ignore_index=True)


# --------------------------------------------------------------------------------------------------------
# Kernel machines (C5)
# --------------------------------------------------------------------------------------------------------


def _with_bias(x: np.ndarray) -> np.ndarray:
    return np.hstack([x, np.ones((x.shape[0], 1))])


def kernel_matrix(a: np.ndarray, b: np.ndarray, kernel: str) -> np.ndarray:
    """Linear, arc-cosine order 1 (Cho & Saul) or two-layer ReLU NTK kernel between rows of a and b.

    κ₀(u) = (π − arccos u)/π, κ₁(u) = (u(π − arccos u) + √(1 − u²))/π;
    arccos1 = |a||b|κ₁(u); ntk_relu = a·b κ₀(u) + |a||b|κ₁(u) (both layers trained, no biases: pass
    inputs with a constant coordinate to give the hidden units a bias).
    """
    if kernel not in KERNELS:
        raise ValueError(f"kernel={kernel!r}: choose one of {KERNELS}")
    dot = a @ b.T
    if kernel == "linear":
        return dot
    norms = np.linalg.norm(a, axis=1)[:, None] * np.linalg.norm(b, axis=1)[None, :]
    u = np.clip(dot / np.maximum(norms, 1e-300), -1.0, 1.0)
    theta = np.arccos(u)
    k1 = norms * (u * (np.pi - theta) + np.sqrt(1.0 - u**2)) / np.pi
    return k1 if kernel == "arccos1" else k1 + dot * (np.pi - theta) / np.pi


def kernel_predictor(
    x: np.ndarray, y: np.ndarray, kernel: str, ridge: float = 1e-3
) -> Callable[[np.ndarray], np.ndarray]:
    """Kernel ridge regression on ±1 targets (inputs get a constant coordinate); returns x ↦ f(x).

    The ridge is relative: λ = ridge · mean(diag K), so it means the same at every amplitude α.
    """
    if not ridge > 0:
        raise ValueError(f"ridge={ridge} must be > 0")
    xb = _with_bias(np.asarray(x, dtype=float))
    k = kernel_matrix(xb, xb, kernel)
    coef = solve(k + ridge * np.mean(np.diag(k)) * np.eye(len(k)), np.asarray(y, dtype=float), assume_a="pos")
    return lambda x_new: kernel_matrix(_with_bias(np.asarray(x_new, dtype=float)), xb, kernel) @ coef


def kernel_sweep(
    kernels: Sequence[str], rho_s_values: Sequence[float], alpha_s_values: Sequence[float], seeds: Sequence[int],
    n_kernel: int = 800, ridge: float = 1e-3, base: ShortcutConfig = ShortcutConfig(),
) -> pd.DataFrame:
    """Same metric for kernel machines fitted on the first n_kernel training points of each dataset.

    The LDA reference is fitted on the same n_kernel points, so model and reference see identical data.
    """
    if n_kernel < 2 or n_kernel > base.n_train:
        raise ValueError(f"n_kernel={n_kernel} must lie in [2, n_train={base.n_train}]")
    rows = []
    with single_threaded():
        for data in sweep_data(rho_s_values, alpha_s_values, seeds, base):
            x, y, xp, xt = data.x_train[:n_kernel], data.y_train[:n_kernel], data.x_probe, data.x_test
            ref = reference_metrics(data.config, data.seed, n_kernel)
            for kernel in kernels:
                f = kernel_predictor(x, y, kernel, ridge)
                rel = reliance(hard_decision(f(xp)), data.z_probe)
                rows.append(_row(f"kernel_{kernel}", 0, data, rel, accuracy(hard_decision(f(xt)), data.y_test), ref))
    return pd.DataFrame(rows, columns=list(RESULT_COLUMNS))


def ntk_predicted_sign(rho_s: float, rho_c: float, alpha_s: float, alpha_c: float = 1.0) -> int:
    """Sign of (α_s²μ_s² − α_c²μ_c²)(α_s − α_c), the card's leading-order NTK prediction (0 when tied)."""
    ms, mc = latent_mean(rho_s), latent_mean(rho_c)
    return int(np.sign((alpha_s**2 * ms**2 - alpha_c**2 * mc**2) * (alpha_s - alpha_c)))


# --------------------------------------------------------------------------------------------------------
# Summaries
# --------------------------------------------------------------------------------------------------------


def summarise(df: pd.DataFrame, by: Sequence[str], value: str = "bias") -> pd.DataFrame:
    """Mean ± SE over seeds, Student-t 95% CI (``stats.t_ci``) and fraction of positive values, per group of ``by``.

    When a group holds several rows per seed (e.g. all cells of an architecture), rows are first averaged
    within seed: seeds are the independent replicates (cells share a seed's noise, see make_data).
    """
    missing = [c for c in [*by, value, "seed"] if c not in df.columns]
    if missing:
        raise ValueError(f"columns {missing} not in the frame (have {list(df.columns)})")
    if df.empty:
        raise ValueError("empty frame: nothing to summarise")
    per_seed = df.groupby([*by, "seed"], as_index=False)[value].mean()
    out = []
    for key, group in per_seed.groupby(list(by), sort=True):
        vals = group[value].to_numpy(dtype=float)
        mean, se = stats.mean_se(vals) if len(vals) > 1 else (float(vals[0]), float("nan"))
        lo, hi = stats.t_ci(vals) if len(vals) > 1 else (float("nan"), float("nan"))
        key = key if isinstance(key, tuple) else (key,)
        out.append({**dict(zip(by, key)), "mean": mean, "se": se, "ci_low": lo, "ci_high": hi,
                    "frac_positive": float(np.mean(vals > 0)), "n_seeds": len(vals)})
    return pd.DataFrame(out)


def seed_slopes(df: pd.DataFrame, x: str, value: str = "bias") -> np.ndarray:
    """Least-squares slope of ``value`` on ``x`` within each seed (pooling that seed's rows): one number per seed.

    Seeds are the independent replicates, so a CI over these slopes is an honest trend test.
    """
    missing = [c for c in (x, value, "seed") if c not in df.columns]
    if missing:
        raise ValueError(f"columns {missing} not in the frame")
    slopes = []
    for _, group in df.groupby("seed", sort=True):
        if group[x].nunique() < 2:
            raise ValueError(f"seed group has a single {x} value; a slope needs at least two")
        slopes.append(np.polyfit(group[x].to_numpy(float), group[value].to_numpy(float), 1)[0])
    return np.asarray(slopes)


def seed_means(df: pd.DataFrame, value: str = "bias") -> np.ndarray:
    """Mean of ``value`` within each seed (pooling that seed's rows/cells): one number per seed."""
    if df.empty:
        raise ValueError("empty frame: no rows to pool (check the sweep parameters)")
    return df.groupby("seed", sort=True)[value].mean().to_numpy(float)


def ci_metrics(key: str, per_seed: np.ndarray) -> dict[str, float]:
    """{key: mean, key_se, key_ci_low, key_ci_high} over per-seed values (mean ± SE and Student-t 95% CI)."""
    mean, se = stats.mean_se(per_seed)
    lo, hi = stats.t_ci(per_seed)
    return {key: mean, f"{key}_se": se, f"{key}_ci_low": lo, f"{key}_ci_high": hi}
