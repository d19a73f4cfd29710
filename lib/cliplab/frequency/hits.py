"""Hits: which concepts each sample has, as a sparse boolean (samples × concepts) matrix with sample keys.

Text hits (captions), image hits (taggers) and their intersection all use this one type, so matched counts
and misalignment are plain sparse algebra. Keys identify samples so the two sides can be aligned.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import pandas as pd
from scipy import sparse


def concat_keys(parts: Sequence[np.ndarray]) -> np.ndarray:
    """Key arrays one after another; mixed kinds (ints and strings) stay as they are, in an object array."""
    if not parts:
        return np.zeros(0, dtype=np.int64)
    if len({p.dtype.kind for p in parts}) > 1:
        return np.concatenate([p.astype(object) for p in parts])
    return np.concatenate(parts)


@dataclass(frozen=True)
class Hits:
    """matrix[i, c] is True when sample i has concept c; ``keys[i]`` names sample i (None: by position)."""

    matrix: sparse.csr_array
    concepts: tuple[str, ...]
    keys: np.ndarray | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.matrix, (sparse.csr_array, sparse.csr_matrix)):
            raise TypeError(f"Hits.matrix must be a scipy CSR array, got {type(self.matrix).__name__}")
        if self.matrix.shape[1] != len(self.concepts):
            raise ValueError(f"hit matrix has {self.matrix.shape[1]} columns but there are "
                             f"{len(self.concepts)} concepts")
        if self.keys is not None and len(self.keys) != self.matrix.shape[0]:
            raise ValueError(f"{len(self.keys)} keys for {self.matrix.shape[0]} samples")

    @classmethod
    def from_pairs(cls, rows: np.ndarray, columns: np.ndarray, n_rows: int, concepts: Sequence[str],
                   keys: Sequence[Any] | np.ndarray | None = None) -> "Hits":
        """From (sample, concept) index pairs; repeated pairs count once."""
        rows, columns = np.asarray(rows, dtype=np.int64), np.asarray(columns, dtype=np.int64)
        if len(rows) != len(columns):
            raise ValueError(f"{len(rows)} row indices but {len(columns)} column indices")
        if len(rows) and (rows.min() < 0 or rows.max() >= n_rows):
            raise ValueError(f"row indices must lie in [0, {n_rows})")
        if len(columns) and (columns.min() < 0 or columns.max() >= len(concepts)):
            raise ValueError(f"concept indices must lie in [0, {len(concepts)})")
        m = sparse.csr_array((np.ones(len(rows), dtype=bool), (rows, columns)), shape=(n_rows, len(concepts)))
        m.sum_duplicates()
        m.data[:] = True
        return cls(m, tuple(concepts), None if keys is None else np.asarray(keys))

    @classmethod
    def from_dense(cls, mask: np.ndarray, concepts: Sequence[str],
                   keys: Sequence[Any] | np.ndarray | None = None) -> "Hits":
        """From a dense boolean (samples × concepts) array."""
        mask = np.asarray(mask)
        if mask.ndim != 2:
            raise ValueError(f"mask must be 2-D (samples × concepts), got shape {mask.shape}")
        return cls(sparse.csr_array(mask.astype(bool)), tuple(concepts), None if keys is None else np.asarray(keys))

    @classmethod
    def concat(cls, parts: Sequence["Hits"]) -> "Hits":
        """Samples of several Hits one after another (same concepts; keys kept only if all have them)."""
        if not parts:
            raise ValueError("concat needs at least one Hits")
        concepts = parts[0].concepts
        if any(p.concepts != concepts for p in parts):
            raise ValueError("all Hits must share the same concepts to be concatenated")
        matrix = sparse.vstack([p.matrix for p in parts], format="csr")
        keys = None if any(p.keys is None for p in parts) else concat_keys([p.keys for p in parts])
        return cls(sparse.csr_array(matrix), concepts, keys)

    def __len__(self) -> int:
        return self.matrix.shape[0]

    def counts(self) -> np.ndarray:
        """Per-concept number of samples with a hit (int64)."""
        return np.bincount(self.matrix.indices, minlength=len(self.concepts)).astype(np.int64)

    def row(self, i: int) -> np.ndarray:
        """Concept indices hit by sample i."""
        return self.matrix.indices[self.matrix.indptr[i]:self.matrix.indptr[i + 1]].copy()

    def names(self, i: int) -> list[str]:
        """Concept names hit by sample i."""
        return [self.concepts[c] for c in self.row(i)]

    def per_sample(self) -> np.ndarray:
        """Number of concepts each sample has."""
        return np.diff(self.matrix.indptr)

    def table(self) -> pd.DataFrame:
        """Long table (key or position, concept) of every hit."""
        rows = np.repeat(np.arange(len(self)), self.per_sample())
        key = rows if self.keys is None else self.keys[rows]
        return pd.DataFrame({"key": key, "concept": [self.concepts[c] for c in self.matrix.indices]})

    def select(self, order: np.ndarray) -> "Hits":
        """These hits with samples reordered/subset by integer positions."""
        order = np.asarray(order, dtype=np.int64)
        return Hits(sparse.csr_array(self.matrix[order]), self.concepts,
                    None if self.keys is None else self.keys[order])

    def aligned_to(self, other: "Hits") -> "Hits":
        """These hits reordered to ``other``'s samples, by key (or by position when either has no keys).

        Raises ValueError when the samples differ (naming how many are missing on each side).
        """
        if self.concepts != other.concepts:
            raise ValueError("text and image hits must use the same ConceptSet (same concepts, same order)")
        if self.keys is None or other.keys is None:
            if len(self) != len(other):
                raise ValueError(f"cannot align {len(self)} samples with {len(other)} by position; give both "
                                 "sides sample keys (key_column=..., keys=...)")
            return self
        if len(self.keys) == len(other.keys) and np.array_equal(self.keys, other.keys):
            return self
        mine = pd.Index(self.keys)
        if not mine.is_unique:
            raise ValueError("sample keys are not unique; cannot align text and image hits by key")
        at = mine.get_indexer(pd.Index(other.keys))
        missing = int((at < 0).sum())
        extra = len(self) - (len(other) - missing)
        if missing or extra:
            raise ValueError(f"text and image sides cover different samples: {missing} keys only on one side, "
                             f"{extra} only on the other; restrict both to the same samples")
        return self.select(at)
