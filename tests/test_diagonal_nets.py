"""cliplab.sharpness.diagonal_nets: the implicit bias of the initialisation scale, and sharpness across the population."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.optimize import linprog

from cliplab.sharpness import diagonal_nets as dn
from cliplab.sharpness.measures import SharpnessConfig
from cliplab.stats import kendall_tau

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def small() -> dn.SparseRegression:
    return dn.sparse_regression(n=40, d=80, sparsity=0.9, noise_std=0.0, seed=1)


def test_sparse_regression_shapes_and_sparsity(small: dn.SparseRegression) -> None:
    assert small.x.shape == (40, 80) and small.y.shape == (40,)
    assert np.count_nonzero(small.beta_star) == 8
    np.testing.assert_allclose(small.y, small.x @ small.beta_star)


def test_init_scale_selects_min_l1_or_min_l2_interpolator(small: dn.SparseRegression) -> None:
    """Woodworth et al. 2020: α → 0 gives the minimum-ℓ1 interpolator, α → ∞ the minimum-ℓ2 one."""
    u, v, loss, _ = dn.train_diagonal_nets(small.x, small.y, np.array([3e-3, 10.0]), target_loss=1e-8,
                                           max_steps=300_000)
    assert (loss <= 1e-8).all()
    beta = u * v
    d = small.x.shape[1]
    lp = linprog(np.ones(2 * d), A_eq=np.hstack([small.x, -small.x]), b_eq=small.y, bounds=(0, None))
    min_l1 = lp.x[:d] - lp.x[d:]
    min_l2 = np.linalg.pinv(small.x) @ small.y
    assert np.linalg.norm(beta[0] - min_l1) < 0.02 * np.linalg.norm(min_l1)
    assert np.linalg.norm(beta[1] - min_l2) < 1e-3 * np.linalg.norm(min_l2)
    assert np.linalg.norm(beta[1] - min_l1) > 0.3 * np.linalg.norm(min_l1)  # the two regimes differ


def test_population_risk_matches_monte_carlo() -> None:
    cfg = dn.DiagonalNetsConfig(n=30, d=60, n_nets=3, alpha_min=0.1, alpha_max=1.0, noise_std=0.1,
                                sharpness_configs={})
    df = dn.diagonal_net_population(cfg)
    data = dn.sparse_regression(30, 60, 0.9, 0.1, cfg.seed)
    u, v, _, _ = dn.train_diagonal_nets(data.x, data.y, cfg.alphas)
    rng = np.random.default_rng(123)
    x = rng.standard_normal((100_000, 60))
    y = x @ data.beta_star + 0.1 * rng.standard_normal(100_000)
    mc = [0.5 * np.mean((x @ (u[j] * v[j]) - y) ** 2) for j in range(3)]
    np.testing.assert_allclose(df["test_loss"], mc, rtol=0.02)


@pytest.fixture(scope="module")
def population() -> object:
    cfg = dn.DiagonalNetsConfig(n=40, d=80, n_nets=10, alpha_min=0.02, alpha_max=3.0)
    return dn.diagonal_net_population(cfg)


def test_population_table(population: object) -> None:
    df = population
    assert len(df) == 10 and df["converged"].all() and (df["train_loss"] <= 1e-5).all()
    assert {"worst_l2_adaptive", "worst_l2_standard", "average_l2_adaptive", "gap", "alpha"} <= set(df.columns)
    np.testing.assert_allclose(df["gap"], df["test_loss"] - df["train_loss"])
    assert (df[["worst_l2_adaptive", "worst_l2_standard", "average_l2_adaptive"]] > 0).all().all()
    # larger initialisation → denser solution → worse generalisation (the known implicit bias)
    assert kendall_tau(df["alpha"], df["gap"]) > 0.9
    assert kendall_tau(df["alpha"], df["beta_l1"]) > 0.9


def test_population_is_deterministic(population: object) -> None:
    again = dn.diagonal_net_population(dn.DiagonalNetsConfig(n=40, d=80, n_nets=10, alpha_min=0.02, alpha_max=3.0))
    assert again.equals(population)


def test_adaptive_worst_case_sharpness_anticorrelates_with_gap() -> None:
    """The card expects τ(adaptive worst-case sharpness, gap) < 0 for diagonal nets (≈ −0.69 in a re-run)."""
    df = dn.diagonal_net_population(dn.DiagonalNetsConfig(n_nets=12, alpha_min=0.03))
    assert df["converged"].all()
    assert kendall_tau(df["worst_l2_adaptive"], df["gap"]) < -0.5


def test_diagonal_net_forward_and_validation() -> None:
    u, v = torch.tensor([1.0, 2.0, 0.0]), torch.tensor([3.0, -1.0, 5.0])
    net = dn.DiagonalNet(u, v)
    x = torch.tensor([[1.0, 1.0, 1.0], [0.0, 2.0, 0.0]])
    torch.testing.assert_close(net(x), torch.tensor([1.0, -4.0]))
    with pytest.raises(ValueError, match="equal shape"):
        dn.DiagonalNet(torch.ones(3), torch.ones(4))
    with pytest.raises(ValueError, match="normalize_logits"):
        dn.DiagonalNetsConfig(sharpness_configs={"bad": SharpnessConfig(normalize_logits=True)})
    with pytest.raises(ValueError, match="sparsity"):
        dn.DiagonalNetsConfig(sparsity=1.0)
