"""cliplab.sharpness.stacked_mlp: K weight sets in one pass equal K separate forwards; anything else is declined."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from torch import nn
from torch.func import functional_call

from cliplab.sharpness.stacked_mlp import CHUNK_ELEMENTS, stacked_forward, stacked_mlp_plan

torch.set_num_threads(1)
K = 5


def _stacked(model: nn.Module, keep: Callable[[str], bool], seed: int = 0) -> dict[str, torch.Tensor]:
    """K random perturbations of the parameters ``keep`` selects, stacked on dim 0."""
    g = torch.Generator().manual_seed(seed)
    return {n: p.detach() + 0.1 * torch.randn((K, *p.shape), generator=g)
            for n, p in model.named_parameters() if keep(n)}


def _one_by_one(model: nn.Module, params: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    k = next(iter(params.values())).shape[0]
    with torch.no_grad():
        return torch.stack([functional_call(model, {n: v[i] for n, v in params.items()}, (x,)) for i in range(k)])


def _mlp(bias: bool = True, inplace: bool = False) -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.ReLU(inplace=inplace), nn.Linear(12, 16, bias=bias), nn.GELU(),
                         nn.Dropout(0.5), nn.Linear(16, 8, bias=bias), nn.ReLU(), nn.Flatten(),
                         nn.Linear(8, 3, bias=bias)).eval()


@pytest.mark.parametrize(("bias", "which"), [(True, w) for w in ("all", "weights", "biases", "last layer",
                                                                   "middle weight")]
                         + [(False, w) for w in ("all", "last layer", "middle weight")])
def test_stacked_forward_equals_one_forward_per_weight_set(bias: bool, which: str) -> None:
    model = _mlp(bias)
    keep = {"all": lambda n: True, "weights": lambda n: n.endswith("weight"),
            "biases": lambda n: n.endswith("bias"), "last layer": lambda n: n.startswith("8."),
            "middle weight": lambda n: n == "5.weight"}[which]
    params = _stacked(model, keep)
    x = torch.randn(7, 3, 4, generator=torch.Generator().manual_seed(1))
    plan = stacked_mlp_plan(model, params)
    assert plan is not None
    with torch.no_grad():
        ours = stacked_forward(plan, params, x)
    assert ours.shape == (K, 7, 3)
    torch.testing.assert_close(ours, _one_by_one(model, params, x), rtol=1e-5, atol=1e-6)


def test_stacked_forward_writes_to_neither_input_nor_model() -> None:
    model = _mlp(inplace=True)  # an in-place ReLU right on the shared input
    x = torch.randn(7, 12, generator=torch.Generator().manual_seed(2))
    x0, state0 = x.clone(), {n: t.clone() for n, t in model.state_dict().items()}
    params = _stacked(model, lambda n: True)
    with torch.no_grad():
        stacked_forward(stacked_mlp_plan(model, params), params, x)  # type: ignore[arg-type]
    assert torch.equal(x, x0)
    assert all(torch.equal(t, state0[n]) for n, t in model.state_dict().items())


@pytest.mark.parametrize("model", [
    nn.Sequential(nn.Conv1d(1, 2, 3), nn.Flatten(), nn.Linear(16, 3)),
    nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4), nn.Linear(4, 2)),
    nn.Sequential(nn.Linear(4, 4), nn.PReLU(), nn.Linear(4, 2)),
    nn.Sequential(nn.Linear(4, 4), nn.Flatten(0), nn.Linear(4, 2)),
    nn.Sequential(nn.Sequential(nn.Linear(4, 4)), nn.Linear(4, 2)),
    nn.ModuleDict({"a": nn.Linear(4, 2)}),
], ids=["conv", "batchnorm", "prelu", "flatten-dim0", "nested", "not-sequential"])
def test_models_other_than_plain_mlps_are_declined(model: nn.Module) -> None:
    assert stacked_mlp_plan(model, _stacked(model, lambda n: True)) is None


def test_no_perturbed_parameter_is_declined_and_the_forward_refuses() -> None:
    model = _mlp()
    assert stacked_mlp_plan(model, {}) is None
    plan = stacked_mlp_plan(model, _stacked(model, lambda n: True))
    with pytest.raises(ValueError, match="no stacked parameter"):
        stacked_forward(plan, {}, torch.randn(2, 12))  # type: ignore[arg-type]


def test_default_chunk_bounds_the_widest_activation() -> None:
    plan = stacked_mlp_plan(_mlp(), _stacked(_mlp(), lambda n: True))
    assert plan is not None and plan.widest == 16
    assert plan.default_chunk(1 << 16) == 1  # one sample's activations already exceed the budget
    assert plan.default_chunk(64) * 64 * 16 <= CHUNK_ELEMENTS < (plan.default_chunk(64) + 1) * 64 * 16


def test_workspace_reuse_keeps_earlier_logits_and_follows_new_shapes() -> None:
    model = _mlp()
    params = _stacked(model, lambda n: True)
    plan = stacked_mlp_plan(model, params)
    assert plan is not None
    g = torch.Generator().manual_seed(3)
    x1, x2 = torch.randn(7, 12, generator=g), torch.randn(4, 12, generator=g)
    with torch.no_grad():
        first = stacked_forward(plan, params, x1)
        kept = first.clone()
        buffers = {k: t.data_ptr() for k, t in plan.workspace.items()}
        moved = {n: v + 1 for n, v in params.items()}
        again = stacked_forward(plan, moved, x1)
        assert {k: t.data_ptr() for k, t in plan.workspace.items()} == buffers  # reused, not reallocated
        half = {n: v[:2] for n, v in params.items()}
        other = stacked_forward(plan, half, x2)
    assert torch.equal(first, kept)  # the returned logits never live in the workspace
    torch.testing.assert_close(again, _one_by_one(model, moved, x1), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(other, _one_by_one(model, half, x2), rtol=1e-5, atol=1e-6)


def test_inputs_the_first_linear_would_not_see_as_rows_are_not_accepted() -> None:
    rows = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    plan = stacked_mlp_plan(rows, _stacked(rows, lambda n: True))
    assert plan is not None
    assert plan.accepts(torch.zeros(5, 4)) and not plan.accepts(torch.zeros(5, 6, 4))
    flat = _mlp()
    flat_plan = stacked_mlp_plan(flat, _stacked(flat, lambda n: True))
    assert flat_plan is not None and flat_plan.accepts(torch.zeros(5, 3, 4))
