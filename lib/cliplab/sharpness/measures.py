"""Sharpness measures of Andriushchenko et al. (ICML 2023), ported with the reference code's defects fixed.

Sharpness is how much a loss rises when the trained weights w0 are perturbed inside a set of radius ρ:

* **worst-case** (m-sharpness): for each fixed batch S_b, ``max_{‖δ⊘c‖_p ≤ ρ} L_b(w0+δ) − L_b(w0)``, found by
  an APGD-style ascent, averaged over batches (each batch gets its own δ);
* **average-case**: ``E_δ L_b(w0+δ) − L_b(w0)`` over K noise draws, δ = ρ·c⊙ε with ε ~ N(0, I) for ``"l2"``
  (coordinate-wise Gaussian, *not* a ball — as in the reference ``avg_l2``) or ε ~ U[−1, 1] for ``"linf"``.

The scale c is 1 (standard) or |w0| (adaptive, elementwise), which makes the adaptive sets equivariant under
neuron-wise rescaling. Error sharpness, err(w0+δ*) − err(w0), is read at the worst-loss point. Logits can be
normalised per example before the loss (``logit_normalize``), which removes the dependence on logit scale.

Differences from ``tml-epfl/sharpness-vs-generalization`` (``docs/papers/sharpness_vs_generalization.md`` §5), each with a regression test:

1. Random init works (uniform in the box, or uniform in the ellipsoid); restarts keep the best.
2. Device-agnostic: everything runs where the model's parameters live.
3. On a step-size reduction the iterate δ, the momentum history and the gradient are all reset to the best
   point (the reference reset the weights but kept a stale δ).
4. Adaptive scale c = |w0| + ``adaptive_eps``; coordinates with c = 0 are masked explicitly (never perturbed,
   left out of the norm), so exact zeros give no NaN and never skip the projection.
5. Momentum: the default is the published APGD form (Croce & Hein 2020, also the reference's docstring),
   ``δ ← P(δ + 0.75·(z − δ) + 0.25·(δ − δ_prev))`` = ``P(0.75 z + 0.5 δ − 0.25 δ_prev)``, with no momentum on
   the first step; the re-projection keeps iterates feasible. ``momentum_form="reference"`` reproduces the
   released ascent step for step: ``δ_{k+1} = 0.75 z + 0.25 δ_{k−1}`` (a convex combination, so no
   re-projection) from the very first step, with δ_{−1} = δ_0 (zero without random init, so the first iterate
   is 0.75 z), and on a step-size reduction only the gradient goes back to the best point while δ and its
   history stay where they were (the released code reloads the best weights but keeps its stale δ; defect 3
   is deliberately *not* fixed in this form). Regression test: a hand-computed eight-step example.
6. ``param_filter`` (regex on the parameter name, or a predicate) restricts the perturbation, for layer-wise
   sharpness or to exclude norm/bias parameters.

The model is never modified: perturbed weights are passed with ``torch.func.functional_call``, gradients are
taken with ``torch.autograd.grad`` (``param.grad`` untouched), and the previous train/eval flag of every module
is restored in a ``finally`` block. Measurement runs in ``eval()`` so BatchNorm uses its running statistics,
which are buffers and never perturbed.

Cost per batch and restart: worst-case ``n_iters`` forward+backward passes plus one forward (the loss at each
iterate comes from the same forward that gives the next gradient), with δ kept as one flat vector so the ascent
and projection cost a few tensor ops per step; average-case one batched forward of K perturbed models (one
GEMM per layer for an ``nn.Sequential`` MLP, ``cliplab.sharpness.stacked_mlp``; ``torch.func.vmap`` over the noise dimension
for any other model) or K forwards with ``vectorize=False``. The K·P Gaussian draws are the same in both and
bound the batched path's speed-up on CPU (≈ 2.5 ns each; 20–60 % of its time in ``benchmarks/bench_sharpness.py``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Literal

import pandas as pd
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call, vmap

from cliplab.sharpness.stacked_mlp import StackedMLPPlan, stacked_forward, stacked_mlp_plan

ParamFilter = str | Callable[[str, Tensor], bool] | None
LossFn = Callable[[Tensor, Tensor], Tensor]
Batch = tuple[Tensor, Tensor]
Params = dict[str, Tensor]

KINDS = ("worst", "average")
NORMS = ("linf", "l2")
MOMENTUM_FORMS = ("apgd", "reference")
STEP_SCHEDULES = ("apgd", "constant")


@dataclass(frozen=True)
class SharpnessConfig:
    """One sharpness definition and its optimiser/sampling settings (defaults: the reference CLI's).

    kind: "worst" (APGD ascent) or "average" (random noise). norm: "linf" (box / uniform noise) or "l2"
    (ellipsoid / Gaussian noise). adaptive: scale c = |w| + adaptive_eps instead of 1. rho: radius.
    n_iters: ascent steps (worst). n_samples: noise draws K per batch (average). m: batch size, n_examples:
    first-N points used when sharpness() gets raw (x, y). normalize_logits: per-example logit normalisation.
    n_restarts/rand_init: restarts need random init. momentum/momentum_form: see module docstring.
    step_schedule: "apgd" halves the step at the APGD checkpoints, "constant" never (plain ascent).
    param_filter: which parameters are perturbed (regex searched in the name, predicate, or None = all).
    vectorize/chunk_size: average-case batching over noise samples; chunk_size = noise samples per batched
    forward, None = automatic: for a plain MLP (``cliplab.sharpness.stacked_mlp``) as many as keep one layer's K·m
    activations within 2^18 floats (1 MiB), for any other model (vmap) max(1, 4096 // batch size); it bounds
    memory for large models, and values do not depend on it.
    """

    kind: Literal["worst", "average"] = "worst"
    norm: Literal["linf", "l2"] = "linf"
    adaptive: bool = True
    rho: float = 0.1
    n_iters: int = 20
    m: int = 128
    n_examples: int = 1024
    normalize_logits: bool = True
    n_samples: int = 20
    n_restarts: int = 1
    rand_init: bool = False
    momentum: float = 0.75
    momentum_form: Literal["apgd", "reference"] = "apgd"
    step_schedule: Literal["apgd", "constant"] = "apgd"
    adaptive_eps: float = 0.0
    param_filter: ParamFilter = None
    vectorize: bool = True
    chunk_size: int | None = None

    def __post_init__(self) -> None:
        _check_choice("kind", self.kind, KINDS)
        _check_choice("norm", self.norm, NORMS)
        _check_choice("momentum_form", self.momentum_form, MOMENTUM_FORMS)
        _check_choice("step_schedule", self.step_schedule, STEP_SCHEDULES)
        if not (isinstance(self.rho, (int, float)) and math.isfinite(self.rho) and self.rho > 0):
            raise ValueError(f"rho must be a positive finite number, got {self.rho!r}")
        for name in ("n_iters", "m", "n_examples", "n_samples", "n_restarts"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if self.n_examples % self.m:
            raise ValueError(f"n_examples ({self.n_examples}) must be a multiple of the batch size m ({self.m}); "
                             f"use n_examples={self.n_examples // self.m * self.m or self.m}")
        if self.n_restarts > 1 and not self.rand_init:
            raise ValueError("n_restarts > 1 needs rand_init=True (restarts from zero are identical)")
        if not 0.0 <= self.momentum <= 1.0:
            raise ValueError(f"momentum must be in [0, 1], got {self.momentum!r}")
        if not (math.isfinite(self.adaptive_eps) and self.adaptive_eps >= 0):
            raise ValueError(f"adaptive_eps must be ≥ 0, got {self.adaptive_eps!r}")
        if self.chunk_size is not None and (not isinstance(self.chunk_size, int) or self.chunk_size < 1):
            raise ValueError(f"chunk_size must be a positive integer or None, got {self.chunk_size!r}")
        if isinstance(self.param_filter, str):
            try:
                re.compile(self.param_filter)
            except re.error as exc:
                raise ValueError(f"param_filter {self.param_filter!r} is not a valid regex: {exc}") from exc
        elif self.param_filter is not None and not callable(self.param_filter):
            raise TypeError("param_filter must be a regex string, a callable (name, param) -> bool, or None; "
                            f"got {type(self.param_filter).__name__}")

    @property
    def label(self) -> str:
        """Short name such as ``worst_linf_adaptive_norm`` for tables."""
        return (f"{self.kind}_{self.norm}_{'adaptive' if self.adaptive else 'standard'}"
                f"_{'norm' if self.normalize_logits else 'raw'}")


@dataclass(frozen=True)
class SharpnessResult:
    """Mean loss and error sharpness over batches, the per-batch table, and the config that produced them.

    per_batch columns: batch, size, loss, error, perturbed_loss, perturbed_error, loss_sharpness,
    error_sharpness, scaled_delta_norm (‖δ⊘c‖_p of the worst point; NaN for average-case).
    deltas: the worst-case δ per batch (name → tensor), only when requested.
    """

    loss_sharpness: float
    error_sharpness: float
    per_batch: pd.DataFrame
    config: SharpnessConfig
    n_perturbed: int
    deltas: list[Params] | None = field(default=None, repr=False)


# ----------------------------------------------------------------------------------------------- helpers


def _check_choice(name: str, value: object, choices: Sequence[str]) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {list(choices)}, got {value!r}")


def logit_normalize(logits: Tensor, dim: int = -1) -> Tensor:
    """Centre each row and scale it to unit L2 norm: (f − mean f) / max(‖f − mean f‖, 1e−10).

    The card's ``--normalize_logits``: the result is invariant to positive rescaling of the logits, so the
    loss (and sharpness) no longer falls to 0 just because the weights, hence the logits, grow. ``dim`` is the
    class dimension (the last one unless the logits are stored class-major).
    """
    if logits.ndim < 1:
        raise ValueError("logit_normalize needs logits with a class dimension (…, K)")
    centred = logits - logits.mean(dim=dim, keepdim=True)
    if dim in (-1, logits.ndim - 1):
        norm = centred.norm(dim=dim, keepdim=True).clamp_min(1e-10)
    else:
        # torch's CPU norm over a non-last dim (stacked_cross_entropy's class-major layout) is ~50× slower than
        # a sum of squares; clamping the square, not the root, keeps the gradient finite for constant rows.
        norm = centred.square().sum(dim=dim, keepdim=True).clamp_min(1e-20).sqrt()
    return centred / norm


def top1_error(logits: Tensor, y: Tensor) -> Tensor:
    """Fraction of rows whose arg-max logit is not the label; logits (…, m, C), labels (m,) → error (…)."""
    return (logits.argmax(dim=-1) != y).float().mean(dim=-1)


def stacked_cross_entropy(logits: Tensor, y: Tensor, normalize_logits: bool) -> Tensor:
    """Mean cross-entropy of each of K logit sets (K, m, C) against the same labels (m,): a (K,) tensor.

    Equal (to float rounding) to K calls of ``F.cross_entropy``, but computed class-major: torch's CPU
    log-softmax over a short last dimension (C ≈ 10) costs ~100 ns per row, while over dim 0 of the (C, K·m)
    transpose it vectorises across rows, ≈ 7× faster for K·m = 12,800. The logit norm in that layout is a
    sum of squares (see ``logit_normalize``): torch's ``norm`` over dim 0 does not vectorise.
    """
    k, m, c = logits.shape
    z = logits.reshape(k * m, c).t().contiguous()
    if normalize_logits:
        z = logit_normalize(z, dim=0)
    picked = z.log_softmax(dim=0).gather(0, y.repeat(k).unsqueeze(0))
    return -picked.view(k, m).mean(dim=1)


def no_norm_or_bias(name: str, param: Tensor) -> bool:
    """Parameter filter keeping tensors with ≥ 2 dims: drops biases and norm-layer affine parameters (1-D)."""
    return param.ndim >= 2


def fixed_batches(x: Tensor, y: Tensor, n: int, m: int) -> list[Batch]:
    """The first ``n`` points in their given order, cut into ``n // m`` batches of ``m`` (no shuffling)."""
    if not isinstance(x, Tensor) or not isinstance(y, Tensor):
        raise TypeError(f"x and y must be tensors, got {type(x).__name__} and {type(y).__name__}")
    if len(x) != len(y):
        raise ValueError(f"x and y differ in length ({len(x)} vs {len(y)})")
    if m < 1 or n < 1:
        raise ValueError(f"n and m must be positive, got n={n}, m={m}")
    if n > len(x):
        raise ValueError(f"asked for the first n={n} points but only {len(x)} are given; lower n_examples")
    if n % m:
        raise ValueError(f"n ({n}) must be a multiple of m ({m})")
    return [(x[i:i + m], y[i:i + m]) for i in range(0, n, m)]


def apgd_checkpoints(n_iters: int) -> list[int]:
    """Iterations at which APGD may halve its step: p0 = 0, p1 = 0.22, increments max(prev − 0.03, 0.06).

    Same float arithmetic as the reference, so n_iters = 20 gives [5, 9, 12, 15, 16, 18, 19, 20] (the last
    one is never reached).
    """
    p, w = [0.0, 0.22], [0, math.ceil(n_iters * 0.22)]
    while w[-1] < n_iters and w[-1] != w[-2]:
        p.append(p[-1] + max(p[-1] - p[-2] - 0.03, 0.06))
        w.append(math.ceil(p[-1] * n_iters))
    return w[1:]


def select_parameters(model: nn.Module, param_filter: ParamFilter) -> Params:
    """Named parameters that ``param_filter`` keeps (all for None); tied parameters appear once."""
    named = dict(model.named_parameters())
    if param_filter is None:
        chosen = named
    elif isinstance(param_filter, str):
        pattern = re.compile(param_filter)
        chosen = {n: p for n, p in named.items() if pattern.search(n)}
    elif callable(param_filter):
        chosen = {n: p for n, p in named.items() if param_filter(n, p)}
    else:
        raise TypeError("param_filter must be a regex string, a callable (name, param) -> bool, or None")
    if not chosen:
        raise ValueError(f"param_filter {param_filter!r} selects no parameter; names are e.g. {list(named)[:5]}")
    return chosen


def groups_by_prefix(model: nn.Module, depth: int = 1) -> dict[str, str]:
    """Layer groups for ``layerwise_sharpness``: parameters grouped by the first ``depth`` name components."""
    if depth < 1:
        raise ValueError(f"depth must be ≥ 1, got {depth}")
    groups: dict[str, str] = {}
    for name, _ in model.named_parameters():
        prefix = ".".join(name.split(".")[:depth])
        exact = prefix == name
        groups.setdefault(prefix, f"^{re.escape(prefix)}$" if exact else f"^{re.escape(prefix)}\\.")
    return groups


def _scales(params: Params, config: SharpnessConfig) -> Params:
    """c per parameter: |w| + eps (adaptive) or 1 (standard); zeros of c are masked coordinates."""
    if config.adaptive:
        return {n: p.detach().abs() + config.adaptive_eps for n, p in params.items()}
    return {n: torch.ones_like(p) for n, p in params.items()}


def _safe_div(a: Tensor, c: Tensor) -> Tensor:
    return torch.where(c > 0, a / torch.where(c > 0, c, torch.ones_like(c)), torch.zeros_like(a))


def scaled_norm(delta: Params, scale: Params, norm: Literal["linf", "l2"]) -> float:
    """‖δ⊘c‖_p over all perturbed parameters, with masked coordinates (c = 0) left out."""
    _check_choice("norm", norm, NORMS)
    parts = [_safe_div(delta[n].double(), scale[n].double()).flatten() for n in delta]
    flat = torch.cat(parts) if parts else torch.zeros(1, dtype=torch.float64)
    return float(flat.abs().max() if norm == "linf" else flat.norm())


def project_ellipsoid(u: Sequence[Tensor], c: Sequence[Tensor], rho: float, tol: float = 1e-7,
                      max_iter: int = 100) -> list[Tensor]:
    """Euclidean projection of u onto {z : Σ (z_i/c_i)² ≤ ρ²}, with z_i = 0 where c_i = 0 (see ``Ellipsoid``)."""
    cs, us = ({str(i): t for i, t in enumerate(ts)} for ts in (c, u))
    flat = FlatParams(cs)
    z = Ellipsoid(flat.flatten(cs), rho, tol, max_iter)(flat.flatten(us))
    return list(flat.split(z).values())


class Ellipsoid:
    """Projection onto {z : ‖z⊘c‖₂ ≤ ρ} for one flat scale vector c (z_i = 0 where c_i = 0), reusable.

    KKT gives z_i = u_i c_i² / (c_i² + μ) for one multiplier μ ≥ 0 (μ = 2λ of the card), so z⊘c =
    p(μ) = (diag(c²) + μI)⁻¹ (u⊙c) and μ solves ‖p(μ)‖ = ρ. This is the trust-region secular equation, and
    we solve it as Moré & Sorensen (1983) do: Newton on φ(μ) = 1/ρ − 1/‖p(μ)‖, which is convex, decreasing and
    nearly linear, so from the left of the root the iterates rise monotonically to it (never past it); from
    the right, the first step lands on its left. The bracket [lo, hi] (hi ≤ ‖u⊙c‖/ρ) is kept and a bisection
    step replaces any Newton step that would leave it (a guard for rounding). We stop at a feasible μ' that is
    tight: μ(1 + tol) for a μ left of the root, or a μ right of it with ‖p(μ)‖ ≥ ρ(1 − tol); z(μ') then meets
    the constraint and its scaled norm is within ~tol of ρ.

    c², its mask and 1/c are computed once; each call starts Newton from the previous call's μ (successive
    ascent iterates are close: on the benchmark MLP ≈ 3 evaluations of ‖p(μ)‖ per projection instead of ≈ 5).
    """

    def __init__(self, c: Tensor, rho: float, tol: float = 1e-7, max_iter: int = 100) -> None:
        if rho <= 0:
            raise ValueError(f"rho must be positive, got {rho}")
        cd = c.double().reshape(-1)
        self.mask = cd > 0
        self.c = torch.where(self.mask, cd, 0.0)
        self.c2 = torch.where(self.mask, cd * cd, 1.0)  # masked coordinates: u⊙c = 0 there, so p_i = 0 for every μ
        self.inv_c = torch.where(self.mask, 1.0 / torch.where(self.mask, cd, 1.0), 0.0)
        self.rho, self.tol, self.max_iter, self.mu = rho, tol, max_iter, 0.0

    def __call__(self, u: Tensor) -> Tensor:
        ud = u.double().reshape(-1)
        if float((ud * self.inv_c).norm()) <= self.rho:  # already inside: only the masking applies
            return torch.where(self.mask.view(u.shape), u, torch.zeros_like(u))
        uc = ud * self.c
        mu = self._multiplier(uc)
        return (uc * self.c / (self.c2 + mu)).view(u.shape).to(u.dtype)

    def _multiplier(self, uc: Tensor) -> float:
        rho, c2, tol = self.rho, self.c2, self.tol
        lo, hi = 0.0, float(uc.norm()) / rho
        mu = min(self.mu, hi)
        for _ in range(self.max_iter):
            d = c2 + mu
            p = uc / d
            pn = float(p.norm())
            if pn <= rho:  # right of the root (a warm start, or a bisection step) or on it
                if pn >= rho * (1 - tol):
                    break
                hi = mu
            else:  # left of the root: done once μ(1 + tol) is feasible
                lo = mu
                candidate = mu * (1 + tol) if mu > 0 else tol * hi
                if float((uc / (c2 + candidate)).norm()) <= rho:
                    mu = candidate
                    break
            step = mu + (pn - rho) / rho * pn ** 2 / float(torch.dot(p, p / d))
            mu = step if lo <= step <= hi else 0.5 * (lo + hi)
        else:
            mu = hi
        self.mu = mu
        return mu


# ----------------------------------------------------------------------------------------------- evaluation


class FlatParams:
    """One flat vector ↔ a dict of named tensors (views into it).

    The worst-case ascent keeps δ, its gradient and the scale c as single flat vectors, so each update is a
    handful of tensor ops however many parameter tensors the model has (per-tensor ops made the optimiser
    bookkeeping cost more than the forward+backward pass of a small model).
    """

    def __init__(self, like: Params) -> None:
        self.names = list(like)
        self.shapes = [like[n].shape for n in self.names]
        self.numels = [like[n].numel() for n in self.names]

    def flatten(self, params: Params) -> Tensor:
        return torch.cat([params[n].reshape(-1) for n in self.names])

    def split(self, flat: Tensor) -> Params:
        return {n: v.view(shape) for n, v, shape in zip(self.names, flat.split(self.numels), self.shapes)}


class _Objective:
    """Loss and error of ``model`` at w0 + δ on one batch, without touching the model's own tensors.

    ``value``/``value_and_grad`` take δ as one flat vector (see ``FlatParams``); ``sample_values`` takes dicts.
    """

    def __init__(self, model: nn.Module, base: Params, x: Tensor, y: Tensor, loss_fn: LossFn,
                 error_fn: LossFn | None, normalize_logits: bool, plan: StackedMLPPlan | None = None) -> None:
        self.model, self.base, self.x, self.y = model, base, x, y
        self.loss_fn, self.error_fn, self.normalize = loss_fn, error_fn, normalize_logits
        self.plan = plan if plan is not None and plan.accepts(x) else None

    @cached_property
    def flat(self) -> FlatParams:
        return FlatParams(self.base)

    @cached_property
    def base_flat(self) -> Tensor:
        """w0 as one flat vector: a copy of the perturbed parameters, made only when δ is flat (worst case)."""
        return self.flat.flatten(self.base)

    def _loss_err(self, params: Params) -> tuple[Tensor, Tensor]:
        return self._loss_err_of(functional_call(self.model, params, (self.x,)))

    def _loss_err_of(self, logits: Tensor) -> tuple[Tensor, Tensor]:
        loss = self.loss_fn(logit_normalize(logits) if self.normalize else logits, self.y)
        err = self.error_fn(logits, self.y) if self.error_fn is not None else torch.full_like(loss, math.nan)
        return loss, err

    def value(self, delta: Tensor | None) -> tuple[float, float]:
        with torch.no_grad():
            params = self.base if delta is None else self.flat.split(self.base_flat + delta)
            loss, err = self._loss_err(params)
        return float(loss), float(err)

    def value_and_grad(self, delta: Tensor) -> tuple[float, float, Tensor]:
        leaf = (self.base_flat + delta).detach().requires_grad_(True)
        with torch.enable_grad():
            loss, err = self._loss_err(self.flat.split(leaf))
            (grad,) = torch.autograd.grad(loss, [leaf], allow_unused=True)
        return float(loss.detach()), float(err), torch.zeros_like(leaf) if grad is None else grad

    def sample_values(self, eps: Params, amplitude: Params, vectorize: bool,
                      chunk_size: int | None) -> tuple[Tensor, Tensor]:
        """Loss and error at w0 + amplitude⊙eps[k] for every k (eps stacked along dim 0), batched or looped.

        Both paths build the perturbed weights with the same fused ``addcmul`` from the same tensors; the
        batched path writes them over ``eps`` (one K-stacked set, no second multi-MB allocation), then runs the
        K forwards as one GEMM per layer where the model is a plain MLP (``cliplab.sharpness.stacked_mlp``), else as one
        ``vmap`` of the forward; the K losses then come from one batched op where the loss is the default
        cross-entropy (``stacked_cross_entropy``), else from the user's loss vmapped over the logits.
        """
        def perturbed(e: Params, in_place: bool = False) -> Params:
            return {n: torch.addcmul(self.base[n], amplitude[n], e[n], out=e[n] if in_place else None)
                    for n in self.base}

        k = next(iter(eps.values())).shape[0]
        with torch.no_grad():
            if not vectorize:
                pairs = [self._loss_err(perturbed({n: v[i] for n, v in eps.items()})) for i in range(k)]
                return torch.stack([p[0] for p in pairs]), torch.stack([p[1] for p in pairs])
            stacked = perturbed(eps, in_place=True)
            if self.plan is not None:
                chunk = min(k, chunk_size if chunk_size is not None else self.plan.default_chunk(len(self.x)))
                parts = [stacked_forward(self.plan, {n: v[i:i + chunk] for n, v in stacked.items()}, self.x)
                         for i in range(0, k, chunk)]
                logits = parts[0] if len(parts) == 1 else torch.cat(parts)
            else:
                chunk = min(k, chunk_size if chunk_size is not None else max(1, 4096 // max(len(self.x), 1)))
                logits = vmap(lambda p: functional_call(self.model, p, (self.x,)), chunk_size=chunk)(stacked)
            if self.loss_fn is F.cross_entropy and logits.ndim == 3 and self.y.ndim == 1:
                loss = stacked_cross_entropy(logits, self.y, self.normalize)
                if self.error_fn is top1_error:
                    return loss, top1_error(logits, self.y)
                if self.error_fn is None:
                    return loss, torch.full_like(loss, math.nan)
            return vmap(self._loss_err_of, chunk_size=chunk)(logits)


# ----------------------------------------------------------------------------------------------- worst case


@dataclass
class _Ascent:
    """State of one APGD run: current and previous iterate, gradient at the current one, and the best point."""

    delta: Tensor
    prev: Tensor
    grad: Tensor | None
    loss: float
    best_delta: Tensor
    best_grad: Tensor | None
    best_loss: float
    best_err: float


class _Feasible:
    """Projection onto the perturbation set of ``config`` for one flat scale c: the box ±ρc (linf), the ball of
    radius ρ (standard l2) or the ellipsoid ‖δ⊘c‖ ≤ ρ (adaptive l2, warm-started across calls)."""

    def __init__(self, scale: Tensor, config: SharpnessConfig) -> None:
        self.config = config
        self.bound = config.rho * scale if config.norm == "linf" else None
        self.ellipsoid = Ellipsoid(scale, config.rho) if config.norm == "l2" and config.adaptive else None

    def __call__(self, delta: Tensor) -> Tensor:
        if self.bound is not None:
            return torch.clamp(delta, min=-self.bound, max=self.bound)
        if self.ellipsoid is not None:
            return self.ellipsoid(delta)
        total = float(delta.double().norm())
        factor = min(1.0, self.config.rho / total) if total > 0 else 1.0
        return delta * factor if factor < 1.0 else delta


def _ascent_step(state: _Ascent, scale: Tensor, eta: float, first: bool, config: SharpnessConfig,
                 project: tuple[_Feasible, _Feasible]) -> Tensor:
    """One projected ascent step with momentum on the flat δ; returns the new iterate.

    ``project`` holds one projector for the gradient step and one for the momentum mix: their points lie at
    different distances from the set, so each keeps its own warm start.
    """
    grad = state.grad
    assert grad is not None
    if config.norm == "linf":
        u = torch.addcmul(state.delta, grad.sign(), scale, value=eta)
    else:
        gnorm = float(grad.double().norm()) + 1e-12
        u = torch.addcmul(state.delta, grad, scale, value=eta / gnorm)
    z = project[0](u)
    a = config.momentum
    if config.momentum_form == "reference":  # a·z + (1 − a)·δ_prev on every step, the first included
        return z if a == 0.0 else torch.add(z * a, state.prev, alpha=1 - a)
    if first or a == 0.0:
        return z
    # δ + a(z − δ) + (1 − a)(δ − δ_prev) = a·z + 2(1 − a)·δ − (1 − a)·δ_prev
    mixed = (z * a).add_(state.delta, alpha=2 * (1 - a)).add_(state.prev, alpha=-(1 - a))
    return project[1](mixed)


def _random_init(scale: Params, config: SharpnessConfig, gen: torch.Generator) -> Params:
    """A random feasible start: uniform in the box (linf) or uniform in the ellipsoid (l2)."""
    if config.norm == "linf":
        return {n: config.rho * c * (2 * torch.rand(c.shape, generator=gen, device=c.device, dtype=c.dtype) - 1)
                for n, c in scale.items()}
    eps = {n: torch.randn(c.shape, generator=gen, device=c.device, dtype=c.dtype) * (c > 0)
           for n, c in scale.items()}
    dim = sum(int((c > 0).sum()) for c in scale.values())
    total = float(torch.sqrt(sum((e.double() ** 2).sum() for e in eps.values())))
    radius = config.rho * float(torch.rand((), generator=gen, device=gen.device)) ** (1.0 / max(dim, 1))
    return {n: eps[n] * (radius / max(total, 1e-30)) * scale[n] for n in eps}


def _worst_case_batch(obj: _Objective, scale: Params, config: SharpnessConfig, gen: torch.Generator,
                      trace: Callable[[dict], None] | None = None) -> tuple[float, float, float, float, Params]:
    """Worst-case loss/error on one batch: returns (init_loss, init_err, worst_loss, worst_err, worst_delta)."""
    flat = obj.flat
    c = flat.flatten(scale)
    zero = torch.zeros_like(obj.base_flat)
    init_loss, init_err = obj.value(None)
    best_loss, best_err, best_delta = init_loss, init_err, zero
    checkpoints = set(apgd_checkpoints(config.n_iters)) if config.step_schedule == "apgd" else set()
    project = (_Feasible(c, config), _Feasible(c, config))
    for restart in range(config.n_restarts):
        delta0 = flat.flatten(_random_init(scale, config, gen)) if config.rand_init else zero
        loss, err, grad = obj.value_and_grad(delta0)
        state = _Ascent(delta0, delta0, grad, loss, delta0, grad, loss, err)
        eta = prev_eta = 2.0 * config.rho
        prev_best, prev_cp, n_updates = state.best_loss, 0, 0
        for i in range(config.n_iters):
            new = _ascent_step(state, c, eta, first=(i == 0), config=config, project=project)
            state.prev, state.delta = state.delta, new
            if i < config.n_iters - 1:
                loss, err, state.grad = obj.value_and_grad(new)
            else:
                (loss, err), state.grad = obj.value(new), None
            state.loss = loss
            if loss > state.best_loss:
                state.best_loss, state.best_err, state.best_delta, state.best_grad = loss, err, new, state.grad
                n_updates += 1
            reset = False
            if i in checkpoints:
                cond1 = n_updates < 0.75 * (i - prev_cp)
                cond2 = prev_eta == eta and prev_best == state.best_loss
                prev_eta, prev_best, prev_cp, n_updates = eta, state.best_loss, i, 0
                if cond1 or cond2:
                    eta *= 0.5
                    if config.momentum_form != "reference":
                        # defect 3 fixed: iterate and momentum history go back to the best point too
                        state.delta = state.prev = state.best_delta
                    state.grad, state.loss, reset = state.best_grad, state.best_loss, True
            if trace is not None:
                trace({"restart": restart, "iter": i, "eta": eta, "loss": loss, "best_loss": state.best_loss,
                       "reset": reset, "delta": flat.split(state.delta), "best_delta": flat.split(state.best_delta)})
        if state.best_loss > best_loss:
            best_loss, best_err, best_delta = state.best_loss, state.best_err, state.best_delta
    return init_loss, init_err, best_loss, best_err, flat.split(best_delta)


# ----------------------------------------------------------------------------------------------- average case


def _empty_noise(scale: Params, config: SharpnessConfig) -> Params:
    return {n: torch.empty((config.n_samples, *c.shape), device=c.device, dtype=c.dtype) for n, c in scale.items()}


def unit_noise(scale: Params, config: SharpnessConfig, gen: torch.Generator, out: Params | None = None) -> Params:
    """K = n_samples unit draws per parameter, stacked on dim 0: ε ~ N(0, 1) (l2) or U[−1, 1] (linf).

    out: tensors of those shapes to draw into (``sharpness`` reuses one set across batches: a fresh multi-MB
    allocation per batch cost more in page faults than the draws themselves on the benchmark MLP).
    """
    if out is None:
        out = _empty_noise(scale, config)
    else:
        for n, c in scale.items():
            want = (config.n_samples, *c.shape)
            if n not in out or out[n].shape != want:
                got = tuple(out[n].shape) if n in out else "nothing"
                raise ValueError(f"out[{n!r}] must have shape {want} (n_samples, *param shape), got {got}; "
                                 "pass out=None to allocate it")
    for n in scale:  # scale's order fixes the stream, whatever order ``out`` was built in
        if config.norm == "l2":
            out[n].normal_(generator=gen)
        else:
            out[n].uniform_(-1.0, 1.0, generator=gen)
    return out


def average_noise(scale: Params, config: SharpnessConfig, gen: torch.Generator) -> Params:
    """The average-case perturbations δ_k = ρ·c⊙ε_k (the card's avg_l2 / avg_linf), stacked on dim 0."""
    return {n: config.rho * scale[n] * e for n, e in unit_noise(scale, config, gen).items()}


def _average_case_batch(obj: _Objective, scale: Params, config: SharpnessConfig, gen: torch.Generator,
                        noise: Params) -> tuple[float, float, float, float]:
    init_loss, init_err = obj.value(None)
    amplitude = {n: config.rho * c for n, c in scale.items()}
    losses, errs = obj.sample_values(unit_noise(scale, config, gen, out=noise), amplitude, config.vectorize,
                                     config.chunk_size)
    return init_loss, init_err, float(losses.double().mean()), float(errs.double().mean())


# ----------------------------------------------------------------------------------------------- public API


def _as_batches(data: Sequence[Batch] | Batch, config: SharpnessConfig) -> list[Batch]:
    if isinstance(data, (tuple, list)) and len(data) == 2 and all(isinstance(t, Tensor) for t in data):
        return fixed_batches(data[0], data[1], config.n_examples, config.m)
    if not isinstance(data, Iterable):
        raise TypeError("data must be (x, y) tensors or an iterable of (x, y) batches")
    batches = list(data)
    if not batches:
        raise ValueError("data holds no batch")
    for i, b in enumerate(batches):
        if not (isinstance(b, (tuple, list)) and len(b) == 2 and all(isinstance(t, Tensor) for t in b)):
            raise TypeError(f"batch {i} is not an (x, y) pair of tensors; unpack your loader's items first")
        if len(b[0]) != len(b[1]) or len(b[0]) == 0:
            raise ValueError(f"batch {i} has x of length {len(b[0])} and y of length {len(b[1])}")
    return [(b[0], b[1]) for b in batches]


def model_device(model: nn.Module) -> torch.device:
    """The device of ``model``'s parameters, where its inputs and perturbations must live."""
    for p in model.parameters():
        return p.device
    raise ValueError("model has no parameters to perturb")


def sharpness(model: nn.Module, data: Sequence[Batch] | Batch, config: SharpnessConfig,
              loss_fn: LossFn = F.cross_entropy, seed: int = 0, error_fn: LossFn | None = top1_error,
              return_deltas: bool = False, trace: Callable[[dict], None] | None = None) -> SharpnessResult:
    """Loss and error sharpness of ``model`` under ``config``, averaged over batches (model left untouched).

    data: raw ``(x, y)`` (cut by ``fixed_batches`` into the first ``config.n_examples`` points, batches of
    ``config.m``) or a sequence of ``(x, y)`` batches used as given. loss_fn: mean loss of (logits, y).
    error_fn: None for regression (error columns become NaN). seed: seeds the one torch.Generator that draws
    every random number (noise, random init), in batch order. trace: per-iteration callback (worst-case).
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not isinstance(config, SharpnessConfig):
        raise TypeError(f"config must be a SharpnessConfig, got {type(config).__name__}")
    if not isinstance(seed, int):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    batches = _as_batches(data, config)
    device = model_device(model)
    params = select_parameters(model, config.param_filter)
    base = {n: p.detach() for n, p in params.items()}
    scale = _scales(base, config)
    gen = torch.Generator(device=device).manual_seed(seed)
    modes = {mod: mod.training for mod in model.modules()}
    rows, deltas = [], []
    noise = _empty_noise(scale, config) if config.kind == "average" else {}
    plan = stacked_mlp_plan(model, base) if config.kind == "average" and config.vectorize else None
    try:
        model.eval()
        for b, (x, y) in enumerate(batches):
            obj = _Objective(model, base, x.to(device), y.to(device), loss_fn, error_fn, config.normalize_logits,
                             plan)
            if config.kind == "worst":
                l0, e0, l1, e1, delta = _worst_case_batch(obj, scale, config, gen, trace)
                dnorm = scaled_norm(delta, scale, config.norm)
                if return_deltas:
                    deltas.append({n: d.detach().clone() for n, d in delta.items()})
            else:
                l0, e0, l1, e1 = _average_case_batch(obj, scale, config, gen, noise)
                dnorm = math.nan
            rows.append({"batch": b, "size": len(x), "loss": l0, "error": e0, "perturbed_loss": l1,
                         "perturbed_error": e1, "loss_sharpness": l1 - l0, "error_sharpness": e1 - e0,
                         "scaled_delta_norm": dnorm})
    finally:
        for mod, flag in modes.items():
            mod.training = flag
    per_batch = pd.DataFrame(rows)
    return SharpnessResult(
        loss_sharpness=float(per_batch["loss_sharpness"].mean()),
        error_sharpness=float(per_batch["error_sharpness"].mean()),
        per_batch=per_batch, config=config, n_perturbed=sum(p.numel() for p in params.values()),
        deltas=deltas if return_deltas and config.kind == "worst" else None,
    )


def _intersect(outer: ParamFilter, inner: ParamFilter) -> ParamFilter:
    if outer is None:
        return inner
    if inner is None:
        return outer

    def as_pred(f: ParamFilter) -> Callable[[str, Tensor], bool]:
        if isinstance(f, str):
            pattern = re.compile(f)
            return lambda n, p: pattern.search(n) is not None
        assert callable(f)
        return f

    a, b = as_pred(outer), as_pred(inner)
    return lambda n, p: a(n, p) and b(n, p)


def layerwise_sharpness(model: nn.Module, data: Sequence[Batch] | Batch, config: SharpnessConfig,
                        groups: dict[str, ParamFilter], loss_fn: LossFn = F.cross_entropy, seed: int = 0,
                        error_fn: LossFn | None = top1_error) -> pd.DataFrame:
    """Sharpness with δ restricted to each group in turn (δ = 0 elsewhere); one row per group.

    A parameter is perturbed when it passes both ``config.param_filter`` (if set) and the group's filter, so
    e.g. ``param_filter=no_norm_or_bias`` with per-layer groups gives weight-only layer-wise sharpness. Every
    group uses the same seed. Columns: group, n_params, loss_sharpness, error_sharpness, and the config label.
    """
    if not groups:
        raise ValueError("groups is empty; pass e.g. groups_by_prefix(model)")
    rows = []
    for name, filt in groups.items():
        cfg = replace(config, param_filter=_intersect(config.param_filter, filt))
        try:
            res = sharpness(model, data, cfg, loss_fn=loss_fn, seed=seed, error_fn=error_fn)
        except ValueError as exc:
            if "selects no parameter" in str(exc):
                raise ValueError(f"group {name!r} selects no parameter (after config.param_filter)") from exc
            raise
        rows.append({"group": name, "n_params": res.n_perturbed, "loss_sharpness": res.loss_sharpness,
                     "error_sharpness": res.error_sharpness, "definition": config.label})
    return pd.DataFrame(rows)


def sharpness_table(model: nn.Module, data: Sequence[Batch] | Batch, configs: Iterable[SharpnessConfig],
                    loss_fn: LossFn = F.cross_entropy, seed: int = 0) -> pd.DataFrame:
    """One row per config: label, kind, norm, adaptive, normalize_logits, rho, loss/error sharpness."""
    rows = []
    for cfg in configs:
        res = sharpness(model, data, cfg, loss_fn=loss_fn, seed=seed)
        rows.append({"definition": cfg.label, "kind": cfg.kind, "norm": cfg.norm, "adaptive": cfg.adaptive,
                     "normalize_logits": cfg.normalize_logits, "rho": cfg.rho,
                     "loss_sharpness": res.loss_sharpness, "error_sharpness": res.error_sharpness})
    return pd.DataFrame(rows)


__all__ = [
    "SharpnessConfig", "SharpnessResult", "sharpness", "layerwise_sharpness", "sharpness_table",
    "fixed_batches", "logit_normalize", "top1_error", "no_norm_or_bias", "groups_by_prefix",
    "select_parameters", "apgd_checkpoints", "project_ellipsoid", "scaled_norm", "average_noise", "unit_noise",
    "model_device",
]
