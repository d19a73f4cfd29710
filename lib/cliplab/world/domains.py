"""Rendering domains: how a scene's background and objects are drawn (clean, textured, sketch, noisy).

Domains share scenes, so the same sample index gives the same objects in every domain — an OOD evaluation
changes only the style. Textured backgrounds come from a seeded bank built once per world.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

TEXTURE_KINDS: tuple[str, ...] = ("blotches", "stripes", "grain")
_BANK_PER_KIND = 16


def plain_background(size: int, rng: np.random.Generator) -> np.ndarray:
    """An off-white, slightly tinted canvas (float32 size×size×3)."""
    base = 255.0 - rng.uniform(0.0, 22.0) - rng.uniform(0.0, 8.0, 3)
    return np.broadcast_to(base.astype(np.float32), (size, size, 3)).copy()


def texture_bank(size: int, seed: int) -> tuple[np.ndarray, tuple[str, ...]]:
    """Seeded bank of muted textured backgrounds: (array n×size×size×3 float32, kind of each)."""
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=(2,))))
    out, kinds = [], []
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    for kind in TEXTURE_KINDS:
        for _ in range(_BANK_PER_KIND):
            c1, c2 = _muted(rng), _muted(rng)
            if kind == "blotches":
                low = rng.uniform(0, 1, (4, 4)).astype(np.float32)
                mix = np.asarray(Image.fromarray(low, mode="F").resize((size, size), Image.BILINEAR))
            elif kind == "stripes":
                angle, period = rng.uniform(0, np.pi), rng.uniform(5.0, 11.0)
                mix = 0.5 + 0.5 * np.sin(2 * np.pi * (xx * np.cos(angle) + yy * np.sin(angle)) / period)
            else:
                low = rng.uniform(0, 1, (size // 4, size // 4)).astype(np.float32)
                mix = np.asarray(Image.fromarray(low, mode="F").resize((size, size), Image.BILINEAR))
                mix = np.clip(mix + rng.normal(0, 0.15, (size, size)), 0, 1)
            tex = c1 + mix[..., None].astype(np.float32) * (c2 - c1)
            out.append(tex.astype(np.float32))
            kinds.append(kind)
    return np.stack(out), tuple(kinds)


def _muted(rng: np.random.Generator) -> np.ndarray:
    """A random colour pulled halfway to mid-grey, so textures rarely read as a palette colour."""
    return (0.5 * rng.uniform(40, 230, 3) + 0.5 * 150.0).astype(np.float32)


def textured_background(bank: np.ndarray, kinds: tuple[str, ...], rng: np.random.Generator) -> tuple[np.ndarray, str]:
    """A bank texture with a random roll and flips."""
    i = int(rng.integers(len(bank)))
    size = bank.shape[1]
    dx, dy, flips = (int(v) for v in rng.integers(0, [size, size, 4]))
    tex = np.roll(bank[i], (dy, dx), axis=(0, 1))
    if flips & 1:
        tex = tex[:, ::-1]
    if flips & 2:
        tex = tex[::-1]
    return np.ascontiguousarray(tex), kinds[i]


def sketch_lines(alpha: np.ndarray, ink: np.ndarray) -> np.ndarray:
    """Line-drawing coverage from a sprite's silhouette and ink maps (edges of both), in [0, 1]."""
    gy, gx = np.gradient(alpha)
    hy, hx = np.gradient(alpha * ink)
    edges = np.sqrt(gx**2 + gy**2) + np.sqrt(hx**2 + hy**2)
    return np.clip(1.6 * edges, 0.0, 1.0).astype(np.float32)


def add_noise(image: np.ndarray, rng: np.random.Generator, sigma: float = 18.0) -> np.ndarray:
    """The noisy domain: global brightness/contrast jitter plus i.i.d. Gaussian pixel noise."""
    gain, offset = rng.uniform(0.8, 1.1), rng.uniform(-20.0, 20.0)
    noise = rng.standard_normal(image.shape, dtype=np.float32) * sigma
    return (image - 128.0) * gain + 128.0 + offset + noise
