"""Templated captions with paraphrases: "a photo of a yellow blick and a purple zorp", "a red mip", ...

Captions are built from (name, colour) pairs only, so the concepts and colours a caption mentions are known
exactly and recorded in metadata.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

TEMPLATES: tuple[str, ...] = (
    "{objects}",
    "a photo of {objects}",
    "a picture of {objects}",
    "an image of {objects}",
    "a rendering of {objects}",
    "a scene with {objects}",
)
PAIR_JOINERS: tuple[str, ...] = ("{0} and {1}", "{0} next to {1}", "{0} beside {1}",
                                 "{0} on the left and {1} on the right")
TRIPLE_JOINERS: tuple[str, ...] = ("{0}, {1} and {2}", "{0}, {1}, and {2}")
_POSITIONAL = 3  # index of the joiner that states left/right, which fixes the order of mention


@dataclass(frozen=True)
class Caption:
    """A caption and what it mentions: positions in the scene's object list, in order of mention."""

    text: str
    order: tuple[int, ...]
    colour_omitted: bool


def article(word: str) -> str:
    """'an' before a vowel sound (by spelling), else 'a'."""
    return "an" if word[:1] in "aeiou" else "a"


def phrase(name: str, colour: str | None) -> str:
    """'a red blick', or 'a blick' when the colour is omitted."""
    words = f"{colour} {name}" if colour else name
    return f"{article(words)} {words}"


def compose(names: list[str], colours: list[str], rng: np.random.Generator, omit_colour: bool) -> Caption:
    """A paraphrased caption for objects given left to right; mention order is shuffled half the time."""
    n = len(names)
    if not 1 <= n <= 3:
        raise ValueError(f"captions describe 1 to 3 objects, got {n}")
    template = TEMPLATES[int(rng.integers(len(TEMPLATES)))]
    if n == 1:
        order: tuple[int, ...] = (0,)
        joiner = "{0}"
    elif n == 2:
        j = int(rng.integers(len(PAIR_JOINERS)))
        joiner = PAIR_JOINERS[j]
        order = (0, 1) if j == _POSITIONAL or rng.random() < 0.5 else (1, 0)
    else:
        joiner = TRIPLE_JOINERS[int(rng.integers(len(TRIPLE_JOINERS)))]
        order = tuple(int(k) for k in rng.permutation(3))
    parts = [phrase(names[k], None if omit_colour else colours[k]) for k in order]
    return Caption(template.format(objects=joiner.format(*parts)), order, omit_colour)


def canonical(names: list[str], colours: list[str | None]) -> str:
    """The plain probe caption: objects left to right joined by 'and' ('a yellow blick and a purple zorp')."""
    parts = [phrase(nm, c) for nm, c in zip(names, colours)]
    if len(parts) <= 2:
        return " and ".join(parts)
    return ", ".join(parts[:-1]) + " and " + parts[-1]
