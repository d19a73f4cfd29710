"""Scenes: which objects, in which colours, where — everything about an image except its pixels.

A scene is drawn before rendering so that captions, metadata and frequency counts never need pixels, and the
same scene can be rendered in every domain.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

SIZE_LEVELS: dict[str, float] = {"small": 0.6, "medium": 0.78, "large": 0.95}
"""Object side as a fraction of its layout cell's shorter side."""

_LAYOUTS: dict[int, tuple[tuple[str, float, float, float, float], ...]] = {
    # name, x0, y0, x1, y1 as fractions of the image side
    1: (("center", 0.0, 0.0, 1.0, 1.0),),
    2: (("left", 0.0, 0.0, 0.5, 1.0), ("right", 0.5, 0.0, 1.0, 1.0)),
    3: (("top-left", 0.0, 0.0, 0.5, 0.5), ("top-right", 0.5, 0.0, 1.0, 0.5),
        ("bottom-left", 0.0, 0.5, 0.5, 1.0), ("bottom-right", 0.5, 0.5, 1.0, 1.0)),
}


@dataclass(frozen=True)
class SceneObject:
    """One placed object. ``box`` is the tight (x0, y0, x1, y1) pixel box of its silhouette (x1, y1 exclusive);
    ``x``, ``y`` are the top-left corner of its size_px × size_px sprite."""

    concept: int
    name: str
    colour: str
    rgb: tuple[int, int, int]
    size: str
    size_px: int
    rotation: int
    x: int
    y: int
    position: str
    box: tuple[int, int, int, int] = (0, 0, 0, 0)

    def as_meta(self) -> dict[str, Any]:
        """JSON-ready dict of every field (tuples as lists)."""
        return {
            "concept": self.concept, "name": self.name, "colour": self.colour, "rgb": list(self.rgb),
            "size": self.size, "size_px": self.size_px, "rotation": self.rotation, "x": self.x, "y": self.y,
            "position": self.position, "box": list(self.box),
        }


@dataclass(frozen=True)
class Scene:
    """Objects left to right (reading order for 3-object grids) plus the seed of the renderer's own noise."""

    objects: tuple[SceneObject, ...]
    render_seed: int


def cells(n_objects: int, image_size: int) -> tuple[tuple[str, int, int, int, int], ...]:
    """Layout cells (name, x0, y0, x1, y1) in pixels for a scene with ``n_objects`` objects."""
    if n_objects not in _LAYOUTS:
        raise ValueError(f"scenes hold 1 to 3 objects, got {n_objects}")
    return tuple((name, round(a * image_size), round(b * image_size), round(c * image_size), round(d * image_size))
                 for name, a, b, c, d in _LAYOUTS[n_objects])


def object_size(level: str, cell: tuple[str, int, int, int, int]) -> int:
    """Sprite side in pixels for a size level inside a cell."""
    _, x0, y0, x1, y1 = cell
    return max(6, int(round(SIZE_LEVELS[level] * min(x1 - x0, y1 - y0))))


def place(cell: tuple[str, int, int, int, int], size_px: int, rng: np.random.Generator | None) -> tuple[int, int]:
    """Top-left corner of a sprite inside a cell: uniform over the free room, or centred when rng is None."""
    _, x0, y0, x1, y1 = cell
    room_x, room_y = x1 - x0 - size_px, y1 - y0 - size_px
    if rng is None:
        return x0 + room_x // 2, y0 + room_y // 2
    return x0 + int(rng.integers(0, room_x + 1)), y0 + int(rng.integers(0, room_y + 1))
