"""Diagonal linear networks on sparse regression: the simple model of the sharpness paper (card §3.5, C3).

A diagonal linear network predicts ⟨u⊙v, x⟩, so its effective regressor is β = u⊙v. On over-parametrised
sparse regression (Gaussian X ∈ R^{n×d}, d > n, β* with 90 % zeros) every network here fits the training
data, but *which* interpolator gradient descent reaches depends on the initialisation scale α
(u0 = √2·α·1, v0 = 0, as in Woodworth et al. 2020 / Pesme et al. 2021): small α gives a sparse, ℓ1-like
solution that generalises; large α a dense, ℓ2-like one that does not. A population of networks that
differ only in α therefore spans a range of generalisation gaps, and we measure how sharpness ranks them.

Training is full-batch GD on L(β) = ‖Xβ − y‖²/(2n), all networks at once (one (n_nets × d) array each for u
and v), until every network's loss is ≤ ``target_loss`` (the card: 1e−5) or ``max_steps``. The step size of
network j is ``lr_scale / (λ_max(XᵀX/n)·(α_j² + b))`` with b = max|Xᵀy/n| — a stability bound for the
Hessian in (u, v), which scales with α² near the start and with |β| later (a documented heuristic).
The test loss is the exact population risk for x ~ N(0, I): (‖β − β*‖² + σ²)/2, so gap = test − train has no
sampling noise. Sharpness is measured by ``cliplab.sharpness`` on the training set (m = n by default).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
import torch
from torch import Tensor, nn

from cliplab.sharpness.measures import SharpnessConfig, sharpness


class DiagonalNet(nn.Module):
    """f(x) = ⟨u⊙v, x⟩ for a batch x of shape (n, d); returns (n,)."""

    def __init__(self, u: Tensor, v: Tensor) -> None:
        super().__init__()
        if u.shape != v.shape or u.ndim != 1:
            raise ValueError(f"u and v must be 1-D of equal shape, got {tuple(u.shape)} and {tuple(v.shape)}")
        self.u = nn.Parameter(u.clone())
        self.v = nn.Parameter(v.clone())

    def forward(self, x: Tensor) -> Tensor:
        return x @ (self.u * self.v)


def half_mse(pred: Tensor, y: Tensor) -> Tensor:
    """‖pred − y‖²/(2n): the training loss of the diagonal networks."""
    return 0.5 * ((pred - y) ** 2).mean()


def default_sharpness_configs(n: int, rho_adaptive: float = 0.1, rho_standard: float = 0.02,
                              n_iters: int = 20) -> dict[str, SharpnessConfig]:
    """Worst-case adaptive/standard L2 and average-case adaptive L2 sharpness, full batch (m = N = n)."""
    common = dict(m=n, n_examples=n, normalize_logits=False, n_iters=n_iters)
    return {
        "worst_l2_adaptive": SharpnessConfig(kind="worst", norm="l2", adaptive=True, rho=rho_adaptive, **common),
        "worst_l2_standard": SharpnessConfig(kind="worst", norm="l2", adaptive=False, rho=rho_standard, **common),
        "average_l2_adaptive": SharpnessConfig(kind="average", norm="l2", adaptive=True, rho=rho_adaptive,
                                               n_samples=100, **common),
    }


@dataclass(frozen=True)
class DiagonalNetsConfig:
    """Data, population and training settings (defaults: d = 200 > n = 100, 90 %-sparse β*, 50 networks)."""

    n: int = 100
    d: int = 200
    sparsity: float = 0.9
    noise_std: float = 0.0
    n_nets: int = 50
    alpha_min: float = 1e-2
    alpha_max: float = 3.0
    lr_scale: float = 1.0
    target_loss: float = 1e-5
    max_steps: int = 200_000
    seed: int = 0
    sharpness_configs: dict[str, SharpnessConfig] | None = field(default=None, hash=False)

    def __post_init__(self) -> None:
        if not (1 <= self.n and 1 <= self.d):
            raise ValueError(f"n and d must be positive, got n={self.n}, d={self.d}")
        if not 0.0 <= self.sparsity < 1.0:
            raise ValueError(f"sparsity must be in [0, 1), got {self.sparsity}")
        if self.noise_std < 0 or self.lr_scale <= 0 or self.target_loss <= 0 or self.max_steps < 1:
            raise ValueError("need noise_std ≥ 0, lr_scale > 0, target_loss > 0 and max_steps ≥ 1")
        if self.n_nets < 2 or not 0 < self.alpha_min <= self.alpha_max:
            raise ValueError(f"need n_nets ≥ 2 and 0 < alpha_min ≤ alpha_max, got {self.n_nets}, "
                             f"{self.alpha_min}, {self.alpha_max}")
        for name, cfg in (self.sharpness_configs or {}).items():
            if cfg.normalize_logits:
                raise ValueError(f"sharpness config {name!r}: normalize_logits must be False for regression")

    @property
    def alphas(self) -> np.ndarray:
        """The n_nets initialisation scales, log-spaced over [alpha_min, alpha_max]."""
        return np.geomspace(self.alpha_min, self.alpha_max, self.n_nets)


@dataclass(frozen=True)
class SparseRegression:
    x: np.ndarray
    y: np.ndarray
    beta_star: np.ndarray
    noise_std: float


def sparse_regression(n: int, d: int, sparsity: float, noise_std: float, seed: int) -> SparseRegression:
    """Gaussian X (n × d), β* with round((1 − sparsity)·d) ≥ 1 non-zeros ~ N(0, 1), y = Xβ* + σε."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d))
    k = max(1, int(round((1.0 - sparsity) * d)))
    beta = np.zeros(d)
    beta[rng.choice(d, size=k, replace=False)] = rng.standard_normal(k)
    y = x @ beta + noise_std * rng.standard_normal(n)
    return SparseRegression(x, y, beta, noise_std)


def train_diagonal_nets(x: np.ndarray, y: np.ndarray, alphas: np.ndarray, lr_scale: float = 1.0,
                        target_loss: float = 1e-5, max_steps: int = 200_000) -> tuple[np.ndarray, np.ndarray,
                                                                                      np.ndarray, np.ndarray]:
    """GD on all networks at once; returns (u, v, final train loss, steps taken), one row per α.

    A network stops moving once its loss is ≤ target_loss, so its solution does not depend on how long the
    slowest network takes.
    """
    n = x.shape[0]
    alphas = np.asarray(alphas, dtype=float)
    lam = float(np.linalg.eigvalsh(x.T @ x / n)[-1])
    b = float(np.abs(x.T @ y).max() / n)
    lr = (lr_scale / (lam * (alphas ** 2 + b)))[:, None]
    u = np.tile(np.sqrt(2.0) * alphas[:, None], (1, x.shape[1]))
    v = np.zeros_like(u)
    steps = np.zeros(len(alphas), dtype=int)
    active = np.ones(len(alphas), dtype=bool)
    loss = np.full(len(alphas), np.inf)
    for t in range(max_steps + 1):
        resid = (u[active] * v[active]) @ x.T - y
        loss[active] = 0.5 * (resid ** 2).mean(axis=1)
        if not np.all(np.isfinite(loss[active])):
            raise FloatingPointError(f"GD diverged (lr_scale={lr_scale}); lower lr_scale")
        done = loss[active] <= target_loss
        if done.any():
            idx = np.flatnonzero(active)[done]
            steps[idx] = t
            active[idx] = False
        if not active.any() or t == max_steps:
            break
        g = (resid[~done] @ x) / n
        ua, va, lra = u[active], v[active], lr[active]
        u[active], v[active] = ua - lra * g * va, va - lra * g * ua
    steps[active] = max_steps
    return u, v, loss, steps


def diagonal_net_population(config: DiagonalNetsConfig = DiagonalNetsConfig(), seed: int | None = None,
                            threads: int = 1) -> pd.DataFrame:
    """Train the population and measure it: one row per network.

    Columns: net, alpha, steps, converged, train_loss, test_loss, gap, beta_l1, beta_l2, recovery_error
    (‖β − β*‖₂), and one ``<name>`` (loss sharpness) column per sharpness config (default:
    ``default_sharpness_configs(n)``). seed overrides config.seed (data draw and sharpness noise).
    """
    seed = config.seed if seed is None else seed
    data = sparse_regression(config.n, config.d, config.sparsity, config.noise_std, seed)
    u, v, train_loss, steps = train_diagonal_nets(data.x, data.y, config.alphas, config.lr_scale,
                                                  config.target_loss, config.max_steps)
    configs = (default_sharpness_configs(config.n) if config.sharpness_configs is None
               else config.sharpness_configs)
    configs = {k: (replace(c, m=config.n, n_examples=config.n) if c.n_examples > config.n else c)
               for k, c in configs.items()}
    x_t = torch.as_tensor(data.x, dtype=torch.float64)
    y_t = torch.as_tensor(data.y, dtype=torch.float64)
    rows = []
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        for j, alpha in enumerate(config.alphas):
            beta = u[j] * v[j]
            test_loss = 0.5 * (float(np.sum((beta - data.beta_star) ** 2)) + data.noise_std ** 2)
            row = {"net": j, "alpha": float(alpha), "steps": int(steps[j]),
                   "converged": bool(train_loss[j] <= config.target_loss), "train_loss": float(train_loss[j]),
                   "test_loss": test_loss, "gap": test_loss - float(train_loss[j]),
                   "beta_l1": float(np.abs(beta).sum()), "beta_l2": float(np.linalg.norm(beta)),
                   "recovery_error": float(np.linalg.norm(beta - data.beta_star))}
            model = DiagonalNet(torch.as_tensor(u[j]), torch.as_tensor(v[j]))
            for name, cfg in configs.items():
                res = sharpness(model, (x_t, y_t), cfg, loss_fn=half_mse, seed=seed, error_fn=None)
                row[name] = res.loss_sharpness
            rows.append(row)
    finally:
        torch.set_num_threads(previous_threads)
    return pd.DataFrame(rows)
