"""The named colour palette: colour words and their RGB anchors."""

from __future__ import annotations

import numpy as np

COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (210, 35, 35),
    "orange": (245, 135, 20),
    "yellow": (240, 215, 30),
    "green": (40, 160, 55),
    "blue": (35, 75, 215),
    "purple": (125, 45, 170),
    "pink": (245, 125, 185),
    "brown": (125, 75, 35),
    "black": (25, 25, 25),
    "grey": (135, 135, 135),
    "white": (250, 250, 250),
    "cyan": (30, 200, 215),
}
"""Every colour word the world knows; a config's palette is a subset (≥ 8)."""


def rgb(name: str) -> np.ndarray:
    """RGB anchor of a colour word as float32 (ValueError for unknown words)."""
    if name not in COLOURS:
        raise ValueError(f"unknown colour {name!r}; known colours: {sorted(COLOURS)}")
    return np.asarray(COLOURS[name], dtype=np.float32)


def contrast_rgb(colour: np.ndarray) -> np.ndarray:
    """The ink used for markings and patterns on an object: near-black on light colours, near-white on dark."""
    luminance = float(colour @ np.array([0.299, 0.587, 0.114], dtype=np.float32))
    return np.full(3, 20.0 if luminance > 110 else 235.0, dtype=np.float32)
