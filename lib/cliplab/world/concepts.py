"""Concepts: procedurally defined object categories with names, parts, colour associations and frequencies.

A concept is a (shape, marking, pattern) triple. Its name has one syllable per part: with probability
``name_overlap`` a slot uses the syllable shared by every concept with that part, otherwise a syllable unique
to the concept — so name similarity tracks visual similarity exactly as much as the knob says.
Which concepts are frequent is a seeded random permutation, independent of their parts and names.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import product
from typing import Literal

import numpy as np

from cliplab.world.config import WorldConfig
from cliplab.world.parts import MARKINGS, PART_KINDS, PATTERNS, SHAPES

Strength = Literal["strong", "weak"]

_ONSETS = ("b", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z", "bl", "dr", "gl", "kr", "pl",
           "sk", "sn", "st", "tr", "zw", "ch", "sh", "fl", "fr", "gr", "br", "kl", "sp", "sw", "th")
_VOWELS = ("a", "e", "i", "o", "u")
_CODAS = ("", "k", "l", "m", "n", "p", "r", "s", "t", "x")
_RESERVED = {"a", "an", "and", "of", "the", "is", "in", "on", "to", "it", "at", "as", "or", "by", "no", "so",
             "photo", "image", "picture", "left", "right", "next", "beside", "color", "colour", "this"}

# Stream tags for seed derivation (see corpus.py); fixed so worlds stay stable across versions.
_CONCEPT_STREAM = 1


@dataclass(frozen=True)
class Concept:
    """One object category.

    id:               index in ``World.concepts``.
    name:             the word captions use for it (lowercase letters only).
    parts:            (shape, marking, pattern) part names.
    strength:         "strong" (canonical colour with probability p_canonical) or "weak" (uniform colour).
    canonical_colour: the strong colour association, None for weak concepts.
    frequency_rank:   1 = most frequent in training; None for held-out concepts.
    heldout:          True if the concept never appears in training corpora.
    """

    id: int
    name: str
    parts: tuple[str, str, str]
    strength: Strength
    canonical_colour: str | None
    frequency_rank: int | None
    heldout: bool


def syllable_inventory() -> list[str]:
    """Every syllable names are built from (onset + vowel + optional coda), minus English function words."""
    return [s for s in ("".join(p) for p in product(_ONSETS, _VOWELS, _CODAS)) if s not in _RESERVED]


def build_concepts(config: WorldConfig) -> list[Concept]:
    """The concepts of a world: parts, names, colour associations, frequency ranks and held-out flags.

    All randomness comes from ``SeedSequence(config.seed)``; concept ids are assigned in a seeded order.
    """
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence(config.seed, spawn_key=(_CONCEPT_STREAM,))))
    k = config.n_concepts
    used = [[table_names[j] for j in sorted(rng.permutation(len(table_names))[:n])]
            for table_names, n in ((list(SHAPES), config.n_shapes), (list(MARKINGS), config.n_markings),
                                   (list(PATTERNS), config.n_patterns))]
    combos = list(product(*used))
    chosen = rng.permutation(len(combos))[:k]
    parts = [combos[i] for i in chosen]

    names = _names(parts, config.name_overlap, rng)

    n_strong = int(round(config.strong_fraction * k))
    strong = np.zeros(k, dtype=bool)
    strong[rng.permutation(k)[:n_strong]] = True
    # Canonical colours cycle through the palette in a seeded order so every colour is equally represented.
    palette = list(config.palette)
    colour_order = rng.permutation(len(palette))
    canonical: list[str | None] = [None] * k
    for j, cid in enumerate(np.flatnonzero(strong)):
        canonical[cid] = palette[colour_order[j % len(palette)]]

    order = rng.permutation(k)  # order[:n_heldout] are held out; the rest get ranks 1.. in this order
    rank: list[int | None] = [None] * k
    for r, cid in enumerate(order[config.n_heldout:], start=1):
        rank[cid] = r
    heldout = set(order[: config.n_heldout].tolist())

    return [
        Concept(
            id=i, name=names[i], parts=tuple(parts[i]), strength="strong" if strong[i] else "weak",
            canonical_colour=canonical[i], frequency_rank=rank[i], heldout=i in heldout,
        )
        for i in range(k)
    ]


def _names(parts: list[tuple[str, str, str]], overlap: float, rng: np.random.Generator) -> list[str]:
    """One name per concept: per slot, the part's shared syllable (prob. ``overlap``) or a unique one."""
    inventory = syllable_inventory()
    perm = rng.permutation(len(inventory))
    # Shortest syllables first (random order within a length) keep names short; pop() takes from the end.
    pool = sorted((inventory[i] for i in perm), key=len, reverse=True)
    vocab = {kind: sorted(table) for kind, table in zip(PART_KINDS, (SHAPES, MARKINGS, PATTERNS))}
    shared: dict[tuple[int, str], str] = {}
    for slot, kind in enumerate(PART_KINDS):
        for part in vocab[kind]:
            shared[(slot, part)] = pool.pop()
    names: list[str] = []
    seen: set[str] = set()
    use_shared = rng.random((len(parts), 3)) < overlap
    for c, triple in enumerate(parts):
        while True:
            sylls = [shared[(s, triple[s])] if use_shared[c, s] else pool.pop() for s in range(3)]
            name = "".join(sylls)
            if name not in seen:
                break
            use_shared[c, rng.integers(3)] = False  # rare: two syllable strings concatenate to the same word
        seen.add(name)
        names.append(name)
    return names


def zipf_probabilities(concepts: list[Concept], exponent: float) -> np.ndarray:
    """P(concept) ∝ rank^(−exponent) over non-held-out concepts; exactly 0 for held-out ones."""
    p = np.zeros(len(concepts), dtype=np.float64)
    for c in concepts:
        if c.frequency_rank is not None:
            p[c.id] = float(c.frequency_rank) ** (-exponent)
    return p / p.sum()


def shared_parts(concepts: list[Concept]) -> np.ndarray:
    """K×K matrix of how many of the three parts two concepts share (3 on the diagonal)."""
    arr = np.array([c.parts for c in concepts], dtype=object)
    return sum((arr[:, s][:, None] == arr[:, s][None, :]).astype(np.int64) for s in range(3))
