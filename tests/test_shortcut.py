"""Tests for cliplab.shortcut: generative framework, reliance/bias metric, references, batched training, kernels."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from scipy.stats import norm

from cliplab import shortcut as sc

# Card §2 "Reference reliance_opt" (Bayes rule on the exact 30 × 30 grid, ρ_c = 0.9); ρ_s = 0.9 is tie-sensitive.
CARD_TABLE = {0.6: {0.6: -1.000, 0.0: -0.982}, 0.7: {0.6: -1.000, 0.0: -0.840}, 0.8: {0.6: -0.938, 0.0: -0.564}}
TIE_BOUND = 30 * 2 / 900  # the 30 anti-diagonal probes are the only ones that can sit on the boundary at ρ_s = ρ_c


@pytest.mark.parametrize("rho", [0.55, 0.6, 0.7, 0.8, 0.9, 0.99])
def test_latent_mean_is_probit(rho: float) -> None:
    assert sc.latent_mean(rho) == pytest.approx(norm.ppf(rho), abs=1e-12)


@pytest.mark.parametrize("rho_s", [0.6, 0.8])
def test_generated_latents_have_the_requested_predictivity(rho_s: float) -> None:
    n = 40_000
    z, y = sc.sample_latents(n, rho_s, 0.9, 0.6, np.random.default_rng(3))
    assert (y == 1).sum() == n // 2
    se = np.sqrt(0.25 / n)
    for col, rho in ((0, rho_s), (1, 0.9)):
        assert abs(np.mean(np.sign(z[:, col]) == y) - rho) < 4 * se
    resid = z - y[:, None] * np.array([sc.latent_mean(rho_s), sc.latent_mean(0.9)])
    assert np.corrcoef(resid.T)[0, 1] == pytest.approx(0.6, abs=0.02)


def test_probe_grid_spans_three_means_symmetrically() -> None:
    z = sc.probe_grid(0.7, 0.9)
    assert z.shape == (900, 2)
    assert z[:, 0].max() == pytest.approx(3 * norm.ppf(0.7)) and z[:, 1].min() == pytest.approx(-3 * norm.ppf(0.9))
    assert np.all(z != 0)
    conflict = np.sign(z[:, 0]) != np.sign(z[:, 1])
    assert conflict.sum() == 450


def test_reliance_of_pure_rules_and_bounds() -> None:
    z = sc.probe_grid(0.8, 0.9)
    assert sc.reliance(np.sign(z[:, 0]), z) == 1.0
    assert sc.reliance(np.sign(z[:, 1]), z) == -1.0
    assert sc.reliance(np.ones(900), z) == 0.0
    # the card's formula, mean over probes, is what we compute on the full grid
    y_hat = np.where(np.random.default_rng(0).random(900) < 0.5, -1.0, 1.0)
    card = np.mean(y_hat * (np.sign(z[:, 0]) - np.sign(z[:, 1])))
    assert sc.reliance(y_hat, z) == pytest.approx(card)
    for seed in range(20):
        y_hat = np.where(np.random.default_rng(seed).random(900) < 0.5, -1.0, 1.0)
        assert abs(sc.reliance(y_hat, z)) <= 1.0
    keep = np.random.default_rng(1).random(900) < 0.7  # excluded probes keep the ±1 bounds
    assert sc.reliance(np.sign(z[keep, 0]), z[keep]) == 1.0


def test_reliance_rejects_soft_scores_and_bad_shapes() -> None:
    z = sc.probe_grid(0.8, 0.9)
    with pytest.raises(ValueError, match="hard labels"):
        sc.reliance(np.linspace(-1, 1, 900), z)
    with pytest.raises(ValueError, match="900 probes"):
        sc.reliance(np.ones(10), z)
    with pytest.raises(ValueError, match="shape"):
        sc.reliance(np.ones(900), z[:, :1])


@pytest.mark.parametrize("sigma", [0.6, 0.0])
@pytest.mark.parametrize("rho_s", [0.6, 0.7, 0.8])
def test_bayes_reliance_matches_card_table(rho_s: float, sigma: float) -> None:
    z = sc.probe_grid(rho_s, 0.9)
    assert sc.reliance(sc.bayes_decision(z, rho_s, 0.9, sigma), z) == pytest.approx(CARD_TABLE[rho_s][sigma], abs=5e-4)


@pytest.mark.parametrize("sigma", [0.6, 0.0])
def test_bayes_reliance_at_equal_predictivity_is_zero_up_to_ties(sigma: float) -> None:
    z = sc.probe_grid(0.9, 0.9)
    score = z @ sc.bayes_weights(0.9, 0.9, sigma)
    value = sc.reliance(sc.bayes_decision(z, 0.9, 0.9, sigma), z)
    assert abs(value) <= TIE_BOUND + 1e-12
    off_diagonal = np.abs(z[:, 0] + z[:, 1]) > 1e-9  # probes off the anti-diagonal are decided unambiguously
    conflict = np.sign(z[:, 0]) - np.sign(z[:, 1])
    assert np.sum(np.sign(score[off_diagonal]) * conflict[off_diagonal]) == 0


@pytest.mark.parametrize("sigma", [0.6, 0.0])
def test_fitted_lda_matches_card_table(sigma: float) -> None:
    for rho_s, row in CARD_TABLE.items():
        values = []
        for seed in range(3):
            data = sc.make_data(sc.ShortcutConfig(rho_s=rho_s, sigma_sc=sigma, alpha_s=3.0), seed)
            lda = sc.fit_lda(data.x_train, data.y_train)
            values.append(sc.reliance(lda.predict(data.x_probe), data.z_probe))
        assert np.mean(values) == pytest.approx(row[sigma], abs=0.03), (rho_s, values)
    data = sc.make_data(sc.ShortcutConfig(rho_s=0.9, sigma_sc=sigma), 0)
    lda = sc.fit_lda(data.x_train, data.y_train)
    assert abs(sc.reliance(lda.predict(data.x_probe), data.z_probe)) <= TIE_BOUND + 0.03


def test_lda_agrees_with_analytic_rule_away_from_the_boundary() -> None:
    data = sc.make_data(sc.ShortcutConfig(rho_s=0.8), 0)
    lda = sc.fit_lda(data.x_train, data.y_train)
    score = data.z_probe @ sc.bayes_weights(0.8, 0.9, 0.6)
    clear = np.abs(score) > 0.3
    assert np.array_equal(lda.predict(data.x_probe)[clear], sc.hard_decision(score[clear]))


@pytest.mark.parametrize("rho_s", [0.7, 0.8])
def test_lda_reliance_is_invariant_to_amplitude(rho_s: float) -> None:
    values = []
    for alpha in (1.0, 2.0, 5.0):
        data = sc.make_data(sc.ShortcutConfig(rho_s=rho_s, alpha_s=alpha), 4)
        values.append(sc.reliance(sc.fit_lda(data.x_train, data.y_train).predict(data.x_probe), data.z_probe))
    assert values[0] == values[1] == values[2]


def test_embedding_is_shared_by_train_and_probes_and_factorises() -> None:
    cfg = sc.ShortcutConfig(rho_s=0.7, alpha_s=3.0)
    data = sc.make_data(cfg, 2)
    w = data.embedding.directions
    np.testing.assert_allclose(np.linalg.norm(w, axis=1), 1.0)
    np.testing.assert_allclose(data.x_probe, (data.z_probe * [3.0, 1.0]) @ w, atol=1e-12)
    np.testing.assert_allclose(data.x_train, (data.z_train * [3.0, 1.0]) @ w, atol=1e-12)
    coords, basis = data.embedding.factors(data.z_train)
    np.testing.assert_allclose(coords @ basis, data.x_train, atol=1e-12)
    other = sc.make_data(cfg, 3)
    assert not np.allclose(other.embedding.directions, w)  # fresh directions per seed


def test_nesting_is_odd_monotone_and_bounded() -> None:
    data = sc.make_data(sc.ShortcutConfig(eta_c=2), 0)
    assert not data.embedding.linear
    z = np.stack([np.zeros(50), np.linspace(-4, 4, 50)], axis=1)
    e = data.embedding(z)
    np.testing.assert_allclose(e, -e[::-1], atol=1e-12)  # odd in z_c: the sign of the core stays readable
    norms = np.linalg.norm(e, axis=1)
    assert np.all(np.diff(norms[25:]) > 0) and norms.max() < 4.0  # saturating: far below the linear 4·|w|
    coords, basis = data.embedding.factors(z)
    assert basis.shape == (100, 100)


def test_config_validation() -> None:
    with pytest.raises(ValueError, match="rho_s"):
        sc.ShortcutConfig(rho_s=0.5)
    with pytest.raises(ValueError, match="sigma_sc"):
        sc.ShortcutConfig(sigma_sc=1.0)
    with pytest.raises(ValueError, match="even"):
        sc.ShortcutConfig(n_train=3201)
    with pytest.raises(TypeError, match="eta_c"):
        sc.ShortcutConfig(eta_c=1.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="arch"):
        sc.TrainConfig(arch="gelu")
    with pytest.raises(ValueError, match="depth=0"):
        sc.TrainConfig(arch="linear", depth=1)
    with pytest.raises(ValueError, match="seed"):
        sc.make_data(sc.ShortcutConfig(), -1)


def test_factorised_sgd_equals_dense_sgd_in_d_dimensions() -> None:
    cfg = sc.ShortcutConfig(rho_s=0.8, alpha_s=3.0, n_train=256)
    datas = [sc.make_data(cfg, s) for s in (0, 1)]
    train = sc.TrainConfig(arch="relu", depth=2, width=16, epochs=3, batch_size=32, lr=1e-2)
    y = torch.tensor(np.stack([d.y_train for d in datas]), dtype=torch.float32)
    factors = [d.embedding.factors(d.z_train) for d in datas]
    coords = torch.tensor(np.stack([f[0] for f in factors]), dtype=torch.float32)
    basis = torch.tensor(np.stack([f[1] for f in factors]), dtype=torch.float32)
    dense_x = torch.tensor(np.stack([d.x_train for d in datas]), dtype=torch.float32)
    eye = torch.eye(100).expand(2, 100, 100).contiguous()
    low = sc.train_mlps(coords, basis, y, train, [0, 1])
    dense = sc.train_mlps(dense_x, eye, y, train, [0, 1])  # plain SGD on W₁ ∈ R^{100×h}
    probes = [d.embedding.factors(d.z_probe) for d in datas]
    p_low = low(torch.tensor(np.stack([p[0] for p in probes]), dtype=torch.float32))
    p_dense = dense(torch.tensor(np.stack([d.x_probe for d in datas]), dtype=torch.float32))
    torch.testing.assert_close(p_low, p_dense, atol=2e-4, rtol=1e-4)


def test_linear_model_learns_the_bayes_direction() -> None:
    df = sc.run_sweep([sc.TrainConfig(arch="linear", depth=0, epochs=10)], [0.7], [1.0, 4.0], [0])
    assert np.all(df["reliance_model"] == -1.0) and np.all(df["reliance_lda"] == -1.0)
    assert np.all(np.abs(df["acc_model"] - df["acc_lda"]) < 0.01)


def test_sweep_is_deterministic_and_seed_dependent() -> None:
    cfgs = [sc.TrainConfig(arch="relu", epochs=2, width=32)]
    a = sc.run_sweep(cfgs, [0.9], [3.0], [0, 1])
    b = sc.run_sweep(cfgs, [0.9], [3.0], [0, 1])
    pd.testing.assert_frame_equal(a, b)
    assert list(a.columns) == list(sc.RESULT_COLUMNS)
    assert a.loc[0, "reliance_lda"] != a.loc[1, "reliance_lda"] or a.loc[0, "acc_model"] != a.loc[1, "acc_model"]
    # a model's result does not depend on which other models share the batch
    c = sc.run_sweep(cfgs, [0.9], [3.0], [1])
    assert c.loc[0, "reliance_model"] == a.loc[1, "reliance_model"]
    np.testing.assert_allclose(a["bias"], a["reliance_model"] - a["reliance_lda"])


def test_kernel_matrix_closed_forms() -> None:
    a = np.array([[3.0, 0.0], [0.0, 2.0]])
    np.testing.assert_allclose(np.diag(sc.kernel_matrix(a, a, "arccos1")), [9.0, 4.0])  # κ₁(1) = 1
    assert sc.kernel_matrix(a, a, "arccos1")[0, 1] == pytest.approx(6.0 / np.pi)  # κ₁(0) = 1/π
    np.testing.assert_allclose(np.diag(sc.kernel_matrix(a, a, "ntk_relu")), [18.0, 8.0])
    assert sc.kernel_matrix(a, -a, "arccos1")[0, 0] == pytest.approx(0.0, abs=1e-12)  # κ₁(−1) = 0
    with pytest.raises(ValueError, match="kernel"):
        sc.kernel_matrix(a, a, "rbf")


def test_linear_kernel_regression_is_unbiased() -> None:
    df = sc.kernel_sweep(["linear"], [0.7, 0.8], [1.0, 5.0], [0], n_kernel=400)
    assert np.all(np.abs(df["bias"]) <= 0.03)


def test_ntk_predicted_sign() -> None:
    assert sc.ntk_predicted_sign(0.9, 0.9, 3.0) == 1  # equal predictivity: the more available one wins
    assert sc.ntk_predicted_sign(0.9, 0.9, 1.0) == 0
    assert sc.ntk_predicted_sign(0.6, 0.9, 2.0) == -1  # 4·0.064 < 1.64: predictivity still dominates


def test_summarise_mean_se_and_within_seed_averaging() -> None:
    df = pd.DataFrame({"arch": ["a"] * 6, "seed": [0, 0, 1, 1, 2, 2], "bias": [0.0, 0.2, 0.2, 0.4, -0.2, 0.0]})
    s = sc.summarise(df, ["arch"])
    per_seed = np.array([0.1, 0.3, -0.1])
    assert s.loc[0, "mean"] == pytest.approx(per_seed.mean())
    assert s.loc[0, "se"] == pytest.approx(per_seed.std(ddof=1) / np.sqrt(3))
    assert s.loc[0, "frac_positive"] == pytest.approx(2 / 3) and s.loc[0, "n_seeds"] == 3
    assert s.loc[0, "ci_low"] <= s.loc[0, "mean"] <= s.loc[0, "ci_high"]
    with pytest.raises(ValueError, match="columns"):
        sc.summarise(df, ["depth"])


def test_seed_slopes_recovers_known_trends() -> None:
    depth = np.tile([1, 2, 3, 4], 3)
    seed = np.repeat([0, 1, 2], 4)
    df = pd.DataFrame({"depth": depth, "seed": seed, "bias": 0.1 * depth * (seed + 1) - 0.05})
    np.testing.assert_allclose(sc.seed_slopes(df, "depth"), [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="two"):
        sc.seed_slopes(df[df.depth == 1], "depth")


def test_seed_means_pool_each_seeds_rows_in_seed_order() -> None:
    df = pd.DataFrame({"seed": [1, 1, 0, 0, 2, 2, 3, 3], "bias": [2.0, 2.0, 1.0, 3.0, 0.0, 2.0, 4.0, 4.0]})
    np.testing.assert_allclose(sc.seed_means(df), [2.0, 2.0, 1.0, 4.0])


def _fake_sweep(archs: list[str], seeds: int = 3) -> pd.DataFrame:
    """A sweep frame whose bias is arch_offset + seed / 10 + α_s / 100 + depth / 1000 in every cell."""
    rows = []
    for i, arch in enumerate(archs):
        for seed in range(seeds):
            for rho in (0.8, 0.9):
                for alpha in (1.0, 2.0, 3.0):
                    for depth in (1, 2):
                        bias = i + seed / 10 + alpha / 100 + depth / 1000
                        rows.append({"arch": arch, "seed": seed, "rho_s": rho, "alpha_s": alpha, "depth": depth,
                                     "bias": bias, "reliance_model": bias - 1, "reliance_lda": -1.0 - seed,
                                     "acc_model": 0.9, "acc_lda": 0.91})
    return pd.DataFrame(rows)


def test_grid_replicates_give_one_value_per_seed_for_each_arch() -> None:
    out = sc.grid_replicates(_fake_sweep(["linear", "relu", "tanh", "mlp_linear"]))
    pooled = 0.02 + 0.0015  # mean α_s / 100 + mean depth / 1000
    np.testing.assert_allclose(out["C1.bias_linear"], [pooled, pooled + 0.1, pooled + 0.2])
    np.testing.assert_allclose(out["C3.bias_mlp_linear"], [3 + pooled, 3.1 + pooled, 3.2 + pooled])
    assert set(out) >= {"C1.bias_relu", "C1.bias_tanh", "C1.acc_lda", "C1.acc_model_relu"}
    assert all(len(v) == 3 for v in out.values())


def test_grid_replicates_refuse_arches_with_different_seeds() -> None:
    df = _fake_sweep(["linear", "relu", "tanh", "mlp_linear"])
    with pytest.raises(ValueError, match="one seed list"):
        sc.grid_replicates(df[~((df.arch == "tanh") & (df.seed == 2))])


def test_depth_replicates_read_the_slope_and_the_c2_cell_per_seed() -> None:
    out = sc.depth_replicates(_fake_sweep(["relu"]), rho_s=0.8, alpha_s=3.0)
    np.testing.assert_allclose(out["C3.depth_slope"], [0.001] * 3)
    np.testing.assert_allclose(out["C2.reliance_lda"], [-1.0, -2.0, -3.0])
    np.testing.assert_allclose(out["C2.bias_deep"], [0.03 + 0.002 + s / 10 for s in range(3)])
    assert {"C3.bias_depth1", "C3.bias_depth2", "C2.reliance_deep"} <= set(out)
    with pytest.raises(ValueError, match="one row per seed"):
        sc.seed_cell(_fake_sweep(["relu"]), "bias", rho_s=0.8)


def test_kernel_and_image_replicates_pair_each_seed() -> None:
    kern = _fake_sweep(["kernel_linear", "kernel_ntk_relu", "kernel_arccos1"])
    kern = kern[kern.depth == 1]
    out = sc.kernel_replicates(kern, min_alpha=2.0)
    np.testing.assert_allclose(out["C5.kernel_ntk_alpha_slope"], [0.01] * 3)
    np.testing.assert_allclose(out["C5.bias_kernel_ntk"], [1.026 + s / 10 for s in range(3)])
    img = pd.DataFrame({"footprint_ratio": [1, 1, 5, 5], "seed": [0, 1, 0, 1], "bias": [0.0, 0.1, 0.4, 0.3],
                        "acc_model": 0.9, "acc_lda": 0.9})
    controls = pd.DataFrame({"feature": ["core", "core", "shortcut", "shortcut"], "seed": [1, 0, 0, 1],
                             "acc_model": [0.8, 0.9, 0.7, 0.6]})
    out = sc.image_replicates(img, controls)
    np.testing.assert_allclose(out["C4.bias_max_ratio"], [0.4, 0.3])
    np.testing.assert_allclose(out["C4.bias_ratio_min"], [0.0, 0.1])
    np.testing.assert_allclose(out["C4.ratio_slope"], [0.1, 0.05])
    np.testing.assert_allclose(out["C4.control_core_acc"], [0.9, 0.8])
    with pytest.raises(ValueError, match="one seed list"):
        sc.image_replicates(img, controls[controls.seed == 0])


def test_bayes_weights_closed_form_and_exact_symmetry() -> None:
    w = sc.bayes_weights(0.7, 0.9, 0.3)
    mu = [sc.latent_mean(0.7), sc.latent_mean(0.9)]
    np.testing.assert_allclose(w, np.linalg.solve(sc.latent_covariance(0.3), mu))
    w_tie = sc.bayes_weights(0.9, 0.9, 0.0)
    assert w_tie[0] == w_tie[1]  # bit-identical: tie probes are not decided by rounding
    with pytest.raises(ValueError, match="sigma_sc"):
        sc.bayes_weights(0.9, 0.9, 1.0)
