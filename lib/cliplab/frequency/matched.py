"""Matched (text ∧ image) concept counts and the misalignment degree, as the paper defines them (card §2).

- matched count f_c = |text-hit samples ∩ image-hit samples| for concept c (the paper's headline x);
- a pair is misaligned when it has ≥ 1 text concept and ≥ 1 image concept and the two sets are disjoint;
  the misalignment degree is the number of misaligned pairs divided by a dataset size (the paper uses a
  fixed ``DATASET_SIZES`` entry, e.g. CC-3M 3,318,333; by default here the number of pairs compared).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import sparse

from cliplab.frequency.hits import Hits


def _check(text: Hits, image: Hits) -> tuple[Hits, Hits]:
    if not isinstance(text, Hits) or not isinstance(image, Hits):
        raise TypeError(f"expected two Hits, got {type(text).__name__} and {type(image).__name__}")
    return text.aligned_to(image), image


def matched_hits(text: Hits, image: Hits) -> Hits:
    """Per-sample concepts present in both the caption and the image (aligned by key)."""
    text, image = _check(text, image)
    both = text.matrix.multiply(image.matrix)
    return Hits(sparse.csr_array(both, dtype=bool), image.concepts, image.keys)


def matched_counts(text: Hits, image: Hits) -> pd.DataFrame:
    """One row per concept: text_count, image_count, matched_count (int64)."""
    text, image = _check(text, image)
    return pd.DataFrame({
        "concept": list(image.concepts),
        "text_count": text.counts(),
        "image_count": image.counts(),
        "matched_count": matched_hits(text, image).counts(),
    })


@dataclass(frozen=True)
class Misalignment:
    """Misaligned pairs, pairs compared, the denominator used, and degree = misaligned / dataset_size."""

    n_misaligned: int
    n_pairs: int
    dataset_size: int
    degree: float


def misaligned(text: Hits, image: Hits) -> np.ndarray:
    """Boolean per sample: ≥ 1 text concept, ≥ 1 image concept, and no concept in both."""
    text, image = _check(text, image)
    both = matched_hits(text, image).per_sample()
    return (text.per_sample() > 0) & (image.per_sample() > 0) & (both == 0)


def misalignment_degree(text: Hits, image: Hits, dataset_size: int | None = None) -> Misalignment:
    """The paper's misalignment degree; ``dataset_size`` defaults to the number of pairs compared."""
    if dataset_size is not None and (isinstance(dataset_size, bool) or not isinstance(dataset_size, int)
                                     or dataset_size < 1):
        raise ValueError(f"dataset_size must be a positive int or None, got {dataset_size!r}")
    flags = misaligned(text, image)
    size = len(flags) if dataset_size is None else dataset_size
    if size == 0:
        raise ValueError("no pairs to compare: both hit sets are empty")
    n = int(flags.sum())
    return Misalignment(n_misaligned=n, n_pairs=len(flags), dataset_size=size, degree=n / size)
