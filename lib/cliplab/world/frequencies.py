"""Ground-truth concept frequencies, counted from sample metadata (never from model outputs).

Three counts per concept, as in the concept-frequency paper: samples whose image contains it (image), whose
caption mentions it (text), and both (matched); plus raw object instances. Misalignment makes them differ.
"""

from __future__ import annotations

from typing import Any, Iterable

import numpy as np
import pandas as pd

from cliplab.world.corpus import World


def count_from_meta(world: World, metas: Iterable[dict[str, Any]]) -> pd.DataFrame:
    """Per-concept counts over sample metadata dicts (as in ``Sample.meta`` or the shards' json)."""
    k = len(world.concepts)
    image = np.zeros(k, dtype=np.int64)
    text = np.zeros(k, dtype=np.int64)
    matched = np.zeros(k, dtype=np.int64)
    objects = np.zeros(k, dtype=np.int64)
    n = 0
    for meta in metas:
        n += 1
        in_image = {o["concept"] for o in meta["objects"]}
        in_text = set(meta["caption_concepts"])
        for o in meta["objects"]:
            objects[o["concept"]] += 1
        image[list(in_image)] += 1
        text[list(in_text)] += 1
        both = in_image & in_text
        if both:
            matched[list(both)] += 1
    return _table(world, image, text, matched, objects, n)


def true_frequencies(world: World, n: int, split: str = "train", start: int = 0) -> pd.DataFrame:
    """Exact counts for samples start..start+n−1 of a split (scenes only, no rendering: fast).

    Columns: concept, name, heldout, frequency_rank, strength, canonical_colour, probability, image_count,
    text_count, matched_count, object_count, n_samples.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ValueError(f"n must be a non-negative int, got {n!r}")
    return count_from_meta(world, (world.draw(i, split).meta for i in range(start, start + n)))


def frequencies_from_index(world: World, index: pd.DataFrame) -> pd.DataFrame:
    """The same counts from a shard index table (``read_index``)."""
    required = {"concepts", "caption_concepts"}
    if not required <= set(index.columns):
        raise ValueError(f"index table lacks columns {sorted(required - set(index.columns))}; "
                         "pass the DataFrame returned by read_index")
    metas = ({"objects": [{"concept": int(c)} for c in row.concepts],
              "caption_concepts": [int(c) for c in row.caption_concepts]}
             for row in index.itertuples(index=False))
    return count_from_meta(world, metas)


def _table(world: World, image: np.ndarray, text: np.ndarray, matched: np.ndarray, objects: np.ndarray,
           n: int) -> pd.DataFrame:
    cs = world.concepts
    return pd.DataFrame({
        "concept": [c.id for c in cs],
        "name": [c.name for c in cs],
        "heldout": [c.heldout for c in cs],
        "frequency_rank": pd.array([c.frequency_rank for c in cs], dtype="Int64"),
        "strength": [c.strength for c in cs],
        "canonical_colour": [c.canonical_colour for c in cs],
        "probability": world.train_probabilities(),
        "image_count": image,
        "text_count": text,
        "matched_count": matched,
        "object_count": objects,
        "n_samples": n,
    })
