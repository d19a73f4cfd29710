"""Image arm of the shortcut-learning replication (card C4): availability as an object's pixel footprint.

Each image is a small black canvas with two rectangles at random non-overlapping positions. The shortcut
object is drawn in channel 0 ("red"), the core object in channel 1 ("green"), so identity is never in
doubt; each object's brightness encodes its latent, min–max normalised over the probe range:
v_i = (z_i + 3μ_i) / (6μ_i), clipped to [0, 1]. The core object is a base × base square; the shortcut object is
base wide and footprint_ratio·base tall, so its pixel area is exactly footprint_ratio times the core's.
Availability is therefore the footprint ratio alone. Probes are the 900 grid latents rendered at random
positions; probes whose brightness hits 0 or 1 (the grid's outer rows and columns, whose objects vanish into
or saturate the canvas) are excluded, and reliance is normalised over the probes kept.

The reference is the latent LDA (fitted on the training latents), as the card prescribes. Controls train on
core-only and shortcut-only images: their iid accuracy should approach ρ_c and ρ_s (the Bayes accuracy of a
single feature), showing that both features are learnable by the CNN.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn

from cliplab.core.threads import single_threaded
from cliplab.shortcut.framework import latent_mean, probe_grid, sample_latents
from cliplab.shortcut.reference import accuracy, fit_lda, hard_decision, reliance

IMAGE_RESULT_COLUMNS: tuple[str, ...] = (
    "arch", "footprint_ratio", "rho_s", "seed", "n_probes", "reliance_model", "reliance_lda", "bias",
    "acc_model", "acc_lda",
)


@dataclass(frozen=True)
class ImageConfig:
    """One image-arm cell: latents as in ShortcutConfig (η = 0), rendering and CNN training settings."""

    rho_s: float = 0.9
    rho_c: float = 0.9
    sigma_sc: float = 0.6
    footprint_ratio: int = 1
    size: int = 32
    base: int = 4
    n_train: int = 3200
    n_test: int = 1000
    grid_size: int = 30
    channels: int = 16
    epochs: int = 6
    batch_size: int = 64
    lr: float = 3e-3

    def __post_init__(self) -> None:
        for name in ("rho_s", "rho_c"):
            if not 0.5 < getattr(self, name) < 1.0:
                raise ValueError(f"{name}={getattr(self, name)} must lie in (0.5, 1)")
        if not 1 <= self.footprint_ratio:
            raise ValueError(f"footprint_ratio={self.footprint_ratio} must be an int >= 1")
        if self.base * self.footprint_ratio + self.base + 2 > self.size:
            raise ValueError(f"a {self.base}x{self.base * self.footprint_ratio} shortcut and a {self.base}x{self.base} "
                             f"core do not fit side by side on a {self.size}px canvas; lower base or ratio")
        if self.size < 16:
            raise ValueError(f"size={self.size}: use at least 16 px")
        for name in ("n_train", "n_test", "grid_size"):
            if getattr(self, name) < 2 or getattr(self, name) % 2:
                raise ValueError(f"{name} must be even and >= 2")
        if self.epochs < 1 or self.batch_size < 1 or not self.lr > 0 or self.channels < 1:
            raise ValueError("epochs, batch_size, channels must be >= 1 and lr > 0")


def brightness(z: np.ndarray, mu: float) -> np.ndarray:
    """Min–max map of a latent over the probe range [−3μ, 3μ] onto [0, 1], clipped."""
    return np.clip((np.asarray(z, dtype=float) + 3 * mu) / (6 * mu), 0.0, 1.0)


def saturated(z: np.ndarray, rho_s: float, rho_c: float) -> np.ndarray:
    """True where either object's brightness is at 0 or 1 (vanished into the black canvas, or clipped)."""
    v = np.stack([brightness(z[:, 0], latent_mean(rho_s)), brightness(z[:, 1], latent_mean(rho_c))], axis=1)
    return np.any((v <= 1e-9) | (v >= 1 - 1e-9), axis=1)


def _place(size: int, h1: int, w1: int, h2: int, w2: int, rng: np.random.Generator) -> tuple[int, int, int, int]:
    """Top-left corners of two rectangles inside the canvas that neither overlap nor touch (1 px gap)."""
    for _ in range(1000):
        r1, c1 = rng.integers(0, size - h1 + 1), rng.integers(0, size - w1 + 1)
        r2, c2 = rng.integers(0, size - h2 + 1), rng.integers(0, size - w2 + 1)
        if r1 + h1 < r2 or r2 + h2 < r1 or c1 + w1 < c2 or c2 + w2 < c1:
            return int(r1), int(c1), int(r2), int(c2)
    raise RuntimeError("could not place two non-overlapping objects; the canvas is too small")


def render(z: np.ndarray, cfg: ImageConfig, rng: np.random.Generator, show: tuple[bool, bool] = (True, True)) -> np.ndarray:
    """Images (n, 2, size, size) float32 for latents (n, 2); ``show`` drops the shortcut or core object (controls)."""
    z = np.asarray(z, dtype=float)
    if z.ndim != 2 or z.shape[1] != 2:
        raise ValueError(f"latents must have shape (n, 2); got {z.shape}")
    v_s = brightness(z[:, 0], latent_mean(cfg.rho_s))
    v_c = brightness(z[:, 1], latent_mean(cfg.rho_c))
    hs, ws, hc, wc = cfg.base * cfg.footprint_ratio, cfg.base, cfg.base, cfg.base
    images = np.zeros((len(z), 2, cfg.size, cfg.size), dtype=np.float32)
    for i in range(len(z)):
        r1, c1, r2, c2 = _place(cfg.size, hs, ws, hc, wc, rng)
        if show[0]:
            images[i, 0, r1:r1 + hs, c1:c1 + ws] = v_s[i]
        if show[1]:
            images[i, 1, r2:r2 + hc, c2:c2 + wc] = v_c[i]
    return images


class SmallCNN(nn.Module):
    """Three 3×3 conv layers (stride 1, 2, 2) with ReLU, global average pooling, one linear output."""

    def __init__(self, channels: int = 16) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(2, channels, 3, padding=1), nn.ReLU(),
            nn.Conv2d(channels, channels, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(channels, 2 * channels, 3, stride=2, padding=1), nn.ReLU(),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        )
        self.head = nn.Linear(2 * channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))[:, 0]


def train_cnn(images: np.ndarray, y: np.ndarray, cfg: ImageConfig, seed: int) -> SmallCNN:
    """Adam on ½(f − y)² with ±1 targets (decision sign f), init and batch order from ``seed``."""
    g = torch.Generator().manual_seed(int(seed))
    torch_state = torch.random.get_rng_state()
    try:  # nn.Module init draws from the global generator: seed it, then restore the caller's state
        torch.manual_seed(int(seed))
        model = SmallCNN(cfg.channels)
    finally:
        torch.random.set_rng_state(torch_state)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    x, t = torch.from_numpy(images), torch.tensor(y, dtype=torch.float32)
    for _ in range(cfg.epochs):
        order = torch.randperm(len(x), generator=g)
        for b in range(math.ceil(len(x) / cfg.batch_size)):
            idx = order[b * cfg.batch_size:(b + 1) * cfg.batch_size]
            loss = 0.5 * ((model(x[idx]) - t[idx]) ** 2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
    return model.eval()


def predict(model: SmallCNN, images: np.ndarray, batch: int = 512) -> np.ndarray:
    with torch.no_grad():
        return np.concatenate([model(torch.from_numpy(images[i:i + batch])).numpy() for i in range(0, len(images), batch)])


def _streams(seed: int) -> list[np.random.Generator]:
    return [np.random.default_rng([int(seed), 100 + k]) for k in range(5)]


def run_image_cell(cfg: ImageConfig, seed: int) -> dict[str, float | int | str]:
    """Train one CNN on one (footprint ratio, seed) and measure reliance on the unsaturated probes."""
    s_train, s_test, s_render, s_test_render, s_probe = _streams(seed)
    z, y = sample_latents(cfg.n_train, cfg.rho_s, cfg.rho_c, cfg.sigma_sc, s_train)
    zt, yt = sample_latents(cfg.n_test, cfg.rho_s, cfg.rho_c, cfg.sigma_sc, s_test)
    zp = probe_grid(cfg.rho_s, cfg.rho_c, cfg.grid_size)
    keep = ~saturated(zp, cfg.rho_s, cfg.rho_c)
    zp = zp[keep]
    with single_threaded():
        model = train_cnn(render(z, cfg, s_render), y, cfg, seed)
        probe_dec = hard_decision(predict(model, render(zp, cfg, s_probe)))
        test_dec = hard_decision(predict(model, render(zt, cfg, s_test_render)))
        lda = fit_lda(z, y)
    rel_model, rel_lda = reliance(probe_dec, zp), reliance(lda.predict(zp), zp)
    return {"arch": "cnn", "footprint_ratio": cfg.footprint_ratio, "rho_s": cfg.rho_s, "seed": int(seed),
            "n_probes": int(keep.sum()), "reliance_model": rel_model, "reliance_lda": rel_lda,
            "bias": rel_model - rel_lda, "acc_model": accuracy(test_dec, yt), "acc_lda": accuracy(lda.predict(zt), yt)}


def image_sweep(footprint_ratios: Sequence[int], seeds: Sequence[int], base: ImageConfig = ImageConfig()) -> pd.DataFrame:
    """Bias of the CNN against the latent LDA for each footprint ratio and seed (one row per model)."""
    if not footprint_ratios or not seeds:
        raise ValueError("footprint_ratios and seeds must be non-empty")
    rows = [run_image_cell(_with(base, footprint_ratio=int(r)), s) for r in footprint_ratios for s in seeds]
    return pd.DataFrame(rows, columns=list(IMAGE_RESULT_COLUMNS))


def _with(cfg: ImageConfig, **changes: object) -> ImageConfig:
    from dataclasses import replace

    return replace(cfg, **changes)


def single_feature_control(cfg: ImageConfig, feature: str, seed: int) -> dict[str, float | int | str]:
    """Train on images that show only one object; iid accuracy vs that feature's Bayes accuracy ρ_i."""
    if feature not in ("shortcut", "core"):
        raise ValueError(f"feature={feature!r}: choose 'shortcut' or 'core'")
    show = (feature == "shortcut", feature == "core")
    s_train, s_test, s_render, s_test_render, _ = _streams(seed)
    z, y = sample_latents(cfg.n_train, cfg.rho_s, cfg.rho_c, cfg.sigma_sc, s_train)
    zt, yt = sample_latents(cfg.n_test, cfg.rho_s, cfg.rho_c, cfg.sigma_sc, s_test)
    col = 0 if feature == "shortcut" else 1
    with single_threaded():
        model = train_cnn(render(z, cfg, s_render, show), y, cfg, seed)
        acc = accuracy(hard_decision(predict(model, render(zt, cfg, s_test_render, show))), yt)
    return {"feature": feature, "footprint_ratio": cfg.footprint_ratio, "seed": int(seed), "acc_model": acc,
            "acc_single_feature_rule": accuracy(hard_decision(zt[:, col]), yt),
            "rho": cfg.rho_s if feature == "shortcut" else cfg.rho_c}
