"""Rendering: concept sprites (cached per size and rotation) composited onto a domain's background.

A sprite is two float32 maps: ``alpha`` (coverage of the silhouette) and ``ink`` (how far each pixel moves
from the object's colour toward its contrast ink: markings and patterns). Compositing is a few vectorised
array operations per object, which is what makes thousands of images per second possible on one core.
"""

from __future__ import annotations

import zlib

import numpy as np
from scipy.ndimage import minimum_filter

from cliplab.world.colours import contrast_rgb
from cliplab.world.concepts import Concept
from cliplab.world.domains import (
    add_noise, plain_background, sketch_lines, texture_bank, textured_background,
)
from cliplab.world.parts import part_mask
from cliplab.world.scene import Scene

MARKING_INK = 0.85
PATTERN_INK = 0.45

Sprite = tuple[np.ndarray, np.ndarray, tuple[int, int, int, int]]


def stream_code(name: str) -> int:
    """A stable 32-bit code for a string (split or domain name) used in seed derivation."""
    return zlib.crc32(name.encode("utf-8"))


class Renderer:
    """Draws scenes of a fixed set of concepts at a fixed image size; caches sprites and the texture bank."""

    def __init__(self, concepts: list[Concept], image_size: int, seed: int) -> None:
        self.concepts = concepts
        self.image_size = image_size
        self.seed = seed
        self._sprites: dict[tuple[int, int, int, bool], Sprite] = {}
        self._bank: tuple[np.ndarray, tuple[str, ...]] | None = None

    def sprite(self, concept: int, size_px: int, rotation: int, sketch: bool = False) -> Sprite:
        """(alpha, ink, tight box within the sprite) of a concept at a size and rotation; cached, read-only."""
        key = (concept, size_px, rotation, sketch)
        hit = self._sprites.get(key)
        if hit is not None:
            return hit
        shape, marking, pattern = self.concepts[concept].parts
        alpha = part_mask("shape", shape, size_px, rotation)
        if pattern == "rim":
            pat = np.clip(alpha - minimum_filter(alpha, size=3, mode="constant"), 0.0, 1.0)
        else:
            pat = part_mask("pattern", pattern, size_px, rotation)
        ink = np.maximum(PATTERN_INK * pat, MARKING_INK * part_mask("marking", marking, size_px, rotation))
        ink = (ink * (alpha > 0)).astype(np.float32)
        if sketch:
            alpha, ink = sketch_lines(alpha, ink), np.zeros_like(alpha)
        ys, xs = np.nonzero(alpha > 0.25)
        box = (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1) if len(xs) else (0, 0, 0, 0)
        alpha.setflags(write=False)
        ink.setflags(write=False)
        self._sprites[key] = (alpha, ink, box)
        return self._sprites[key]

    def tight_box(self, concept: int, size_px: int, rotation: int, x: int, y: int) -> tuple[int, int, int, int]:
        """The silhouette's pixel box (x0, y0, x1, y1) when the sprite's corner is at (x, y)."""
        bx0, by0, bx1, by1 = self.sprite(concept, size_px, rotation)[2]
        return x + bx0, y + by0, x + bx1, y + by1

    def render(self, scene: Scene, domain: str) -> np.ndarray:
        """Pixels (uint8 H×W×3) of a scene in a domain; a pure function of (scene, domain)."""
        return self.render_with_background(scene, domain)[0]

    def render_with_background(self, scene: Scene, domain: str) -> tuple[np.ndarray, str]:
        """Pixels of a scene in a domain plus the name of the background style used (for metadata)."""
        rng = self._rng(scene, domain)
        s = self.image_size
        if domain == "textured":
            image, background = textured_background(*self._texture_bank(), rng)
        elif domain in ("clean", "sketch", "noisy"):
            image = plain_background(s, rng)
            background = {"clean": "plain", "sketch": "paper", "noisy": "plain+noise"}[domain]
        else:
            raise ValueError(f"unknown domain {domain!r}; expected clean, textured, sketch or noisy")
        sketch = domain == "sketch"
        for obj in scene.objects:
            alpha, ink, _ = self.sprite(obj.concept, obj.size_px, obj.rotation, sketch)
            colour = np.asarray(obj.rgb, dtype=np.float32)
            paint = colour + ink[..., None] * (contrast_rgb(colour) - colour)
            x0, y0 = max(obj.x, 0), max(obj.y, 0)
            x1, y1 = min(obj.x + obj.size_px, s), min(obj.y + obj.size_px, s)
            sy, sx = slice(y0 - obj.y, y1 - obj.y), slice(x0 - obj.x, x1 - obj.x)
            region = image[y0:y1, x0:x1]
            region += alpha[sy, sx, None] * (paint[sy, sx] - region)
        if domain == "noisy":
            image = add_noise(image, rng)
        return np.clip(image + 0.5, 0, 255).astype(np.uint8), background

    def _rng(self, scene: Scene, domain: str) -> np.random.Generator:
        seq = np.random.SeedSequence(scene.render_seed, spawn_key=(stream_code(domain),))
        return np.random.Generator(np.random.PCG64(seq))

    def _texture_bank(self) -> tuple[np.ndarray, tuple[str, ...]]:
        if self._bank is None:
            self._bank = texture_bank(self.image_size, self.seed)
        return self._bank
