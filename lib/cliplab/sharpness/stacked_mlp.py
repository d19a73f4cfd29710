"""K weight sets of one MLP applied to one batch at once: one GEMM per layer, no vmap.

Average-case sharpness evaluates K perturbed copies of a model on the same batch. ``torch.func.vmap`` does
that for any model, but it batches ``F.linear`` with stacked weights as a ``bmm`` followed by a separate
broadcast bias add and pays its dispatch cost on every op; on the small MLPs of the sharpness replications
(Part A's zoo, the benchmark model) that kept the vectorised path near 2× a plain loop. For an
``nn.Sequential`` of ``Linear`` layers and parameter-free elementwise layers, :func:`stacked_forward` runs
the K forwards directly:

* the first Linear, whose input all K copies share, is one ``(m, d) @ (d, K·h)`` GEMM;
* each later Linear is one batched GEMM over K (``bmm``), its bias added in place;
* activations stay contiguous (layout ``(m, K, h)`` after the first layer, ``(K, m, h)`` after later ones),
  so the elementwise layers run on dense memory (ReLU in place).

Any other model gives ``None`` from :func:`stacked_mlp_plan`, and an input the first Linear would not see as
rows fails ``StackedMLPPlan.accepts``; the caller then uses vmap. Values equal K separate
forwards to float rounding (different GEMM blocking), which the sharpness tests check against the loop.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial

import torch
from torch import Tensor, nn

#: parameter-free layers that act elementwise (or not at all in eval mode), so any batch layout works
ELEMENTWISE = (nn.ReLU, nn.LeakyReLU, nn.GELU, nn.SiLU, nn.Tanh, nn.Sigmoid, nn.ELU, nn.Identity, nn.Dropout)

#: activation elements one chunk of noise samples may hold at once when the caller sets no chunk size
CHUNK_ELEMENTS = 1 << 18


@dataclass(frozen=True)
class StackedMLPPlan:
    """An ``nn.Sequential`` that :func:`stacked_forward` can run, its widest layer output, and the buffers its
    hidden activations are written into, reused from call to call (fresh multi-MB tensors per call cost more
    in page faults than the GEMMs that fill them on the benchmark MLP). One plan is for one thread at a time."""

    model: nn.Sequential
    widest: int
    last_linear: str
    flattens_input: bool
    workspace: dict[str, Tensor] = field(default_factory=dict, compare=False, repr=False)

    def accepts(self, x: Tensor) -> bool:
        """Whether the first Linear sees ``x`` as (m, d) rows: x is 2-D, or a Flatten comes first."""
        return x.ndim == 2 or (x.ndim > 2 and self.flattens_input)

    def buffer(self, key: str, shape: tuple[int, ...], like: Tensor) -> Tensor:
        """The workspace tensor for ``key``, (re)allocated when shape, dtype or device differ."""
        buf = self.workspace.get(key)
        if buf is None or buf.shape != shape or buf.dtype != like.dtype or buf.device != like.device:
            buf = self.workspace[key] = torch.empty(shape, dtype=like.dtype, device=like.device)
        return buf

    def default_chunk(self, batch_size: int) -> int:
        """Noise samples per chunk so that one layer's activations hold ≤ ``CHUNK_ELEMENTS`` floats."""
        return max(1, CHUNK_ELEMENTS // max(1, batch_size * self.widest))


def _is_plain_flatten(layer: nn.Module) -> bool:
    return isinstance(layer, nn.Flatten) and layer.start_dim == 1 and layer.end_dim == -1


def stacked_mlp_plan(model: nn.Module, perturbed: Mapping[str, Tensor]) -> StackedMLPPlan | None:
    """A plan for ``model`` if it is an ``nn.Sequential`` of Linear, Flatten(1, -1) and elementwise layers
    whose perturbed parameters (``perturbed``: name → tensor) are all Linear weights or biases; else None."""
    if not isinstance(model, nn.Sequential) or not perturbed:
        return None
    linear_names: set[str] = set()
    widest, last, flattens = 1, "", False
    for name, layer in model.named_children():
        if isinstance(layer, nn.Linear):
            linear_names.update(f"{name}.{p}" for p, _ in layer.named_parameters())
            widest, last = max(widest, layer.out_features), name
        elif _is_plain_flatten(layer):
            flattens = flattens or not last
        elif not isinstance(layer, ELEMENTWISE):
            return None
    if not set(perturbed) <= linear_names:
        return None
    return StackedMLPPlan(model, widest, last, flattens)


def _linear(a: Tensor, layout: str, w: Tensor, b: Tensor | None, w_stacked: bool, b_stacked: bool,
            out: Callable[[tuple[int, ...]], Tensor | None]) -> tuple[Tensor, str]:
    """One Linear on activations in ``layout`` ("shared" (m, d), "mk" (m, K, d), "km" (K, m, d)); ``out(shape)``
    gives the tensor a stacked weight's product is written into (None: a fresh one)."""
    if w_stacked:
        k, h, d = w.shape
        if layout == "shared":
            y = torch.mm(a, w.reshape(k * h, d).t(), out=out((a.shape[0], k * h)))
            y, layout = y.view(a.shape[0], k, h), "mk"
        else:
            a = a.transpose(0, 1) if layout == "mk" else a
            y, layout = torch.bmm(a, w.transpose(1, 2), out=out((k, a.shape[1], h))), "km"
    else:
        y = a @ w.t()
    if b is None:
        return y, layout
    if not b_stacked:
        return y.add_(b), layout
    if layout == "shared":
        return y.unsqueeze(1) + b, "mk"
    return (y.add_(b) if layout == "mk" else y.add_(b.unsqueeze(1))), layout


def _fresh(shape: tuple[int, ...]) -> None:
    return None


@torch.no_grad()
def stacked_forward(plan: StackedMLPPlan, params: Mapping[str, Tensor], x: Tensor) -> Tensor:
    """Logits (K, m, C) of the plan's model on ``x`` (m, …) under K weight sets, without autograd.

    params: name → stacked tensor (K, *shape) for every perturbed parameter; the others are the model's own.
    The model's tensors and ``x`` are never written to.
    """
    a, layout = x, "shared"
    for name, layer in plan.model.named_children():
        if isinstance(layer, nn.Linear):
            w = params.get(f"{name}.weight", layer.weight)
            b = params.get(f"{name}.bias", layer.bias)
            # the logits are returned (and kept across chunks), so only hidden layers write into the workspace
            out = partial(plan.buffer, name, like=w) if name != plan.last_linear else _fresh
            a, layout = _linear(a, layout, w, b, w.ndim == 3, b is not None and b.ndim == 2, out)
        elif isinstance(layer, nn.Flatten):
            if layout == "shared":
                a = layer(a)
        elif isinstance(layer, nn.ReLU) and layout != "shared":
            a = a.relu_()
        elif layout != "shared" or not getattr(layer, "inplace", False):
            a = layer(a)
        else:
            a = layer(a.clone())
    if layout == "shared":
        raise ValueError("stacked_forward got no stacked parameter; pass the perturbed weights in params")
    return a.transpose(0, 1) if layout == "mk" else a
