"""Image-side concept hits through a tagger: the world's ground truth, or a CLIP-style zero-shot scorer.

The paper tags every pretraining image with RAM++ and keeps all per-concept probabilities, so the threshold
(0.5 / 0.6 / 0.7) can be changed without re-running the tagger (card §2). ``ClipTagger`` does the same for
any scorer — a callable mapping a batch of images to an (n_images × n_concepts) score matrix — and
``clip_scorer`` builds one from a ``cliplab.models`` model with open_clip's zero-shot classifier.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Literal, Protocol, Sequence, runtime_checkable

import numpy as np

from cliplab.frequency.concepts import ConceptSet
from cliplab.frequency.hits import Hits, concat_keys

Scorer = Callable[[Any], Any]
"""images (a sliceable batch: list, numpy array or tensor) → (n_images × n_concepts) scores."""


@runtime_checkable
class Tagger(Protocol):
    """Anything that says which concepts each image shows, as Hits over its ConceptSet."""

    concepts: ConceptSet

    def tag(self, images: Any, keys: Sequence[Any] | None = None) -> Hits:
        """Hits for a batch of images (keys name the samples; default: their positions)."""
        ...


class GroundTruthTagger:
    """The world's exact image content: concept c is hit when the scene contains an object of concept c.

    ``images`` are sample metadata dicts (``Sample.meta`` / ``Draw.meta`` / the shards' json); concepts of the
    world that are not in ``concepts`` (matched by name) are ignored.
    """

    def __init__(self, world: Any, concepts: ConceptSet | None = None) -> None:
        if not hasattr(world, "concepts") or not hasattr(world, "draw"):
            raise TypeError(f"GroundTruthTagger needs a cliplab.world.World, got {type(world).__name__}")
        self.world = world
        self.concepts = ConceptSet.from_world(world) if concepts is None else concepts
        if not isinstance(self.concepts, ConceptSet):
            raise TypeError(f"concepts must be a ConceptSet, got {type(self.concepts).__name__}")
        self._column = np.array([self.concepts.index(c.name) if c.name in self.concepts else -1
                                 for c in world.concepts], dtype=np.int64)

    def _hits(self, concept_lists: list[Sequence[int]], keys: Sequence[Any] | None) -> Hits:
        lengths = np.fromiter((len(c) for c in concept_lists), dtype=np.int64, count=len(concept_lists))
        flat = np.fromiter((int(c) for cs in concept_lists for c in cs), dtype=np.int64, count=int(lengths.sum()))
        rows = np.repeat(np.arange(len(concept_lists)), lengths)
        if len(flat) and (flat.min() < 0 or flat.max() >= len(self._column)):
            raise ValueError(f"concept ids must lie in [0, {len(self._column)}) for this world")
        cols = self._column[flat]
        keep = cols >= 0
        return Hits.from_pairs(rows[keep], cols[keep], len(concept_lists), self.concepts.names, keys)

    def tag(self, images: Iterable[dict[str, Any]], keys: Sequence[Any] | None = None) -> Hits:
        """Hits from metadata dicts; keys default to each meta's ``index``."""
        metas = list(images)
        bad = [i for i, m in enumerate(metas) if not isinstance(m, dict) or "objects" not in m]
        if bad:
            raise ValueError(f"GroundTruthTagger.tag needs sample metadata dicts with 'objects' "
                             f"(e.g. world.draw(i).meta); entries {bad[:5]} are not")
        if keys is None and all("index" in m for m in metas):
            keys = [m["index"] for m in metas]
        return self._hits([[o["concept"] for o in m["objects"]] for m in metas], keys)

    def tag_range(self, n: int, split: str = "train", start: int = 0) -> Hits:
        """Hits of samples start..start+n−1 of a split (drawn without pixels); keys are the sample indices."""
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise ValueError(f"n must be a non-negative int, got {n!r}")
        return self.tag(self.world.draw(i, split).meta for i in range(start, start + n))

    def tag_index(self, index: Any, key_column: str = "index") -> Hits:
        """Hits from a shard index table (``cliplab.world.read_index``), keyed by ``key_column``."""
        if "concepts" not in getattr(index, "columns", ()) or key_column not in index.columns:
            raise ValueError(f"index must be the DataFrame from read_index with 'concepts' and {key_column!r} columns")
        return self._hits(list(index["concepts"]), index[key_column].to_numpy())


class ClipTagger:
    """Thresholded scores from any scorer, keeping every score so thresholds can be re-chosen for free.

    Each ``tag`` call scores its images in batches of ``batch_size`` and appends the scores (float32) and
    keys; ``hits(threshold)`` re-thresholds everything scored so far without calling the scorer again.
    A concept hits an image when its score is strictly above the threshold (as RAM++'s "exceeds t").
    """

    def __init__(self, scorer: Scorer, concepts: ConceptSet, threshold: float = 0.5, batch_size: int = 256) -> None:
        if not callable(scorer):
            raise TypeError("scorer must be callable (images → n_images × n_concepts scores), "
                            f"got {type(scorer).__name__}")
        if not isinstance(concepts, ConceptSet):
            raise TypeError(f"concepts must be a ConceptSet, got {type(concepts).__name__}")
        _check_threshold(threshold)
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        self.scorer, self.concepts, self.threshold, self.batch_size = scorer, concepts, float(threshold), batch_size
        self._scores: list[np.ndarray] = []
        self._keys: list[np.ndarray] = []
        self.n_scored = 0

    def tag(self, images: Any, keys: Sequence[Any] | None = None) -> Hits:
        """Score a batch of images, keep the scores, and return its hits at the current threshold."""
        n = len(images)
        if keys is not None and len(keys) != n:
            raise ValueError(f"{len(keys)} keys for {n} images")
        key_arr = np.arange(self.n_scored, self.n_scored + n) if keys is None else np.asarray(keys)
        parts = [self._score(images[s:s + self.batch_size]) for s in range(0, n, self.batch_size)]
        scores = np.concatenate(parts) if parts else np.zeros((0, len(self.concepts)), dtype=np.float32)
        self._scores.append(scores)
        self._keys.append(key_arr)
        self.n_scored += n
        return Hits.from_dense(scores > self.threshold, self.concepts.names, key_arr)

    def _score(self, batch: Any) -> np.ndarray:
        out = self.scorer(batch)
        if hasattr(out, "detach"):
            out = out.detach().cpu().numpy()
        scores = np.asarray(out, dtype=np.float32)
        expected = (len(batch), len(self.concepts))
        if scores.shape != expected:
            raise ValueError(f"scorer returned shape {scores.shape}, expected (n_images, n_concepts) = {expected}")
        if not np.isfinite(scores).all():
            raise ValueError("scorer returned non-finite scores")
        return scores

    @property
    def scores(self) -> np.ndarray:
        """Every score so far, (n_scored × n_concepts) float32."""
        if not self._scores:
            return np.zeros((0, len(self.concepts)), dtype=np.float32)
        if len(self._scores) > 1:
            self._scores = [np.concatenate(self._scores)]
        return self._scores[0]

    @property
    def keys(self) -> np.ndarray:
        """Keys of every scored image, in order."""
        if len(self._keys) > 1:
            self._keys = [concat_keys(self._keys)]
        return self._keys[0] if self._keys else np.zeros(0, dtype=np.int64)

    def hits(self, threshold: float | None = None) -> Hits:
        """Hits of everything scored so far at ``threshold`` (default: the tagger's), without re-scoring."""
        t = self.threshold if threshold is None else _check_threshold(threshold)
        return Hits.from_dense(self.scores > t, self.concepts.names, self.keys)

    def reset(self) -> None:
        """Forget stored scores and keys."""
        self._scores, self._keys, self.n_scored = [], [], 0


def _check_threshold(threshold: float) -> float:
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not np.isfinite(threshold):
        raise ValueError(f"threshold must be a finite number, got {threshold!r}")
    return float(threshold)


def clip_scorer(loaded: Any, concepts: ConceptSet, templates: Sequence[Any] | None = None,
                kind: Literal["softmax", "cosine"] = "softmax", batch_size: int = 256) -> Scorer:
    """A scorer from a ``cliplab.models`` LoadedModel: open_clip zero-shot weights over the concept names.

    kind="softmax": probabilities over the concept set (logits = 100 · cosine, open_clip's scale), rows sum
    to 1; kind="cosine": raw cosine similarities in [−1, 1]. Neither is a calibrated multi-label probability
    like RAM++'s sigmoid, so choose the threshold on held-out data (ClipTagger keeps scores for that).
    """
    if kind not in ("softmax", "cosine"):
        raise ValueError(f"kind must be 'softmax' or 'cosine', got {kind!r}")
    if not isinstance(concepts, ConceptSet):
        raise TypeError(f"concepts must be a ConceptSet, got {type(concepts).__name__}")
    import torch

    from cliplab.eval import DEFAULT_TEMPLATES, class_weights, encode_images
    from cliplab.eval.zeroshot import LOGIT_SCALE

    weights = class_weights(loaded, list(concepts.names), templates or DEFAULT_TEMPLATES)

    def score(images: Any) -> np.ndarray:
        sims = encode_images(loaded, images, batch_size) @ weights
        if kind == "softmax":
            sims = torch.softmax(LOGIT_SCALE * sims, dim=1)
        return sims.numpy()

    return score
