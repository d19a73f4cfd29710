"""WorldConfig: every knob of the procedural image–caption world, validated up front.

A world is a pure function of its config: the same config gives the same concepts, corpora and pixels.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from cliplab.world.colours import COLOURS
from cliplab.world.parts import MARKINGS, PATTERNS, SHAPES

DOMAINS: tuple[str, ...] = ("clean", "textured", "sketch", "noisy")
"""Rendering styles the renderer knows (see ``cliplab.world.domains``)."""

DEFAULT_PALETTE: tuple[str, ...] = (
    "red", "orange", "yellow", "green", "blue", "purple", "pink", "brown", "black", "grey",
)


@dataclass(frozen=True)
class WorldConfig:
    """Parameters of a procedural world (all defaults give the standard 256-concept, 32 px world).

    seed:            root seed; concepts, frequency ranks and every sample derive from it.
    n_concepts:      number of object categories (≤ n_shapes × n_markings × n_patterns, at most 512).
    image_size:      square image side in pixels (32–64).
    palette:         colour words objects can take (≥ 8, names from ``cliplab.world.colours.COLOURS``).
    p_canonical:     probability a "strong" concept takes its canonical colour (else uniform over the others).
    strong_fraction: fraction of concepts with a canonical colour; the rest take a uniform colour.
    zipf_exponent:   α in P(concept of frequency rank r) ∝ r^(−α) for training objects.
    n_heldout:       concepts never drawn in training corpora (true frequency 0).
    max_objects:     objects per scene are 1..max_objects (≤ 3).
    objects_weights: probability of 1, 2, ... objects per scene (length max_objects, sums to 1).
    p_omit_colour:   probability a caption leaves out every colour word.
    misalignment:    probability a sample's caption is swapped for another sample's caption.
    domains:         rendering styles this world serves (subset of ``DOMAINS``).
    name_overlap:    probability each syllable of a concept's name is its part's shared syllable (else unique
                     to the concept): 0 = names share nothing, 1 = names are fully compositional in the parts.
    n_shapes, n_markings, n_patterns:
                     how many of the 8 shapes / markings / patterns the world uses (a seeded subset); fewer
                     parts means concepts share visual parts more often (n_concepts ≤ their product).
    max_rotation:    objects rotate by a multiple of ``rotation_step`` degrees in [−max_rotation, max_rotation].
    rotation_step:   rotation quantum in degrees (sprites are cached per rotation).
    colour_jitter:   per-object uniform RGB jitter (± this many levels) around the palette colour.
    """

    seed: int = 0
    n_concepts: int = 256
    image_size: int = 32
    palette: tuple[str, ...] = DEFAULT_PALETTE
    p_canonical: float = 0.9
    strong_fraction: float = 0.5
    zipf_exponent: float = 1.0
    n_heldout: int = 16
    max_objects: int = 3
    objects_weights: tuple[float, ...] = (0.6, 0.3, 0.1)
    p_omit_colour: float = 0.1
    misalignment: float = 0.0
    domains: tuple[str, ...] = DOMAINS
    name_overlap: float = 0.5
    n_shapes: int = 8
    n_markings: int = 8
    n_patterns: int = 8
    max_rotation: int = 30
    rotation_step: int = 10
    colour_jitter: int = 12

    def validate(self) -> "WorldConfig":
        """Raise ValueError naming the bad field and the fix; return self so calls can chain."""
        def bad(msg: str) -> None:
            raise ValueError(f"WorldConfig: {msg}")

        for name in ("seed", "n_concepts", "image_size", "n_heldout", "max_objects", "max_rotation",
                     "rotation_step", "colour_jitter", "n_shapes", "n_markings", "n_patterns"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"WorldConfig: {name} must be an int, got {type(value).__name__} {value!r}")
        for name, table in (("n_shapes", SHAPES), ("n_markings", MARKINGS), ("n_patterns", PATTERNS)):
            if not 1 <= getattr(self, name) <= len(table):
                bad(f"{name} must be in [1, {len(table)}], got {getattr(self, name)}")
        max_concepts = self.n_shapes * self.n_markings * self.n_patterns
        if self.seed < 0:
            bad(f"seed must be ≥ 0, got {self.seed}")
        if not 2 <= self.n_concepts <= max_concepts:
            bad(f"n_concepts must be in [2, {max_concepts}] (n_shapes × n_markings × n_patterns), "
                f"got {self.n_concepts}; lower it or use more parts")
        if not 32 <= self.image_size <= 64:
            bad(f"image_size must be in [32, 64] pixels, got {self.image_size}")
        if not isinstance(self.palette, tuple) or len(self.palette) < 8:
            bad(f"palette must be a tuple of ≥ 8 colour names, got {self.palette!r}")
        unknown = [c for c in self.palette if c not in COLOURS]
        if unknown:
            bad(f"unknown palette colours {unknown}; choose from {sorted(COLOURS)}")
        if len(set(self.palette)) != len(self.palette):
            bad(f"palette has duplicate colours: {self.palette}")
        for name in ("p_canonical", "strong_fraction", "p_omit_colour", "misalignment", "name_overlap"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0.0 <= value <= 1.0:
                bad(f"{name} must be a probability in [0, 1], got {value!r}")
        if not isinstance(self.zipf_exponent, (int, float)) or not 0.0 <= self.zipf_exponent <= 5.0:
            bad(f"zipf_exponent must be in [0, 5], got {self.zipf_exponent!r}")
        if not 0 <= self.n_heldout <= self.n_concepts - 1:
            bad(f"n_heldout must be in [0, n_concepts − 1 = {self.n_concepts - 1}], got {self.n_heldout}")
        if not 1 <= self.max_objects <= 3:
            bad(f"max_objects must be 1, 2 or 3, got {self.max_objects}")
        w = self.objects_weights
        if len(w) != self.max_objects:
            bad(f"objects_weights needs one weight per object count 1..{self.max_objects}, got {w!r}")
        if any((not isinstance(x, (int, float))) or x < 0 for x in w) or abs(sum(w) - 1.0) > 1e-6:
            bad(f"objects_weights must be non-negative and sum to 1, got {w!r}")
        if not self.domains or any(d not in DOMAINS for d in self.domains):
            bad(f"domains must be a non-empty subset of {DOMAINS}, got {self.domains!r}")
        if len(set(self.domains)) != len(self.domains):
            bad(f"domains has duplicates: {self.domains!r}")
        if not 0 <= self.max_rotation <= 40:
            bad(f"max_rotation must be in [0, 40] degrees (beyond that squares and triangles alias), "
                f"got {self.max_rotation}")
        if not 1 <= self.rotation_step <= 45:
            bad(f"rotation_step must be in [1, 45] degrees, got {self.rotation_step}")
        if not 0 <= self.colour_jitter <= 40:
            bad(f"colour_jitter must be in [0, 40] RGB levels, got {self.colour_jitter}")
        return self

    def to_dict(self) -> dict[str, Any]:
        """Plain-dict form (lists for tuples) for JSON/YAML provenance."""
        d = asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "WorldConfig":
        """Inverse of ``to_dict`` (lists become tuples); unknown keys raise ValueError."""
        names = set(cls.__dataclass_fields__)
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"WorldConfig.from_dict: unknown keys {sorted(unknown)}; known: {sorted(names)}")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()}).validate()
