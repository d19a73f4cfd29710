"""Shortcut learning (Hermann et al., ICLR 2024): generative framework, LDA reference, reliance and bias.

The framework separates a feature's *predictivity* (ρ_i = P(sign z_i = y)) from its *availability*
(amplitude α_i and nesting depth η_i of its embedding). Two latents, a shortcut z_s and a core z_c, are drawn
as z ~ N(y·μ, Σ) with μ_i = Φ⁻¹(ρ_i), embedded as e_i = α_i·w_i·z_i (w_i random unit vectors in R^d),
optionally bent by η_i random tanh layers, and summed into x. A model's *reliance* on z_s is read off its hard
decisions on a 30 × 30 grid of latent probes embedded the same way; *shortcut bias* is the model's reliance
minus that of the Bayes-optimal LDA fitted to the same inputs (see ``docs/papers/shortcut_learning.md``).

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

import math
from dataclasses import dataclass, field

import numpy as np
from scipy.special import erfinv


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
        z = check_latents(z)
        return self.feature(z[:, 0], 0) + self.feature(z[:, 1], 1)

    @property
    def linear(self) -> bool:
        return not (self.nest_layers[0] or self.nest_layers[1])

    def factors(self, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(coords, basis) with x = coords @ basis: (α∘z, W) when η = 0, else (x, I_d)."""
        z = check_latents(z)
        if self.linear:
            return z * self.alphas, self.directions
        return self(z), np.eye(self.directions.shape[1])


def random_embedding(config: ShortcutConfig, rng: np.random.Generator) -> Embedding:
    """Fresh random unit directions (and nesting layers) for one seed."""
    w = rng.standard_normal((2, config.d))
    w /= np.linalg.norm(w, axis=1, keepdims=True)
    layers = tuple(tuple(_random_orthogonal(config.d, rng) for _ in range(eta)) for eta in (config.eta_s, config.eta_c))
    return Embedding(w, np.array([config.alpha_s, config.alpha_c]), layers, math.sqrt(config.d))


def check_latents(z: np.ndarray) -> np.ndarray:
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
