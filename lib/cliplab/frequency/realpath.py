"""The concept-frequency analysis on your own CLIP, corpus and labelled images (the notebook's real path).

Concepts are the image folder's classes; the engine counts them in the caption corpus; zero-shot accuracy per
concept comes from the model on the images. One model is one model: its training randomness cannot be
replicated here, so the replicates of a claim are **disjoint folds of the test images** (each class's images
dealt round-robin into ``folds`` parts, each fold one concept table). A fold is named like a zoo model
(``real-f0`` …) so the zoo's fits and replicate series apply unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from cliplab.frequency.concepts import ConceptSet
from cliplab.frequency.engine import CountResult, count_corpus
from cliplab.frequency.experiment import concept_accuracy, concept_table, prompt_weights

CLAIM_PROMPTS = {"acc_classname": ["{}"], "acc_photo": ["a photo of a {}."]}  # C5's prompt styles besides yours
MIN_SEEN = 4  # concepts counted ≥ once a fold table needs for a slope and a head/tail split


@dataclass(frozen=True)
class RealTables:
    """One concept table per fold (and per fold on the shifted folders), the counts, and the model's top-1."""

    tables: dict[str, pd.DataFrame]
    ood: dict[str, pd.DataFrame]
    counts: CountResult
    correct: int
    total: int
    n_classes: int


def fold_indices(labels: np.ndarray, folds: int) -> list[np.ndarray]:
    """Disjoint folds: each class's images (in file order) dealt round-robin into ``folds`` parts."""
    labels = np.asarray(labels)
    position = np.zeros(len(labels), dtype=np.int64)
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        position[members] = np.arange(len(members)) % folds
    return [np.flatnonzero(position == k) for k in range(folds)]


def _subset(images: Any, index: np.ndarray) -> Any:
    from cliplab.eval.data import LabeledImages

    picked = [images.images[i] for i in index]
    return LabeledImages(picked, images.labels[index], list(images.classnames), images.class_ids)


def fold_name(k: int) -> str:
    return f"real-f{k}"


def real_tables(loaded: Any, images: Any, corpus: str, *, folds: int, templates: Sequence[str],
                ood_images: Sequence[Any] = (), column: str | int | None = "caption", batch_size: int = 64,
                scheduler: Any = None) -> RealTables:
    """Count the classes in ``corpus`` once, then build each fold's concept table (and its shifted-folder table).

    ``images`` and each of ``ood_images`` are ``LabeledImages`` with the same classes. The headline count is
    the text count (tagging the corpus images with the evaluated model would be circular).
    """
    if folds < 2:
        raise ValueError(f"folds must be ≥ 2 (the replicates of a claim on one model), got {folds}")
    smallest = int(np.bincount(images.labels, minlength=len(images.classnames)).min())
    if smallest < folds:
        raise ValueError(f"a class has {smallest} image(s), fewer than folds={folds}: every fold needs every class; "
                         "add images or lower folds")
    for other in ood_images:
        if list(other.classnames) != list(images.classnames):
            raise ValueError(f"a shifted folder has classes {other.classnames}, the images {images.classnames}")
    counts = count_corpus(corpus, ConceptSet(list(images.classnames)), column=column, scheduler=scheduler)
    prompts = {"accuracy": list(templates), **CLAIM_PROMPTS}
    weights = prompt_weights(loaded, images.classnames, prompts)
    tables, ood, correct = {}, {}, 0
    for k, index in enumerate(fold_indices(images.labels, folds)):
        accuracy = concept_accuracy(loaded, _subset(images, index), prompts, batch_size, weights)
        accuracy["concept"] = np.arange(len(accuracy))
        correct += round(float((accuracy["accuracy"] * accuracy["n"]).sum()))
        tables[fold_name(k)] = concept_table(counts.counts, accuracy, count="text_count")
        shifted = []
        for d, other in enumerate(ood_images):
            part = fold_indices(other.labels, folds)[k]
            acc = concept_accuracy(loaded, _subset(other, part), {"accuracy": list(templates)}, batch_size, weights)
            acc["concept"] = np.arange(len(acc))
            shifted.append(concept_table(counts.counts, acc, count="text_count").assign(domain=f"shift{d}"))
        if shifted:
            ood[fold_name(k)] = pd.concat(shifted, ignore_index=True)
    return RealTables(tables, ood, counts, correct, len(images.labels), len(images.classnames))


def fit_problem(tables: dict[str, pd.DataFrame]) -> str:
    """Why the fits would be undefined on these tables ('' when they are defined): too few counted concepts,
    or an accuracy that is the same for every counted concept (a slope of 0 with a zero-width CI is not a
    measurement)."""
    for name, table in tables.items():
        seen = table[table["count"] >= 1]
        if len(seen) < MIN_SEEN:
            return (f"fit undefined: {len(seen)} of {len(table)} classes are named in the corpus on {name} "
                    f"(needs ≥ {MIN_SEEN})")
        if seen["accuracy"].nunique() < 2:
            return f"fit undefined: top-1 is {seen['accuracy'].iloc[0]:.3f} for every counted class on {name}"
        if seen["count"].nunique() < 2:
            return f"fit undefined: every counted class has the same count on {name}"
    return ""
