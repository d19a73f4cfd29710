"""cliplab.sharpness: definitions, invariances, exact restore, and one regression test per reference defect."""

from __future__ import annotations

import inspect
import math
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from scipy.optimize import minimize
from torch import nn

from cliplab.sharpness import measures as sh, separable_toy
from cliplab.sharpness.measures import SharpnessConfig, sharpness
from cliplab.sharpness.analysis import tau_by_factor
from cliplab.stats import kendall_tau

torch.set_num_threads(1)

N, M = 128, 32  # 4 fixed batches


def _blobs(seed: int = 0, n: int = 256, d: int = 10, k: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    centres = 2.0 * torch.randn(k, d, generator=g)
    y = torch.arange(n) % k
    x = centres[y] + torch.randn(n, d, generator=g)
    return x, y


def _mlp(bias: bool = False, seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)  # module init only; every sharpness draw uses its own Generator
    return nn.Sequential(nn.Linear(10, 32, bias=bias), nn.ReLU(), nn.Linear(32, 32, bias=bias), nn.ReLU(),
                         nn.Linear(32, 3, bias=bias))


def _train(model: nn.Module, x: torch.Tensor, y: torch.Tensor, steps: int = 100, lr: float = 0.1) -> nn.Module:
    """Plain full-batch GD (torch.optim's first step imports dynamo, ~5 s)."""
    params = list(model.parameters())
    for _ in range(steps):
        grads = torch.autograd.grad(F.cross_entropy(model(x), y), params)
        with torch.no_grad():
            for p, g in zip(params, grads):
                p -= lr * g
    return model


@pytest.fixture(scope="module")
def data() -> tuple[torch.Tensor, torch.Tensor]:
    return _blobs()


@pytest.fixture(scope="module")
def trained(data: tuple[torch.Tensor, torch.Tensor]) -> nn.Sequential:
    """A bias-free (positively homogeneous) ReLU MLP fitted to 100 % training accuracy."""
    model = _train(_mlp(bias=False), *data)
    assert (model(data[0]).argmax(1) == data[1]).all()
    return model


def cfg(**kw: object) -> SharpnessConfig:
    base = dict(m=M, n_examples=N, n_iters=10, n_samples=8, normalize_logits=False)
    base.update(kw)
    return SharpnessConfig(**base)  # type: ignore[arg-type]


ALL_KINDS = [("worst", "linf"), ("worst", "l2"), ("average", "linf"), ("average", "l2")]


# ------------------------------------------------------------------------------------------ basic pieces


def test_config_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="kind"):
        SharpnessConfig(kind="best")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="rho"):
        SharpnessConfig(rho=0.0)
    with pytest.raises(ValueError, match="multiple"):
        SharpnessConfig(n_examples=100, m=32)
    with pytest.raises(ValueError, match="rand_init"):
        SharpnessConfig(n_restarts=3)
    with pytest.raises(ValueError, match="regex"):
        SharpnessConfig(param_filter="(")
    with pytest.raises(TypeError, match="param_filter"):
        SharpnessConfig(param_filter=3)  # type: ignore[arg-type]


def test_sharpness_rejects_bad_data(trained: nn.Module, data: tuple) -> None:
    x, y = data
    with pytest.raises(ValueError, match="only 256"):
        sharpness(trained, (x, y), cfg(n_examples=512, m=32))
    with pytest.raises(TypeError, match="pair"):
        sharpness(trained, [(x, y, y)], cfg())
    with pytest.raises(ValueError, match="selects no parameter"):
        sharpness(trained, (x, y), cfg(param_filter="nonexistent"))
    with pytest.raises(TypeError, match="Module"):
        sharpness(lambda t: t, (x, y), cfg())  # type: ignore[arg-type]


def test_fixed_batches_are_the_first_n_in_order(data: tuple) -> None:
    x, y = data
    batches = sh.fixed_batches(x, y, 96, 32)
    assert len(batches) == 3 and all(len(b[0]) == 32 for b in batches)
    assert torch.equal(torch.cat([b[0] for b in batches]), x[:96])
    assert torch.equal(torch.cat([b[1] for b in batches]), y[:96])
    with pytest.raises(ValueError, match="multiple"):
        sh.fixed_batches(x, y, 100, 32)


def test_logit_normalize_zero_mean_unit_norm_scale_invariant() -> None:
    f = torch.randn(50, 7, generator=torch.Generator().manual_seed(1)) * 5
    z = sh.logit_normalize(f)
    torch.testing.assert_close(z.mean(1), torch.zeros(50), atol=1e-6, rtol=0)
    torch.testing.assert_close(z.norm(dim=1), torch.ones(50))
    torch.testing.assert_close(sh.logit_normalize(3.7 * f + 2.0), z)
    assert torch.equal(sh.logit_normalize(torch.ones(2, 4)), torch.zeros(2, 4))  # no NaN for constant rows
    torch.testing.assert_close(sh.logit_normalize(f.t(), dim=0), z.t())  # class-major layout, same values
    for dim in (-1, 0):  # worst-case ascent differentiates through it: finite gradient for constant rows too
        const = torch.ones(4, 4, requires_grad=True)
        (grad,) = torch.autograd.grad(sh.logit_normalize(const, dim=dim).sum(), const)
        assert torch.isfinite(grad).all()


def test_apgd_checkpoints_match_the_card() -> None:
    assert [c for c in sh.apgd_checkpoints(20) if c < 20] == [5, 9, 12, 15, 16, 18, 19]


def test_ellipsoid_projection_is_exact() -> None:
    rng = np.random.default_rng(0)
    # equal scales: the ellipsoid is a ball of radius ρc and the projection a rescaling
    u = torch.tensor(rng.standard_normal(20))
    z = sh.project_ellipsoid([u], [torch.full((20,), 0.5, dtype=torch.float64)], rho=0.3)[0]
    torch.testing.assert_close(z, u * (0.3 * 0.5 / u.norm()), rtol=1e-7, atol=0)
    # general scales: compare with an independent constrained minimiser
    u, c = rng.standard_normal(6) * 3, rng.uniform(0.1, 2.0, 6)
    ours = sh.project_ellipsoid([torch.tensor(u)], [torch.tensor(c)], rho=0.7)[0].numpy()
    ref = minimize(lambda zz: ((zz - u) ** 2).sum(), x0=np.zeros(6), method="SLSQP",
                   constraints=[{"type": "ineq", "fun": lambda zz: 0.49 - ((zz / c) ** 2).sum()}],
                   options={"ftol": 1e-14, "maxiter": 500}).x
    np.testing.assert_allclose(ours, ref, atol=1e-5)
    assert np.sqrt(((ours / c) ** 2).sum()) <= 0.7
    # a point inside is returned unchanged
    inside = torch.tensor(c * 0.01)
    assert torch.equal(sh.project_ellipsoid([inside], [torch.tensor(c)], rho=0.7)[0], inside)


def test_ellipsoid_projection_with_zero_scales_masks_them() -> None:
    u = torch.tensor([3.0, -2.0, 5.0, 1.0], dtype=torch.float64)
    c = torch.tensor([1.0, 0.0, 2.0, 0.0], dtype=torch.float64)
    z = sh.project_ellipsoid([u], [c], rho=0.5)[0]
    assert torch.isfinite(z).all() and z[1] == 0 and z[3] == 0
    assert math.isclose(float(((z[[0, 2]] / c[[0, 2]]) ** 2).sum().sqrt()), 0.5, rel_tol=1e-6)


def test_warm_started_ellipsoid_equals_a_fresh_projection() -> None:
    """The ascent reuses one Ellipsoid, whose Newton starts from the last multiplier: a start left or right of
    the new root must give the same point as a projection from μ = 0, on the boundary to ~tol."""
    g = torch.Generator().manual_seed(0)
    c = 10 ** (4 * torch.rand(500, generator=g, dtype=torch.float64) - 4)  # |w| over four decades, as in a net
    c[::50] = 0.0
    proj = sh.Ellipsoid(c, rho=0.3)
    u = torch.randn(500, generator=g, dtype=torch.float64) * c
    # the multiplier moves both ways; from far right, Newton leaves the bracket and bisection may stay right
    for factor in (1.0, 1.01, 0.99, 10.0, 0.2, 3.0, 1.0, 100.0, 0.5, 0.05, 1.0):
        v = u * factor
        warm, fresh = proj(v), sh.project_ellipsoid([v], [c], rho=0.3)[0]
        torch.testing.assert_close(warm, fresh, rtol=1e-5, atol=1e-9)
        scaled = float((warm[c > 0] / c[c > 0]).norm())
        assert 0.3 * (1 - 1e-5) <= scaled <= 0.3 and bool((warm[c == 0] == 0).all())


# ------------------------------------------------------------------------------------------ restore, determinism


@pytest.mark.parametrize("kind,norm", ALL_KINDS)
def test_model_restored_exactly(kind: str, norm: str, data: tuple) -> None:
    torch.manual_seed(3)
    model = nn.Sequential(nn.Linear(10, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 3))
    model(data[0])  # give BatchNorm non-trivial running stats (train mode)
    model[3].eval()  # a mixed train/eval state must come back as it was
    model[0].weight.grad = torch.full_like(model[0].weight, 0.25)
    model[3].bias.requires_grad_(False)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    grad_before = model[0].weight.grad
    sharpness(model, data, cfg(kind=kind, norm=norm, rho=0.05, rand_init=True), seed=1)
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # bitwise, buffers included
    assert [m.training for m in model] == [True, True, True, False]
    assert model[0].weight.grad is grad_before and torch.equal(grad_before, torch.full_like(grad_before, 0.25))
    assert model[0].bias.grad is None and model[3].weight.grad is None
    assert not model[3].bias.requires_grad and model[0].weight.requires_grad


def test_model_restored_after_exception(trained: nn.Module, data: tuple) -> None:
    before = {k: v.clone() for k, v in trained.state_dict().items()}
    trained.train()
    calls = {"n": 0}

    def flaky(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        calls["n"] += 1
        if calls["n"] == 5:
            raise RuntimeError("boom")
        return F.cross_entropy(logits, y)

    with pytest.raises(RuntimeError, match="boom"):
        sharpness(trained, data, cfg(kind="worst", norm="l2", adaptive=True, rho=0.1), loss_fn=flaky)
    assert trained.training and all(m.training for m in trained)
    assert all(torch.equal(before[k], v) for k, v in trained.state_dict().items())
    assert all(p.grad is None for p in trained.parameters())
    trained.eval()


@pytest.mark.parametrize("kind,norm", ALL_KINDS)
def test_deterministic_under_seed(kind: str, norm: str, trained: nn.Module, data: tuple) -> None:
    c = cfg(kind=kind, norm=norm, rho=0.05, rand_init=True, n_restarts=2)
    a = sharpness(trained, data, c, seed=7).per_batch
    b = sharpness(trained, data, c, seed=7).per_batch
    pd.testing.assert_frame_equal(a, b, check_exact=True)
    other = sharpness(trained, data, c, seed=8).per_batch
    assert not np.array_equal(a["perturbed_loss"].to_numpy(), other["perturbed_loss"].to_numpy())


# ------------------------------------------------------------------------------------------ constraints, ordering


@pytest.mark.parametrize("norm", ["linf", "l2"])
@pytest.mark.parametrize("adaptive", [True, False])
def test_worst_case_delta_satisfies_constraint(norm: str, adaptive: bool, trained: nn.Module,
                                               data: tuple) -> None:
    rho = 0.05 if norm == "linf" else 0.5
    res = sharpness(trained, data, cfg(kind="worst", norm=norm, adaptive=adaptive, rho=rho), return_deltas=True)
    params = dict(trained.named_parameters())
    assert res.deltas is not None and len(res.deltas) == N // M
    for delta in res.deltas:
        scaled = torch.cat([(delta[n] / (params[n].detach().abs() if adaptive else 1.0)).flatten()
                            for n in delta]).double()
        value = float(scaled.abs().max() if norm == "linf" else scaled.norm())
        assert value <= rho * (1 + 1e-5)
        assert value >= 0.5 * rho  # the ascent did move to the boundary region
    assert (res.per_batch["loss_sharpness"] > 0).all()


def test_worst_case_at_least_average_case_at_least_zero(trained: nn.Module, data: tuple) -> None:
    for adaptive in (True, False):
        rho = 0.05 if adaptive else 0.02
        worst = sharpness(trained, data, cfg(kind="worst", norm="linf", adaptive=adaptive, rho=rho))
        avg = sharpness(trained, data, cfg(kind="average", norm="linf", adaptive=adaptive, rho=rho, n_samples=32))
        assert avg.loss_sharpness >= -1e-4
        assert (worst.per_batch["loss_sharpness"] >= avg.per_batch["loss_sharpness"]).all()
        assert worst.loss_sharpness > 2 * max(avg.loss_sharpness, 0)


def test_error_sharpness_is_a_difference_of_error_rates(data: tuple) -> None:
    model = _mlp(bias=True)  # untrained: large error changes under a big perturbation
    for kind, norm in ALL_KINDS:
        res = sharpness(model, data, cfg(kind=kind, norm=norm, adaptive=False, rho=1.0))
        pb = res.per_batch
        assert pb["error_sharpness"].between(-1, 1).all() and -1 <= res.error_sharpness <= 1
        assert pb["error"].between(0, 1).all() and pb["perturbed_error"].between(0, 1).all()
        np.testing.assert_allclose(pb["error_sharpness"], pb["perturbed_error"] - pb["error"])


def test_regression_without_error_fn(data: tuple) -> None:
    model = nn.Linear(10, 1)
    x, y = data
    res = sharpness(model, (x, y.float()[:, None]), cfg(kind="worst", norm="l2", rho=0.1), loss_fn=F.mse_loss,
                    error_fn=None)
    assert math.isnan(res.error_sharpness) and res.loss_sharpness > 0


# ------------------------------------------------------------------------------------------ vectorised == loop


def _cnn(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Unflatten(1, (1, 10)), nn.Conv1d(1, 4, 3, padding=1), nn.BatchNorm1d(4), nn.ReLU(),
                         nn.Flatten(), nn.Linear(40, 3))


@pytest.mark.parametrize("norm", ["l2", "linf"])
@pytest.mark.parametrize("make", [lambda: _mlp(bias=True), _cnn])
def test_vectorised_average_equals_loop(norm: str, make: object, data: tuple) -> None:
    model = make()  # type: ignore[operator]
    model.train()
    model(data[0])  # BatchNorm running stats
    for normalize in (False, True):
        c = cfg(kind="average", norm=norm, rho=0.1, n_samples=6, normalize_logits=normalize)
        vec = sharpness(model, data, c, seed=3).per_batch
        loop = sharpness(model, data, replace(c, vectorize=False), seed=3).per_batch
        chunked = sharpness(model, data, replace(c, chunk_size=4), seed=3).per_batch
        np.testing.assert_allclose(vec["perturbed_loss"], loop["perturbed_loss"], rtol=1e-5, atol=1e-7)
        np.testing.assert_array_equal(vec["perturbed_error"], loop["perturbed_error"])
        np.testing.assert_allclose(chunked["perturbed_loss"], vec["perturbed_loss"], rtol=1e-6)


def test_vectorised_average_takes_the_stacked_mlp_path_only_for_plain_mlps(data: tuple,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    real = sh.stacked_forward

    def counting(plan: object, params: dict, x: torch.Tensor) -> torch.Tensor:
        calls.append(next(iter(params.values())).shape[0])
        return real(plan, params, x)  # type: ignore[arg-type]

    monkeypatch.setattr(sh, "stacked_forward", counting)
    c = cfg(kind="average", norm="l2", rho=0.1, n_samples=6, chunk_size=4)
    sharpness(_mlp(bias=True), data, c, seed=3)
    assert calls == [4, 2] * (N // M)  # every batch, in chunks of chunk_size samples
    calls.clear()
    sharpness(_cnn(), data, c, seed=3)
    assert calls == []


def test_vectorised_average_with_a_custom_loss_and_error_equals_loop(data: tuple) -> None:
    model = _mlp(bias=True)

    def smoothed(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits, y, label_smoothing=0.1)

    def top2_error(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return (logits.topk(2, dim=-1).indices != y[:, None]).all(dim=-1).float().mean()

    c = cfg(kind="average", norm="l2", rho=0.3, n_samples=5, normalize_logits=True)
    for loss_fn, error_fn in ((smoothed, sh.top1_error), (F.cross_entropy, top2_error), (F.cross_entropy, None)):
        vec = sharpness(model, data, c, loss_fn=loss_fn, error_fn=error_fn, seed=1).per_batch
        loop = sharpness(model, data, replace(c, vectorize=False), loss_fn=loss_fn, error_fn=error_fn,
                         seed=1).per_batch
        np.testing.assert_allclose(vec["perturbed_loss"], loop["perturbed_loss"], rtol=1e-5, atol=1e-7)
        np.testing.assert_array_equal(vec["perturbed_error"], loop["perturbed_error"])
    assert np.isnan(vec["perturbed_error"]).all()


def test_stacked_cross_entropy_equals_one_call_per_logit_set() -> None:
    g = torch.Generator().manual_seed(0)
    logits, y = 5 * torch.randn(7, 33, 10, generator=g), torch.randint(0, 10, (33,), generator=g)
    for normalize in (False, True):
        ours = sh.stacked_cross_entropy(logits, y, normalize)
        ref = torch.stack([F.cross_entropy(sh.logit_normalize(z) if normalize else z, y) for z in logits])
        torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-7)


def test_flat_params_round_trip_shares_storage() -> None:
    params = {"a.weight": torch.randn(3, 4), "a.bias": torch.randn(3), "b": torch.randn(2, 2, 2)}
    flat = sh.FlatParams(params)
    vec = flat.flatten(params)
    assert vec.shape == (12 + 3 + 8,)
    views = flat.split(vec)
    assert list(views) == list(params) and all(torch.equal(views[n], params[n]) for n in params)
    vec.zero_()
    assert all(float(v.abs().sum()) == 0.0 for v in views.values())  # views, not copies: gradients flow


def test_average_noise_has_the_card_distribution() -> None:
    scale = {"w": torch.full((200, 50), 2.0)}
    gen = torch.Generator().manual_seed(0)
    gauss = sh.average_noise(scale, cfg(kind="average", norm="l2", rho=0.1, n_samples=4), gen)["w"]
    unif = sh.average_noise(scale, cfg(kind="average", norm="linf", rho=0.1, n_samples=4), gen)["w"]
    assert gauss.shape == (4, 200, 50)
    assert abs(float(gauss.std()) - 0.2) < 0.005  # N(0, ρ²c²), no 1/√d
    assert float(unif.abs().max()) <= 0.2 and float(unif.abs().max()) > 0.199
    assert abs(float(unif.std()) - 0.2 / math.sqrt(3)) < 0.005


def test_unit_noise_into_out_draws_in_scale_order_and_checks_shapes() -> None:
    scale = {"a": torch.ones(3, 2), "b": torch.ones(5)}
    config = cfg(kind="average", norm="l2", n_samples=4)
    fresh = sh.unit_noise(scale, config, torch.Generator().manual_seed(1))
    reversed_out = {"b": torch.empty(4, 5), "a": torch.empty(4, 3, 2)}
    into = sh.unit_noise(scale, config, torch.Generator().manual_seed(1), out=reversed_out)
    assert all(into[n] is reversed_out[n] for n in scale)  # drawn in place, no new tensors
    assert all(torch.equal(into[n], fresh[n]) for n in scale)  # same stream whatever order out was built in
    with pytest.raises(ValueError, match=r"out\['b'\] must have shape \(4, 5\)"):
        sh.unit_noise(scale, config, torch.Generator(), out={"a": torch.empty(4, 3, 2), "b": torch.empty(3, 5)})
    with pytest.raises(ValueError, match=r"out\['a'\].*got nothing"):
        sh.unit_noise(scale, config, torch.Generator(), out={"b": torch.empty(4, 5)})


# ------------------------------------------------------------------------------------------ invariances


def _rescale_neurons(model: nn.Sequential, seed: int) -> nn.Sequential:
    """Row i of W_l × a_i and column i of W_{l+1} ÷ a_i for both hidden layers (function unchanged)."""
    out = _mlp(bias=False)
    out.load_state_dict(model.state_dict())
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for l_in, l_out in ((0, 2), (2, 4)):
            a = torch.exp(torch.empty(out[l_in].weight.shape[0]).uniform_(-1.6, 1.6, generator=g))
            out[l_in].weight.mul_(a[:, None])
            out[l_out].weight.div_(a[None, :])
    return out


@pytest.mark.parametrize("normalize", [False, True])
def test_adaptive_sharpness_invariant_to_neuron_rescaling(normalize: bool, trained: nn.Sequential,
                                                          data: tuple) -> None:
    other = _rescale_neurons(trained, seed=5)
    torch.testing.assert_close(other(data[0]), trained(data[0]), rtol=1e-4, atol=1e-4)
    for kind, norm, rho in (("average", "l2", 0.5), ("average", "linf", 1.0), ("worst", "linf", 0.1)):
        c = cfg(kind=kind, norm=norm, rho=rho, adaptive=True, normalize_logits=normalize)
        a, b = sharpness(trained, data, c, seed=2), sharpness(other, data, c, seed=2)
        assert a.loss_sharpness > 1e-4
        assert b.loss_sharpness == pytest.approx(a.loss_sharpness, rel=2e-3), (kind, norm)
        cs = cfg(kind=kind, norm=norm, rho=rho / 10, adaptive=False, normalize_logits=normalize)
        sa, sb = sharpness(trained, data, cs, seed=2), sharpness(other, data, cs, seed=2)
        assert abs(sb.loss_sharpness - sa.loss_sharpness) > 0.2 * abs(sa.loss_sharpness), (kind, norm)


def _scaled(model: nn.Sequential, alpha: float) -> nn.Sequential:
    out = _mlp(bias=False)
    out.load_state_dict({k: v * alpha for k, v in model.state_dict().items()})
    return out


def test_raw_sharpness_vanishes_with_weight_scale_normalized_does_not(trained: nn.Sequential,
                                                                      data: tuple) -> None:
    for kind, norm, rho in (("average", "l2", 0.5), ("worst", "linf", 0.1)):
        raw = [sharpness(_scaled(trained, a), data, cfg(kind=kind, norm=norm, rho=rho), seed=0).loss_sharpness
               for a in (1.0, 4.0, 16.0)]
        assert raw[0] > 1e-4 and raw[1] < raw[0] and raw[2] < 1e-6 * raw[0]
        c = cfg(kind=kind, norm=norm, rho=rho, normalize_logits=True)
        normed = [sharpness(_scaled(trained, a), data, c, seed=0).loss_sharpness for a in (1.0, 4.0, 16.0)]
        assert normed[0] > 1e-4
        np.testing.assert_allclose(normed, normed[0], rtol=1e-3)


# ------------------------------------------------------------------------------------------ reference defects


def test_defect1_random_init_and_restarts_work(trained: nn.Module, data: tuple) -> None:
    for norm in ("linf", "l2"):
        c = cfg(kind="worst", norm=norm, rho=0.05 if norm == "linf" else 0.5, rand_init=True, n_restarts=3,
                n_iters=1)
        res = sharpness(trained, data, c, seed=0, return_deltas=True)
        assert np.isfinite(res.loss_sharpness) and res.loss_sharpness >= 0
        assert (res.per_batch["scaled_delta_norm"] <= c.rho * (1 + 1e-5)).all()
    # the random start is used: from it, one step lands elsewhere than from zero
    zero = sharpness(trained, data, cfg(kind="worst", norm="l2", rho=0.5, n_iters=1), return_deltas=True)
    rand = sharpness(trained, data, cfg(kind="worst", norm="l2", rho=0.5, n_iters=1, rand_init=True),
                     return_deltas=True)
    assert zero.deltas is not None and rand.deltas is not None
    assert not torch.equal(zero.deltas[0]["0.weight"], rand.deltas[0]["0.weight"])


def test_defect2_runs_on_cpu_without_hardcoded_device(trained: nn.Module, data: tuple) -> None:
    source = inspect.getsource(sh)
    assert ".cuda(" not in source and "'cuda'" not in source and '"cuda"' not in source
    batches = sh.fixed_batches(*data, N, M)  # also accepts pre-cut batches
    a = sharpness(trained, batches, cfg(kind="worst", norm="linf", rho=0.05))
    b = sharpness(trained, data, cfg(kind="worst", norm="linf", rho=0.05))
    assert a.loss_sharpness == b.loss_sharpness


def test_defect3_step_reduction_resets_delta_to_best_point(data: tuple) -> None:
    model = _mlp(bias=True, seed=4)
    x, y = data
    events: list[dict] = []
    c = cfg(kind="worst", norm="l2", adaptive=True, rho=2.0, n_iters=20, m=N)
    sharpness(model, (x, y), c, trace=events.append)
    resets = [e for e in events if e["reset"]]
    assert resets, "no step-size reduction happened; the test needs one"
    base = dict(model.named_parameters())
    for e in resets:
        # the next ascent step starts from the best point: evaluating the model there gives the best loss
        params = {n: base[n].detach() + e["delta"][n] for n in base}
        loss = float(F.cross_entropy(torch.func.functional_call(model, params, (x[:N],)), y[:N]))
        assert loss == pytest.approx(e["best_loss"], rel=1e-6)
        assert all(torch.equal(e["delta"][n], e["best_delta"][n]) for n in base)


def test_defect4_zero_weights_adaptive_l2(trained: nn.Sequential, data: tuple) -> None:
    model = _mlp(bias=False)
    model.load_state_dict(trained.state_dict())
    with torch.no_grad():
        model[2].weight[:, :8] = 0.0  # 8 pruned input columns of the middle layer
    rho = 0.5
    res = sharpness(model, data, cfg(kind="worst", norm="l2", rho=rho), return_deltas=True)
    assert np.isfinite(res.loss_sharpness) and res.loss_sharpness > 0
    params = dict(model.named_parameters())
    for delta in res.deltas or []:
        assert torch.equal(delta["2.weight"][:, :8], torch.zeros(32, 8))  # c = |w| = 0: never perturbed
        mask = {n: params[n].detach() != 0 for n in delta}
        scaled = torch.cat([(delta[n][mask[n]] / params[n].detach()[mask[n]].abs()).flatten() for n in delta])
        assert float(scaled.double().norm()) <= rho * (1 + 1e-5)  # the projection was applied …
        assert float(scaled.double().norm()) >= 0.9 * rho  # … and the iterate sits on the ellipsoid
    eps = 1e-2  # |w| + eps: zero weights do get a budget of ρ·eps
    res_eps = sharpness(model, data, cfg(kind="worst", norm="l2", rho=rho, adaptive_eps=eps), return_deltas=True)
    d = res_eps.deltas[0]  # type: ignore[index]
    assert d["2.weight"][:, :8].abs().max() > 0
    scaled = torch.cat([(d[n] / (params[n].detach().abs() + eps)).flatten() for n in d]).double()
    assert float(scaled.norm()) <= rho * (1 + 1e-5)


def test_defect6_parameter_filter_restricts_the_perturbation(trained: nn.Sequential, data: tuple) -> None:
    c = cfg(kind="worst", norm="l2", rho=0.5, param_filter=r"^2\.weight$")
    res = sharpness(trained, data, c, return_deltas=True)
    assert res.deltas is not None and all(set(d) == {"2.weight"} for d in res.deltas)
    assert res.n_perturbed == 32 * 32
    by_pred = sharpness(trained, data, cfg(kind="worst", norm="l2", rho=0.5,
                                           param_filter=lambda n, p: n == "2.weight"))
    assert by_pred.loss_sharpness == res.loss_sharpness

    # the same number on a model in which only that layer is a parameter (the others are buffers)
    class OnlyMiddle(nn.Module):
        def __init__(self, src: nn.Sequential) -> None:
            super().__init__()
            self.register_buffer("w0", src[0].weight.detach().clone())
            self.w2 = nn.Parameter(src[2].weight.detach().clone())
            self.register_buffer("w4", src[4].weight.detach().clone())

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return F.linear(F.relu(F.linear(F.relu(F.linear(x, self.w0)), self.w2)), self.w4)

    alone = sharpness(OnlyMiddle(trained), data, cfg(kind="worst", norm="l2", rho=0.5))
    assert alone.loss_sharpness == pytest.approx(res.loss_sharpness, rel=1e-5)
    for kind, norm in ALL_KINDS[2:]:
        f = sharpness(trained, data, cfg(kind=kind, norm=norm, rho=0.1, param_filter=r"^2\.weight$"), seed=1)
        g = sharpness(OnlyMiddle(trained), data, cfg(kind=kind, norm=norm, rho=0.1), seed=1)
        assert g.loss_sharpness == pytest.approx(f.loss_sharpness, rel=1e-5)


def test_no_norm_or_bias_filter(data: tuple) -> None:
    model = nn.Sequential(nn.Linear(10, 16), nn.LayerNorm(16), nn.Linear(16, 3))
    chosen = sh.select_parameters(model, sh.no_norm_or_bias)
    assert set(chosen) == {"0.weight", "2.weight"}


def test_layerwise_sharpness_matches_single_filters(trained: nn.Sequential, data: tuple) -> None:
    groups = sh.groups_by_prefix(trained)
    assert list(groups) == ["0", "2", "4"]
    c = cfg(kind="average", norm="l2", rho=0.1)
    table = sh.layerwise_sharpness(trained, data, c, groups, seed=4)
    assert list(table["group"]) == ["0", "2", "4"]
    assert list(table["n_params"]) == [320, 1024, 96]
    for _, row in table.iterrows():
        single = sharpness(trained, data, cfg(kind="average", norm="l2", rho=0.1, param_filter=groups[row.group]),
                           seed=4)
        assert row.loss_sharpness == single.loss_sharpness


# ------------------------------------------------------------------------------------------ closed forms


class _TwoLogitLinear(nn.Module):
    """f = ⟨w, x⟩ read as logits (−f/2, f/2): cross-entropy on label (y+1)/2 is log(1 + exp(−y f))."""

    def __init__(self, w: np.ndarray) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.tensor(w))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = x @ self.w
        return torch.stack([-f / 2, f / 2], dim=1)


@pytest.mark.parametrize("definition,norm,adaptive,rho,rtol", [("adaptive_linf", "linf", True, 0.3, 1e-6),
                                                               ("adaptive_l2", "l2", True, 0.5, 5e-3),
                                                               ("standard_l2", "l2", False, 0.5, 1e-6)])
def test_m1_worst_case_matches_linear_closed_form(definition: str, norm: str, adaptive: bool, rho: float,
                                                  rtol: float) -> None:
    """For a linear model and m = 1 the maximiser is known; L∞ and standard L2 ascent reach it exactly, the
    adaptive L2 ascent (step along g⊙c, Euclidean projection onto the ellipsoid) gets within 0.5 % in 20 steps."""
    toy = separable_toy.make_separable_toy()
    x, y, w = toy.x_train[:16], toy.y_train[:16], 0.1 * toy.w  # α = 0.1: losses far from 0 and from log 2
    closed = [separable_toy.m1_worst_case_sharpness(x[i:i + 1], y[i:i + 1], w, rho, definition) for i in range(16)]
    expected = np.array([worst - loss for loss, worst in closed])
    model = _TwoLogitLinear(w)
    labels = torch.tensor((y > 0).astype(np.int64))
    res = sharpness(model, (torch.tensor(x), labels), SharpnessConfig(
        kind="worst", norm=norm, adaptive=adaptive, rho=rho, m=1, n_examples=16, normalize_logits=False))
    found = res.per_batch["loss_sharpness"].to_numpy()
    np.testing.assert_allclose(res.per_batch["loss"], [loss for loss, _ in closed], rtol=1e-9)
    assert (found <= expected * (1 + 1e-6)).all()  # no point beats the true maximum …
    np.testing.assert_allclose(found, expected, rtol=rtol)  # … and the ascent reaches it


def test_separable_toy_reproduces_the_card() -> None:
    toy = separable_toy.make_separable_toy()
    assert np.linalg.norm(toy.w) == pytest.approx(6.2469, abs=1e-4)
    assert separable_toy.logistic_loss(toy.y_train * (toy.x_train @ toy.w)) == pytest.approx(0.0020, abs=5e-5)
    curve = separable_toy.scale_curve(toy, rho=0.5)
    assert curve["alpha"].iloc[10] == pytest.approx(0.12, abs=5e-3)
    assert curve["sharpness"].iloc[10] == pytest.approx(0.1379, abs=5e-5)
    assert curve["alpha"].iloc[15] == pytest.approx(1.27, abs=5e-3)
    assert curve["sharpness"].iloc[15] == pytest.approx(0.0208, abs=5e-5)
    assert (curve.loc[curve["alpha"] >= 13.8, "sharpness"] < 5e-5).all()
    for definition in separable_toy.DEFINITIONS:
        normed = separable_toy.scale_curve(toy, rho=2.0, definition=definition, normalize_logits=True)
        if definition != "standard_l2":  # only the scale-relative sets give α-invariance
            assert normed["sharpness"].nunique() == 1


# ------------------------------------------------------------------------------------------ analysis


def test_tau_by_factor_recovers_opposite_signs() -> None:
    rows = []
    for lr in (0.1, 0.2, 0.4, 0.8):
        for aug in (0, 1, 2):
            for seed in (0, 1):
                rows.append({"lr": lr, "aug": aug, "seed": seed,
                             "sharp": 1 / lr + 10 * aug + 0.01 * seed,  # falls with lr, rises with aug
                             "err": 1 / lr - 10 * aug + 0.02 * seed})  # falls with lr and with aug
    df = pd.DataFrame(rows)
    out = tau_by_factor(df, "sharp", "err", ["lr", "aug", "seed"]).set_index("factor")
    assert out.loc["lr", "tau"] == pytest.approx(1.0)
    assert out.loc["aug", "tau"] == pytest.approx(-1.0)
    assert out.loc["seed", "tau"] == pytest.approx(1.0)
    assert out.loc["lr", "n_groups"] == 6 and out.loc["lr", "n_models"] == 24
    assert out.loc["all", "tau"] == pytest.approx(kendall_tau(df["sharp"], df["err"]))
    with pytest.raises(ValueError, match="not in the table"):
        tau_by_factor(df, "sharp", "missing", ["lr"])


def test_reference_momentum_reproduces_the_released_ascent_step_for_step() -> None:
    """Hand-computed: with a gradient of constant sign the linf box clips every z to ρ·c·s, so the released
    update δ_{k+1} = 0.75·z + 0.25·δ_{k−1} (δ_{−1} = δ_0 = 0) gives δ_k = t_k·ρ·c·s with
    t = 0.75, 0.75, 0.9375, 0.9375, 0.984375, then at the step-size reduction of iteration 4 the released code
    keeps its stale δ and history, so t_6 = 0.75 + 0.25·0.9375 (not 0.75 + 0.25·0.984375), and so on."""
    torch.manual_seed(0)
    model = nn.Linear(4, 2, bias=False)
    x = torch.rand(16, 4) + 0.1  # positive inputs and label 0: ∂L/∂W[0] < 0 and ∂L/∂W[1] > 0 everywhere
    y = torch.zeros(16, dtype=torch.long)
    assert sh.apgd_checkpoints(8)[:5] == [2, 4, 5, 6, 7]
    c = SharpnessConfig(kind="worst", norm="linf", adaptive=True, rho=0.1, n_iters=8, m=16, n_examples=16,
                        normalize_logits=False, momentum_form="reference")
    events: list[dict] = []
    sharpness(model, (x, y), c, trace=events.append)
    w = model.weight.detach()
    unit = 0.1 * w.abs() * torch.tensor([[-1.0], [1.0]])
    t = [0.75, 0.75, 0.9375, 0.9375, 0.984375, 0.984375, 0.99609375, 0.99609375]
    got = [e["delta"]["weight"] for e in events]
    for k, (tk, delta) in enumerate(zip(t, got)):
        torch.testing.assert_close(delta, tk * unit, rtol=1e-6, atol=0.0, msg=f"iterate {k + 1}")
    assert [e["reset"] for e in events] == [False, False, False, False, True, True, False, True]
    # the APGD form differs from the first step on: no momentum there, so δ_1 = z = ρ·c·s
    events.clear()
    sharpness(model, (x, y), replace(c, momentum_form="apgd"), trace=events.append)
    torch.testing.assert_close(events[0]["delta"]["weight"], unit, rtol=1e-6, atol=0.0)
