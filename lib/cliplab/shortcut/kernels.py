"""Kernel machines (C5): kernel ridge regression with linear, arc-cosine and two-layer ReLU NTK kernels."""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import pandas as pd
from scipy.linalg import solve

from cliplab.core.threads import single_threaded
from cliplab.shortcut.framework import ShortcutConfig, latent_mean
from cliplab.shortcut.networks import (
    RESULT_COLUMNS,
    reference_metrics,
    result_row,
    sweep_data,
)
from cliplab.shortcut.reference import accuracy, hard_decision, reliance

KERNELS: tuple[str, ...] = ("linear", "arccos1", "ntk_relu")


def _with_bias(x: np.ndarray) -> np.ndarray:
    return np.hstack([x, np.ones((x.shape[0], 1))])


def kernel_matrix(a: np.ndarray, b: np.ndarray, kernel: str) -> np.ndarray:
    """Linear, arc-cosine order 1 (Cho & Saul) or two-layer ReLU NTK kernel between rows of a and b.

    κ₀(u) = (π − arccos u)/π, κ₁(u) = (u(π − arccos u) + √(1 − u²))/π;
    arccos1 = |a||b|κ₁(u); ntk_relu = a·b κ₀(u) + |a||b|κ₁(u) (both layers trained, no biases: pass
    inputs with a constant coordinate to give the hidden units a bias).
    """
    if kernel not in KERNELS:
        raise ValueError(f"kernel={kernel!r}: choose one of {KERNELS}")
    dot = a @ b.T
    if kernel == "linear":
        return dot
    norms = np.linalg.norm(a, axis=1)[:, None] * np.linalg.norm(b, axis=1)[None, :]
    u = np.clip(dot / np.maximum(norms, 1e-300), -1.0, 1.0)
    theta = np.arccos(u)
    k1 = norms * (u * (np.pi - theta) + np.sqrt(1.0 - u**2)) / np.pi
    return k1 if kernel == "arccos1" else k1 + dot * (np.pi - theta) / np.pi


def kernel_predictor(
    x: np.ndarray, y: np.ndarray, kernel: str, ridge: float = 1e-3
) -> Callable[[np.ndarray], np.ndarray]:
    """Kernel ridge regression on ±1 targets (inputs get a constant coordinate); returns x ↦ f(x).

    The ridge is relative: λ = ridge · mean(diag K), so it means the same at every amplitude α.
    """
    if not ridge > 0:
        raise ValueError(f"ridge={ridge} must be > 0")
    xb = _with_bias(np.asarray(x, dtype=float))
    k = kernel_matrix(xb, xb, kernel)
    coef = solve(k + ridge * np.mean(np.diag(k)) * np.eye(len(k)), np.asarray(y, dtype=float), assume_a="pos")
    return lambda x_new: kernel_matrix(_with_bias(np.asarray(x_new, dtype=float)), xb, kernel) @ coef


def kernel_sweep(
    kernels: Sequence[str], rho_s_values: Sequence[float], alpha_s_values: Sequence[float], seeds: Sequence[int],
    n_kernel: int = 800, ridge: float = 1e-3, base: ShortcutConfig = ShortcutConfig(),
) -> pd.DataFrame:
    """Same metric for kernel machines fitted on the first n_kernel training points of each dataset.

    The LDA reference is fitted on the same n_kernel points, so model and reference see identical data.
    """
    if n_kernel < 2 or n_kernel > base.n_train:
        raise ValueError(f"n_kernel={n_kernel} must lie in [2, n_train={base.n_train}]")
    rows = []
    with single_threaded():
        for data in sweep_data(rho_s_values, alpha_s_values, seeds, base):
            x, y, xp, xt = data.x_train[:n_kernel], data.y_train[:n_kernel], data.x_probe, data.x_test
            ref = reference_metrics(data.config, data.seed, n_kernel)
            for kernel in kernels:
                f = kernel_predictor(x, y, kernel, ridge)
                rel = reliance(hard_decision(f(xp)), data.z_probe)
                rows.append(result_row(f"kernel_{kernel}", 0, data, rel, accuracy(hard_decision(f(xt)), data.y_test), ref))
    return pd.DataFrame(rows, columns=list(RESULT_COLUMNS))


def ntk_predicted_sign(rho_s: float, rho_c: float, alpha_s: float, alpha_c: float = 1.0) -> int:
    """Sign of (α_s²μ_s² − α_c²μ_c²)(α_s − α_c), the card's leading-order NTK prediction (0 when tied)."""
    ms, mc = latent_mean(rho_s), latent_mean(rho_c)
    return int(np.sign((alpha_s**2 * ms**2 - alpha_c**2 * mc**2) * (alpha_s - alpha_c)))
