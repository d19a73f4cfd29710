"""Visual parts of a concept: outer shape, inner marking and surface pattern, as anti-aliased masks.

Each part is an implicit function on normalised sprite coordinates (u, v) ∈ [−1, 1]² (v points down).
``part_mask`` rasterises one part at a pixel size and rotation with 4× supersampling; results are cached,
so a world pays for each (part, size, rotation) once.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Callable

import numpy as np
from matplotlib.path import Path as _MplPath

Implicit = Callable[[np.ndarray, np.ndarray], np.ndarray]
SUPERSAMPLE = 4


def _polygon(vertices: list[tuple[float, float]]) -> Implicit:
    path = _MplPath(np.asarray(vertices, dtype=float))

    def inside(u: np.ndarray, v: np.ndarray) -> np.ndarray:
        pts = np.stack([u.ravel(), v.ravel()], axis=1)
        return path.contains_points(pts).reshape(u.shape)

    return inside


def _star(points: int, outer: float, inner: float) -> list[tuple[float, float]]:
    angles = -np.pi / 2 + np.arange(2 * points) * np.pi / points
    radii = np.where(np.arange(2 * points) % 2 == 0, outer, inner)
    return [(float(r * np.cos(a)), float(r * np.sin(a))) for r, a in zip(radii, angles)]


def _heart(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    x, y = u / 0.95, -(v - 0.1) / 0.95  # classic implicit heart, y up, nudged to centre it
    return (x**2 + y**2 - 0.7) ** 3 - x**2 * y**3 * 0.9 <= 0


SHAPES: dict[str, Implicit] = {
    "circle": lambda u, v: u**2 + v**2 <= 0.88**2,
    "square": lambda u, v: np.maximum(np.abs(u), np.abs(v)) <= 0.68,
    "triangle": _polygon([(0.0, -0.9), (0.92, 0.72), (-0.92, 0.72)]),
    "star": _polygon(_star(5, 0.97, 0.45)),
    "cross": lambda u, v: ((np.abs(u) <= 0.34) & (np.abs(v) <= 0.9)) | ((np.abs(v) <= 0.34) & (np.abs(u) <= 0.9)),
    "heart": _heart,
    "crescent": lambda u, v: (u**2 + v**2 <= 0.9**2) & ((u - 0.78) ** 2 + v**2 > 0.58**2),
    "house": _polygon([(-0.72, -0.05), (0.0, -0.92), (0.72, -0.05), (0.72, 0.82), (-0.72, 0.82)]),
}
"""Outer shapes: distinct silhouettes that stay distinct under ±40° rotation."""

MARKINGS: dict[str, Implicit] = {
    "plain": lambda u, v: np.zeros_like(u, dtype=bool),
    "dot": lambda u, v: u**2 + v**2 <= 0.24**2,
    "ring": lambda u, v: (u**2 + v**2 <= 0.38**2) & (u**2 + v**2 >= 0.2**2),
    "hbar": lambda u, v: (np.abs(v) <= 0.12) & (np.abs(u) <= 0.5),
    "vbar": lambda u, v: (np.abs(u) <= 0.12) & (np.abs(v) <= 0.5),
    "x": lambda u, v: ((np.abs(u - v) <= 0.17) | (np.abs(u + v) <= 0.17)) & (np.maximum(np.abs(u), np.abs(v)) <= 0.4),
    "twodots": lambda u, v: ((u - 0.3) ** 2 + v**2 <= 0.16**2) | ((u + 0.3) ** 2 + v**2 <= 0.16**2),
    "box": lambda u, v: np.maximum(np.abs(u), np.abs(v)) <= 0.22,
}
"""Inner markings, drawn in contrast ink at the sprite centre."""

PATTERNS: dict[str, Implicit] = {
    "solid": lambda u, v: np.zeros_like(u, dtype=bool),
    "hstripes": lambda u, v: np.floor((v + 1) * 3.0) % 2 == 1,
    "vstripes": lambda u, v: np.floor((u + 1) * 3.0) % 2 == 1,
    "checker": lambda u, v: (np.floor((u + 1) * 2.5) + np.floor((v + 1) * 2.5)) % 2 == 1,
    "diagonal": lambda u, v: np.floor((u + v + 2) * 2.2) % 2 == 1,
    "spots": lambda u, v: ((np.mod((u + 1) * 2.5, 1) - 0.5) ** 2 + (np.mod((v + 1) * 2.5, 1) - 0.5) ** 2) <= 0.09,
    "gradient": lambda u, v: np.zeros_like(u, dtype=bool),  # special-cased: shade ramps top to bottom
    "rim": lambda u, v: np.zeros_like(u, dtype=bool),  # special-cased: dark rim along the silhouette
}
"""Surface patterns, drawn in half-strength contrast ink across the shape."""

PART_KINDS: tuple[str, str, str] = ("shape", "marking", "pattern")
_TABLES: dict[str, dict[str, Implicit]] = {"shape": SHAPES, "marking": MARKINGS, "pattern": PATTERNS}


@lru_cache(maxsize=None)
def _rotated_grid(size: int, rotation: int) -> tuple[np.ndarray, np.ndarray]:
    """Supersampled sprite coordinates, rotated by −rotation so parts appear rotated by +rotation."""
    n = size * SUPERSAMPLE
    c = (np.arange(n) + 0.5) / n * 2.0 - 1.0
    v, u = np.meshgrid(c, c, indexing="ij")
    t = np.deg2rad(rotation)
    return np.cos(t) * u + np.sin(t) * v, -np.sin(t) * u + np.cos(t) * v


def _downsample(mask: np.ndarray, size: int) -> np.ndarray:
    return mask.reshape(size, SUPERSAMPLE, size, SUPERSAMPLE).mean(axis=(1, 3), dtype=np.float32)


@lru_cache(maxsize=None)
def part_mask(kind: str, name: str, size: int, rotation: int) -> np.ndarray:
    """Anti-aliased coverage (float32 size×size in [0, 1]) of one part; read-only, cached."""
    if kind not in _TABLES:
        raise ValueError(f"unknown part kind {kind!r}; expected one of {PART_KINDS}")
    if name not in _TABLES[kind]:
        raise ValueError(f"unknown {kind} {name!r}; expected one of {sorted(_TABLES[kind])}")
    u, v = _rotated_grid(size, rotation)
    if kind == "pattern" and name == "gradient":
        hi = np.clip((v + 0.9) / 1.8, 0.0, 1.0)
        out = _downsample(hi.astype(np.float32), size)
    else:
        out = _downsample(_TABLES[kind][name](u, v).astype(np.float32), size)
    out.setflags(write=False)
    return out
