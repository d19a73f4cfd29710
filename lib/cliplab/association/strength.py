"""Object–colour association strength measured from training captions (replaces ConceptNet, card §6).

Counts come from what captions actually say, not from the world's config: every mention of a concept with a
colour word in the first ``n_samples`` captions of a split (``World.draw``: metadata only, no pixels).
Mentions whose colour was omitted carry no (object, colour) evidence and are not counted.

* P(colour | object) = n(object, colour) / n(object)               (n(object): mentions with a colour)
* PMI(object, colour) = log [ P(object, colour) / (P(object) P(colour)) ], with additive smoothing α on every
  (object, colour) cell so unseen pairs get a finite, low value instead of −∞.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from cliplab import stats
from cliplab.association.metrics import pair_cab

MEASURES: tuple[str, ...] = ("p_colour_given_object", "pmi")
WHICH: tuple[str, ...] = ("other", "query", "pair")


def caption_counts(world: Any, n_samples: int, split: str = "train", start: int = 0) -> np.ndarray:
    """(n_concepts, n_colours) counts of colour-bearing mentions in captions ``start .. start+n_samples−1``."""
    if isinstance(n_samples, bool) or not isinstance(n_samples, (int, np.integer)) or n_samples < 1:
        raise ValueError(f"n_samples must be a positive int, got {n_samples!r}")
    index = {c: k for k, c in enumerate(world.palette)}
    counts = np.zeros((len(world.concepts), len(world.palette)), dtype=np.int64)
    for i in range(start, start + int(n_samples)):
        meta = world.draw(i, split).meta
        for concept, colour in zip(meta["caption_concepts"], meta["caption_colours"]):
            if colour is not None:
                counts[concept, index[colour]] += 1
    return counts


def association_strength(world: Any, n_samples: int, split: str = "train", start: int = 0,
                         smoothing: float = 0.5) -> pd.DataFrame:
    """Tidy (concept, name, strength, colour) table with counts, P(colour | object) and smoothed PMI.

    P(colour | object) is NaN for concepts never mentioned with a colour (held-out concepts, for instance).
    """
    if not smoothing >= 0:
        raise ValueError(f"smoothing must be ≥ 0, got {smoothing!r}")
    counts = caption_counts(world, n_samples, split, start)
    return strength_from_counts(counts, world, smoothing)


def strength_from_counts(counts: np.ndarray, world: Any, smoothing: float = 0.5) -> pd.DataFrame:
    """The table of :func:`association_strength` from a (concepts × colours) count matrix."""
    counts = np.asarray(counts)
    k, c = len(world.concepts), len(world.palette)
    if counts.shape != (k, c):
        raise ValueError(f"counts must be (n_concepts, n_colours) = {(k, c)}, got {counts.shape}")
    per_object = counts.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        p_given = counts / per_object[:, None]
    smoothed = counts + smoothing
    joint = smoothed / smoothed.sum()
    with np.errstate(divide="ignore", invalid="ignore"):  # smoothing 0: unseen cells −inf, unseen objects NaN
        pmi = np.log(joint) - np.log(joint.sum(axis=1, keepdims=True)) - np.log(joint.sum(axis=0, keepdims=True))
    concept_ids = np.repeat(np.arange(k), c)
    return pd.DataFrame({
        "concept": concept_ids,
        "name": [world.concepts[i].name for i in concept_ids],
        "strength": [world.concepts[i].strength for i in concept_ids],
        "colour": np.tile(np.asarray(world.palette, dtype=object), k),
        "count": counts.ravel(),
        "object_count": np.repeat(per_object, c),
        "p_colour_given_object": p_given.ravel(),
        "pmi": pmi.ravel(),
    })


def cab_vs_association(scored: pd.DataFrame, strength: pd.DataFrame, measure: str = "p_colour_given_object",
                       which: str = "other") -> tuple[pd.DataFrame, float]:
    """Per-pair CAB joined with association strength, and their Spearman ρ.

    ``which="other"``: strength of the *other* object with its shown colour (the fill-in the paper
    describes: the lemon gets "purple" because eggplant–purple is strong). ``"query"``: the queried
    object with its own shown colour. ``"pair"``: the mean of both (how strongly the image's two
    object–colour bindings are associated in training captions). Columns ``query_association`` and
    ``other_association`` are always added. ρ is NaN when either side is constant.
    """
    if measure not in MEASURES:
        raise ValueError(f"measure must be one of {MEASURES}, got {measure!r}")
    if which not in WHICH:
        raise ValueError(f"which must be one of {WHICH}, got {which!r}")
    per_pair = pair_cab(scored)
    lookup = strength.set_index(["concept", "colour"])[measure]
    for side in ("query", "other"):
        keys = list(zip(per_pair[f"{side}_concept"], per_pair[f"{side}_colour"]))
        missing = [key for key in keys if key not in lookup.index]
        if missing:
            raise ValueError(f"no association strength for (concept, colour) {missing[:3]}; use the same world")
        per_pair[f"{side}_association"] = lookup.loc[keys].to_numpy(dtype=float)
    per_pair["association"] = (per_pair[["query_association", "other_association"]].mean(axis=1, skipna=False)
                               if which == "pair" else per_pair[f"{which}_association"])
    valid = per_pair.dropna(subset=["association", "cab"])
    if len(valid) < 3 or valid["association"].nunique() < 2 or valid["cab"].nunique() < 2:
        return per_pair, float("nan")
    return per_pair, stats.spearman(valid["cab"], valid["association"])


def spearman_pvalue(x: np.ndarray, y: np.ndarray) -> float:
    """Two-sided p-value of Spearman's ρ (scipy), for reporting beside :func:`cab_vs_association`."""
    return float(spearmanr(np.asarray(x, dtype=float), np.asarray(y, dtype=float)).pvalue)


def spearman_ci(x: np.ndarray, y: np.ndarray, seed: int = 0, n_resamples: int = 1000,
                confidence: float = 0.95, groups: np.ndarray | pd.Series | None = None) -> tuple[float, float, float]:
    """Spearman ρ of paired samples and its percentile bootstrap CI.

    Rows are resampled with replacement, or, with ``groups`` (one label per row), whole groups: rows that
    share an image (the two questions of one probe, see :func:`pair_clusters`) are not independent.
    Resamples in which either side is constant (ρ undefined) are skipped; needs ≥ 3 pairs and both sides
    non-constant, else ValueError.
    """
    a, b = np.asarray(x, dtype=float).ravel(), np.asarray(y, dtype=float).ravel()
    if a.size != b.size or a.size < 3:
        raise ValueError(f"spearman_ci needs two equally long samples of ≥ 3 values, got {a.size} and {b.size}")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise ValueError("spearman_ci: inputs contain NaN or inf; drop those rows first")
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        raise ValueError("spearman_ci: one side is constant, so ρ is undefined")
    if not 0 < confidence < 1 or n_resamples < 10:
        raise ValueError("spearman_ci needs 0 < confidence < 1 and n_resamples ≥ 10")
    if groups is not None and len(groups) != a.size:
        raise ValueError(f"groups has {len(groups)} labels for {a.size} pairs; give one label per pair")
    rho = stats.spearman(a, b)
    rng = np.random.default_rng(seed)
    resample = _group_resampler(np.arange(a.size) if groups is None else np.asarray(groups))  # rows: own group
    draws = []
    for _ in range(int(n_resamples)):
        idx = resample(rng)
        if np.ptp(a[idx]) > 0 and np.ptp(b[idx]) > 0:
            draws.append(stats.spearman(a[idx], b[idx]))
    if not draws:
        return rho, rho, rho
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(draws, [tail, 100 - tail])
    return rho, float(low), float(high)


def _group_resampler(groups: np.ndarray) -> Callable[[np.random.Generator], np.ndarray]:
    """Row indices of as many groups as there are, drawn with replacement (each group keeps all its rows)."""
    codes = pd.factorize(groups)[0]
    order = np.argsort(codes, kind="stable")
    _, starts, counts = np.unique(codes[order], return_index=True, return_counts=True)

    def draw(rng: np.random.Generator) -> np.ndarray:
        pick = rng.integers(0, len(starts), len(starts))
        sizes = counts[pick]
        within = np.arange(sizes.sum()) - np.repeat(np.cumsum(sizes) - sizes, sizes)
        return order[np.repeat(starts[pick], sizes) + within]

    return draw


def pair_clusters(per_pair: pd.DataFrame) -> pd.Series:
    """One label per row of a :func:`pair_cab` table: the unordered pair of (concept, colour) bindings, with the
    condition and the model when present. "A asked about B" and "B asked about A" come from the same images."""
    a = per_pair["query_concept"].astype(str) + ":" + per_pair["query_colour"].astype(str)
    b = per_pair["other_concept"].astype(str) + ":" + per_pair["other_colour"].astype(str)
    key = a.where(a < b, b) + "|" + b.where(a < b, a)
    for col in ("condition", "model"):
        if col in per_pair.columns:
            key = per_pair[col].astype(str) + "|" + key
    return key
