"""Reference classifiers and the metric: the Bayes-optimal rule, LDA, hard decisions, reliance, accuracy."""

from __future__ import annotations

import numpy as np
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

from cliplab.shortcut.framework import check_latents, latent_mean


def hard_decision(scores: np.ndarray) -> np.ndarray:
    """Map real outputs of a ±1-target head to decisions in {−1, +1} (0 counts as +1)."""
    return np.where(np.asarray(scores) >= 0, 1.0, -1.0)


def bayes_weights(rho_s: float, rho_c: float, sigma_sc: float) -> np.ndarray:
    """Σ⁻¹μ: the Bayes-optimal latent rule is sign(μᵀΣ⁻¹z) (equal priors, equal covariances).

    In closed form for Σ = [[1, σ], [σ, 1]], so equal predictivities give exactly equal weights (a numerical
    solve differed in the last bit, which decided every tie probe on the anti-diagonal one way).
    """
    if not abs(sigma_sc) < 1:
        raise ValueError(f"sigma_sc must be in (-1, 1) for Σ to be invertible, got {sigma_sc}")
    mu_s, mu_c = latent_mean(rho_s), latent_mean(rho_c)
    return np.array([mu_s - sigma_sc * mu_c, mu_c - sigma_sc * mu_s]) / (1.0 - sigma_sc**2)


def bayes_decision(z: np.ndarray, rho_s: float, rho_c: float, sigma_sc: float) -> np.ndarray:
    """Hard Bayes decisions sign(μᵀΣ⁻¹z) on latents (n, 2)."""
    return hard_decision(check_latents(z) @ bayes_weights(rho_s, rho_c, sigma_sc))


def reliance(y_hat: np.ndarray, z_probe: np.ndarray) -> float:
    """Reliance on z_s: Σ ŷ·(sign z_s − sign z_c) / Σ |sign z_s − sign z_c| over the probes.

    On the full symmetric grid exactly half the probes conflict and each contributes ±2, so the denominator
    equals the number of probes and this is the card's "mean over probes of ŷ·(sign z_s − sign z_c)".
    Dividing by the conflict weight instead of the count keeps the bounds when probes are excluded (image
    arm): ŷ = sign(z_s) gives +1, ŷ = sign(z_c) gives −1, and |reliance| ≤ 1 always.
    """
    y_hat = np.asarray(y_hat, dtype=float).ravel()
    z_probe = check_latents(z_probe)
    if y_hat.shape[0] != z_probe.shape[0]:
        raise ValueError(f"{y_hat.shape[0]} decisions for {z_probe.shape[0]} probes")
    if not np.all(np.isin(y_hat, (-1.0, 1.0))):
        raise ValueError("decisions must be hard labels in {-1, +1}; threshold scores with hard_decision()")
    conflict = np.sign(z_probe[:, 0]) - np.sign(z_probe[:, 1])
    weight = np.abs(conflict).sum()
    if weight == 0:
        raise ValueError("no probe has conflicting latent signs; reliance is undefined")
    value = float((y_hat * conflict).sum() / weight)
    assert abs(value) <= 1.0 + 1e-12, value
    return value


def fit_lda(x: np.ndarray, y: np.ndarray) -> LinearDiscriminantAnalysis:
    """The reference observer: LDA(solver="lsqr") on the embedded training inputs (singular Σ_x is fine)."""
    return LinearDiscriminantAnalysis(solver="lsqr").fit(np.asarray(x), np.asarray(y))


def accuracy(y_hat: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean(np.asarray(y_hat) == np.asarray(y)))
