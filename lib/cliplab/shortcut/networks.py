"""Batched networks and sweeps: every (cell x seed) MLP of a sweep trained at once as one stacked network."""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, replace
from typing import Callable, Sequence

import numpy as np
import pandas as pd
import torch

from cliplab.core.threads import single_threaded
from cliplab.shortcut.framework import ShortcutConfig, ShortcutData, make_data
from cliplab.shortcut.reference import (
    accuracy,
    bayes_decision,
    fit_lda,
    hard_decision,
    reliance,
)

ARCHS: tuple[str, ...] = ("linear", "mlp_linear", "relu", "tanh")
RESULT_COLUMNS: tuple[str, ...] = (
    "arch", "depth", "rho_s", "alpha_s", "eta_c", "seed",
    "reliance_model", "reliance_lda", "reliance_bayes", "bias", "acc_model", "acc_lda",
)


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
            rows.append(result_row(cfg.arch, cfg.depth, data, rel, accuracy(hard_decision(test_out[i]), data.y_test), refs[i]))
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


def result_row(arch: str, depth: int, data: ShortcutData, rel: float, acc: float, ref: dict[str, float]) -> dict:
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
