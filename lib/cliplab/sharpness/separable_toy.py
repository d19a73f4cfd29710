"""The linear separable toy of the sharpness paper (card §4/§6, claim C4): sharpness vs weight scale.

Two Gaussian classes at ±v (v a random unit vector in R^d, noise std 0.025), labels ±1, a linear model
f(x) = ⟨w, x⟩ trained by full-batch gradient descent on the logistic loss (lr 5, 100 steps, w0 ~ N(0, I)/500).
This follows the released notebook ``notebooks/sharpness_linear_model.ipynb``; with ``legacy_rng=True`` the
draws come from ``np.random.RandomState(seed)`` in the notebook's order, so seed 0 reproduces its data and
its printed numbers (‖w‖ = 6.2469, loss 0.0020, sharpness 0.1379 at α = 0.12 …).

For a linear model with m = 1 the worst case has a closed form, because the logistic loss falls with the
margin y⟨w+δ, x⟩ and the smallest margin over the perturbation set is y⟨w,x⟩ − ρ·‖x‖_* in the dual norm:

* ``"norm"``: ‖δ‖₂ ≤ ρ‖w‖ (radius relative to the weight norm; the notebook's "adaptive sharpness",
  ``rho_weight_norm_fraction``): y⟨w,x⟩ − ρ‖w‖‖x‖ — the card's formula;
* ``"standard_l2"``: ‖δ‖₂ ≤ ρ: y⟨w,x⟩ − ρ‖x‖;
* ``"adaptive_l2"``: ‖δ⊘|w|‖₂ ≤ ρ (elementwise, as ``cliplab.sharpness``): y⟨w,x⟩ − ρ‖|w|⊙x‖₂;
* ``"adaptive_linf"``: ‖δ⊘|w|‖_∞ ≤ ρ: y⟨w,x⟩ − ρ‖w⊙x‖₁.

With logit normalisation the binary model is read as two logits (−f/2, f/2); after centring and scaling to
unit norm they are ±(1/√2)·sign f, so the margin becomes √2·sign(margin) and the loss no longer depends on
the scale α (the notebook uses sign(f) with margin 1 — a different constant, the same invariance).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

Definition = Literal["norm", "standard_l2", "adaptive_l2", "adaptive_linf"]
DEFINITIONS: tuple[str, ...] = ("norm", "standard_l2", "adaptive_l2", "adaptive_linf")


@dataclass(frozen=True)
class SeparableToy:
    """Training/test data (labels ±1) and the GD-trained weight vector w."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    w: np.ndarray


def logistic_loss(margins: np.ndarray) -> float:
    """Mean log(1 + exp(−margin)), computed stably."""
    return float(np.mean(np.logaddexp(0.0, -margins)))


def make_separable_toy(d: int = 100, n_train: int = 50, n_test: int = 1000, std: float = 0.025,
                       lr: float = 5.0, n_steps: int = 100, seed: int = 0, legacy_rng: bool = True) -> SeparableToy:
    """Draw the two-Gaussian data and train w by GD on the logistic loss (the notebook's recipe).

    legacy_rng=True draws from ``np.random.RandomState(seed)`` in the notebook's order (bit-identical data for
    seed 0); False uses ``np.random.default_rng(seed)`` (same recipe, different draws).
    """
    if d < 1 or n_train < 2 or n_test < 2 or (n_train + n_test) % 2:
        raise ValueError(f"need d ≥ 1 and n_train, n_test ≥ 2 with an even total, got d={d}, "
                         f"n_train={n_train}, n_test={n_test}")
    if std < 0 or lr <= 0 or n_steps < 0:
        raise ValueError(f"need std ≥ 0, lr > 0, n_steps ≥ 0, got {std}, {lr}, {n_steps}")
    rng = np.random.RandomState(seed) if legacy_rng else np.random.default_rng(seed)
    n = n_train + n_test
    v = rng.randn(d) if legacy_rng else rng.standard_normal(d)
    v = v / np.linalg.norm(v)

    def normal(*shape: int) -> np.ndarray:
        return rng.randn(*shape) if legacy_rng else rng.standard_normal(shape)

    x = np.concatenate([v + std * normal(n // 2, d), -v + std * normal(n // 2, d)])
    y = np.concatenate([-np.ones(n // 2), np.ones(n // 2)])
    order = rng.permutation(np.arange(n))
    x, y = x[order], y[order]
    x_train, y_train, x_test, y_test = x[:n_train], y[:n_train], x[n_train:], y[n_train:]
    w = normal(d) / 500
    for _ in range(n_steps):
        margins = y_train * (x_train @ w)
        w = w - lr * np.mean((-y_train / (1 + np.exp(margins)))[:, None] * x_train, axis=0)
    return SeparableToy(x_train, y_train, x_test, y_test, w)


def worst_margins(x: np.ndarray, y: np.ndarray, w: np.ndarray, rho: float, definition: Definition) -> np.ndarray:
    """Smallest margin y⟨w+δ, x⟩ per example (m = 1) over the perturbation set of ``definition``."""
    if definition not in DEFINITIONS:
        raise ValueError(f"definition must be one of {list(DEFINITIONS)}, got {definition!r}")
    if rho < 0:
        raise ValueError(f"rho must be ≥ 0, got {rho}")
    margins = y * (x @ w)
    if definition == "norm":
        slack = rho * np.linalg.norm(w) * np.linalg.norm(x, axis=1)
    elif definition == "standard_l2":
        slack = rho * np.linalg.norm(x, axis=1)
    elif definition == "adaptive_l2":
        slack = rho * np.linalg.norm(np.abs(w) * x, axis=1)
    else:
        slack = rho * np.abs(w * x).sum(axis=1)
    return margins - slack


def _normalized(margins: np.ndarray, normalize_logits: bool) -> np.ndarray:
    return np.sqrt(2.0) * np.sign(margins) if normalize_logits else margins


def m1_worst_case_sharpness(x: np.ndarray, y: np.ndarray, w: np.ndarray, rho: float,
                            definition: Definition = "norm", normalize_logits: bool = False) -> tuple[float, float]:
    """(loss, worst-case loss) with m = 1 in closed form; sharpness is their difference."""
    loss = logistic_loss(_normalized(y * (x @ w), normalize_logits))
    worst = logistic_loss(_normalized(worst_margins(x, y, w, rho, definition), normalize_logits))
    return loss, worst


def scale_curve(toy: SeparableToy, alphas: np.ndarray | None = None, rho: float = 0.5,
                definition: Definition = "norm", normalize_logits: bool = False) -> pd.DataFrame:
    """Sharpness of α·w on the training set for each α (default: the notebook's 30 points 2^−10 … 2^10).

    Columns: alpha, loss, worst_loss, sharpness, definition, rho, normalize_logits.
    """
    alphas = np.logspace(-10, 10, num=30, base=2) if alphas is None else np.asarray(alphas, dtype=float)
    if alphas.ndim != 1 or alphas.size == 0 or np.any(alphas <= 0):
        raise ValueError("alphas must be a non-empty 1-D array of positive scales")
    rows = []
    for a in alphas:
        loss, worst = m1_worst_case_sharpness(toy.x_train, toy.y_train, a * toy.w, rho, definition,
                                              normalize_logits)
        rows.append({"alpha": float(a), "loss": loss, "worst_loss": worst, "sharpness": worst - loss,
                     "definition": definition, "rho": rho, "normalize_logits": normalize_logits})
    return pd.DataFrame(rows)
