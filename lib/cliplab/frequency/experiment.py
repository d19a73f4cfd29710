"""Glue of the concept-frequency replication: per-concept accuracy and engine counts, for the world or real data.

One concept-keyed table per model is the single source of every fit (card §6 "Hygiene"): concept, name, the
visual key (parts, shared across worlds), the counts from the engine (text via ``count_corpus`` on the
training captions, image via a tagger, matched = both) and zero-shot accuracy per prompt set / test domain.

- :func:`corpus_counts` — engine counts of a world's training corpus (GroundTruthTagger or given image hits);
- :func:`clip_tag_world` — a CLIP tagger (the RAM++ analogue) over rendered training images, thresholded at the
  F1-best threshold on held-out images (:func:`f1_threshold`);
- :func:`concept_accuracy` / :func:`world_accuracy` — per-concept zero-shot accuracy (images encoded once,
  several prompt sets); :func:`prompt_weights` builds the classifiers once for several test domains;
- :func:`train_world_model` — train a tiny CLIP on a variant of a zoo world (e.g. with caption misalignment);
- :func:`misalignment_control` — such models at several caption-swap rates, with the frequency slope of each;
- :func:`real_concept_table` — the same table for a real open_clip model, caption corpus and image folder.
"""

from __future__ import annotations

import dataclasses
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
from cliplab.frequency.concepts import ConceptSet
from cliplab.frequency.engine import CountResult, count_corpus
from cliplab.frequency.hits import Hits
from cliplab.frequency.image import ClipTagger, GroundTruthTagger, clip_scorer
from cliplab.frequency.matched import Misalignment, matched_counts, misalignment_degree
from cliplab.frequency.scaling import SlopeFit, _check_boot, fit_slope

Templates = Sequence[Any]


def visual_keys(world: Any) -> list[str]:
    """Each concept's parts as 'shape/marking/pattern': the same key is the same sprite in every world seed."""
    return ["/".join(c.parts) for c in world.concepts]


def world_captions(world: Any, n: int, split: str = "train", start: int = 0) -> tuple[pd.DataFrame, list[dict]]:
    """Captions (columns index, caption) and metadata of samples start..start+n−1, drawn without pixels."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive int, got {n!r}")
    draws = [world.draw(i, split) for i in range(start, start + n)]
    frame = pd.DataFrame({"index": [d.meta["index"] for d in draws], "caption": [d.caption for d in draws]})
    return frame, [d.meta for d in draws]


@dataclass(frozen=True)
class CorpusCounts:
    """Engine counts of one corpus: table (concept, name, text_count, image_count, matched_count), the
    misalignment by the paper's definition, the text and image hits, and the text count's run report."""

    table: pd.DataFrame
    misalignment: Misalignment
    text_hits: Hits
    image_hits: Hits
    text_result: CountResult


def corpus_counts(world: Any, n: int, *, image_hits: Hits | None = None, split: str = "train") -> CorpusCounts:
    """Count the first ``n`` training samples of ``world`` with the engine.

    Text: ``count_corpus`` over the captions (whole-phrase, lemmatised), keyed by sample index. Image: the
    world's GroundTruthTagger, or ``image_hits`` from another tagger (keys = sample indices; may cover only a
    subset of the samples, then text hits are restricted to them).
    """
    concepts = ConceptSet.from_world(world)
    frame, metas = world_captions(world, n, split)
    text = count_corpus(frame, concepts, key_column="index", keep_hits=True)
    if image_hits is None:
        image_hits = GroundTruthTagger(world, concepts).tag(metas)
    elif image_hits.concepts != concepts.names:
        raise ValueError("image_hits must use the world's concepts in id order (ConceptSet.from_world)")
    text_hits = text.hits
    if image_hits.keys is not None and len(image_hits) != len(text_hits):
        position = pd.Index(text_hits.keys).get_indexer(pd.Index(image_hits.keys))
        if (position < 0).any():
            raise ValueError("image_hits name samples outside the first n of the corpus")
        text_hits = text_hits.select(position)
    table = matched_counts(text_hits, image_hits)
    table.insert(0, "name", list(concepts.names))
    table["concept"] = np.arange(len(concepts))
    table = table[["concept", "name", "text_count", "image_count", "matched_count"]]
    return CorpusCounts(table, misalignment_degree(text_hits, image_hits), text_hits, image_hits, text)


def f1_threshold(scores: np.ndarray, truth: np.ndarray, grid: Sequence[float] | None = None) -> float:
    """The threshold on ``scores`` (samples × concepts) with the best micro-F1 against boolean ``truth``.

    Grid: default 60 log-spaced values between the 1st and 99.9th score percentile; ties go to the smallest.
    """
    scores, truth = np.asarray(scores, dtype=float), np.asarray(truth, dtype=bool)
    if scores.shape != truth.shape or scores.ndim != 2 or scores.size == 0:
        raise ValueError(f"scores and truth must be equal-shaped 2-D arrays, got {scores.shape} and {truth.shape}")
    if not truth.any():
        raise ValueError("truth has no positives: a threshold cannot be chosen")
    if grid is None:
        lo, hi = np.percentile(scores, [1, 99.9])
        grid = np.geomspace(max(lo, 1e-6), hi, 60) if lo > 0 else np.linspace(lo, hi, 60)
    best, best_f1 = None, -1.0
    n_true = truth.sum()
    for t in grid:
        pred = scores > t
        tp = (pred & truth).sum()
        f1 = 2 * tp / (pred.sum() + n_true)
        if f1 > best_f1 + 1e-12:
            best, best_f1 = float(t), float(f1)
    return best


@dataclass(frozen=True)
class TaggedCorpus:
    """Image hits of a CLIP tagger over training images, the threshold used, and its F1 on held-out images."""

    hits: Hits
    threshold: float
    calibration_f1: float
    precision: float
    recall: float


def clip_tag_world(tagger_model: Any, world: Any, n: int, *, templates: Templates, threshold: float | None = None,
                   n_calibration: int = 1000, batch_size: int = 256) -> TaggedCorpus:
    """Tag the first ``n`` training images of ``world`` with a CLIP model (softmax over the world's concepts).

    The threshold (``None``: F1-best) is chosen on ``n_calibration`` held-out test-split images with their
    ground truth, never on the training images it then tags; precision and recall are measured there too.
    """
    if isinstance(n_calibration, bool) or not isinstance(n_calibration, int) or n_calibration < 10:
        raise ValueError(f"n_calibration must be an int >= 10, got {n_calibration!r}")
    concepts = ConceptSet.from_world(world)
    tagger = ClipTagger(clip_scorer(tagger_model, concepts, templates), concepts, batch_size=batch_size)
    truth_tagger = GroundTruthTagger(world, concepts)
    cal = list(world.iter_samples(n_calibration, split="test"))
    tagger.tag(np.stack([s.image for s in cal]))
    cal_scores = tagger.scores.copy()
    cal_truth = truth_tagger.tag([s.meta for s in cal]).matrix.toarray()
    chosen = f1_threshold(cal_scores, cal_truth) if threshold is None else float(threshold)
    pred = cal_scores > chosen
    tp = float((pred & cal_truth).sum())
    precision = tp / max(float(pred.sum()), 1.0)
    recall = tp / float(cal_truth.sum())
    f1 = 2 * tp / (float(pred.sum()) + float(cal_truth.sum()))
    tagger.reset()
    images = np.stack([s.image for s in world.iter_samples(n, split="train")])
    tagger.tag(images, keys=np.arange(n))
    return TaggedCorpus(tagger.hits(chosen), chosen, f1, precision, recall)


def world_classnames(world: Any) -> list[str]:
    """The world's class names in concept-id order (the classes of every balanced ``world_eval_set``)."""
    return [c.name for c in world.concepts]


def prompt_weights(loaded: Any, classnames: Sequence[str], prompts: Mapping[str, Templates]) -> dict[str, Any]:
    """The zero-shot classifier (D, C) of each prompt set, built once to reuse over several test sets."""
    from cliplab.eval import class_weights

    return {column: class_weights(loaded, classnames, templates) for column, templates in prompts.items()}


def concept_accuracy(loaded: Any, data: Any, prompts: Mapping[str, Templates], batch_size: int = 256,
                     weights: Mapping[str, Any] | None = None) -> pd.DataFrame:
    """Per-class zero-shot top-1 for several prompt sets, encoding the images once.

    Returns columns concept (``data.class_ids`` or the class index), name, n, and one accuracy column per
    prompt set (named by its key). Classification as open_clip's zero-shot classifier: argmax of image ·
    template-averaged class embeddings. ``weights`` (from :func:`prompt_weights` over ``data.classnames``)
    replaces building the classifier of each prompt set it names; the others are built here.
    """
    from cliplab.eval import class_weights, encode_images

    if not prompts:
        raise ValueError("prompts must map at least one column name to a list of templates")
    weights = dict(weights or {})
    wrong = [c for c, w in weights.items() if c in prompts and w.shape[1] != len(data.classnames)]
    if wrong:
        raise ValueError(f"weights {wrong} have another number of classes than data ({len(data.classnames)})")
    features = encode_images(loaded, data.images, batch_size)
    labels = np.asarray(data.labels)
    n = np.bincount(labels, minlength=len(data.classnames))
    table = pd.DataFrame({"concept": list(data.class_ids) if data.class_ids is not None else np.arange(len(n)),
                          "name": list(data.classnames), "n": n})
    for column, templates in prompts.items():
        classifier = weights[column] if column in weights else class_weights(loaded, data.classnames, templates)
        predictions = (features @ classifier).argmax(dim=1).numpy()
        correct = np.bincount(labels, weights=predictions == labels, minlength=len(n))
        table[column] = np.divide(correct, n, out=np.zeros(len(n)), where=n > 0)
    return table


def world_accuracy(loaded: Any, world: Any, per_concept: int, domain: str, prompts: Mapping[str, Templates],
                   weights: Mapping[str, Any] | None = None) -> pd.DataFrame:
    """:func:`concept_accuracy` on a balanced held-out test set of ``world`` in ``domain`` (every concept);
    ``weights``: classifiers from :func:`prompt_weights` over :func:`world_classnames` (built here if None)."""
    from cliplab.eval import world_eval_set

    data = world_eval_set(world, per_concept, domain=domain)
    if weights is not None and list(data.classnames) != world_classnames(world):
        raise ValueError("the test set's classes are not the world's concepts in id order; build weights for them")
    table = concept_accuracy(loaded, data, prompts, weights=weights)
    table.insert(2, "domain", domain)
    return table


def concept_table(counts: pd.DataFrame, accuracy: pd.DataFrame, world: Any | None = None,
                  count: str = "matched_count") -> pd.DataFrame:
    """Join counts and accuracy on ``concept``; ``count`` becomes the headline x column ``count``.

    With a world, adds its visual key, held-out flag and true frequency rank.
    """
    missing = [c for c in ("concept", count) if c not in counts.columns]
    if missing:
        raise ValueError(f"counts table lacks {missing}; it has {list(counts.columns)}")
    table = accuracy.merge(counts.drop(columns=["name"], errors="ignore"), on="concept", how="left",
                           validate="many_to_one")
    if table[count].isna().any():
        raise ValueError("some evaluated concepts have no count: the two tables cover different concepts")
    table["count"] = table[count].astype(np.int64)
    if world is not None:
        keys, held = visual_keys(world), [c.heldout for c in world.concepts]
        table["key"] = [keys[c] for c in table["concept"]]
        table["heldout"] = [held[c] for c in table["concept"]]
    return table


@dataclass(frozen=True)
class TrainedWorldModel:
    loaded: Any
    world: Any
    entry: Any
    folder: Path


def train_world_model(entry: Any, folder: str | Path, world_params: Mapping[str, Any] | None = None, *,
                      world_overrides: Mapping[str, Any] | None = None,
                      train_overrides: Mapping[str, Any] | None = None) -> TrainedWorldModel:
    """Train a zoo recipe (``ZooEntry``) on its world with ``world_overrides`` (e.g. misalignment) into ``folder``.

    Same corpus indices and architecture as the zoo model; training settings too unless ``train_overrides``
    (TrainConfig fields, e.g. fewer ``steps`` to fit a time budget, or ``num_threads``) replace some.
    """
    from cliplab.models import load_model, train_clip
    from cliplab.zoo import ZooEntry, render_corpus
    from cliplab.world import World

    if not isinstance(entry, ZooEntry):
        raise TypeError(f"entry must be a ZooEntry (cliplab.zoo.read_zoo), got {type(entry).__name__}")
    train = {**entry.train, **dict(train_overrides or {})}
    if "steps" in (train_overrides or {}):
        train.pop("epochs", None)
    variant = dataclasses.replace(entry, world={**entry.world, **dict(world_overrides or {})}, train=train)
    world = World(variant.world_config(dict(world_params or {})))
    data, _ = render_corpus(world, variant.corpus_size)
    train_clip(variant.arch, data, variant.train_config(progress=False), folder,
               resume=False)
    loaded = load_model(f"local-dir:{Path(folder)}")
    return TrainedWorldModel(loaded, world, variant, Path(folder))


@dataclass(frozen=True)
class MisalignedRun:
    """One model of the trained misalignment control: injected swap rate, measured degree, top-1 and slope fit."""

    level: float
    degree: float
    top1: float
    fit: SlopeFit

    def metrics(self, prefix: str = "ctrl.misalign") -> dict[str, float]:
        """``{prefix}.m{percent}.slope`` … (the fit's metrics), ``….top1`` and ``….degree``."""
        key = f"{prefix}.m{round(100 * self.level)}"
        return {**self.fit.metrics(key), f"{key}.top1": self.top1, f"{key}.degree": self.degree}

    def row(self) -> dict[str, float]:
        return {"m": self.level, "slope": self.fit.slope, "ci_low": self.fit.ci_low, "ci_high": self.fit.ci_high,
                "top1": self.top1, "degree": self.degree}


def misalignment_control(entry: Any, levels: Sequence[float], *, steps: int, per_concept: int,
                         world_params: Mapping[str, Any] | None = None, n_boot: int = 2000, seed: int = 0,
                         num_threads: int = 2, progress: bool = True) -> list[MisalignedRun]:
    """Train ``entry``'s recipe for ``steps`` steps at each caption-swap rate in ``levels``; fit each one's slope.

    The trained control of claim C6: what misalignment does to accuracy and to the frequency trend. Each model
    is trained in a temporary folder (nothing is kept), evaluated zero-shot on the clean domain with the zoo's
    colour templates, ``per_concept`` images per concept, and its slope is fitted against the matched counts of
    its own (misaligned) corpus, ``n_boot`` bootstrap resamples seeded with ``seed``.
    """
    from tqdm.auto import tqdm

    from cliplab.zoo import colour_templates

    bad = [lv for lv in levels if isinstance(lv, bool) or not isinstance(lv, (int, float)) or not 0.0 <= lv <= 1.0]
    if bad:
        raise ValueError(f"misalignment levels must be caption-swap rates in [0, 1], got {bad}")
    if not isinstance(steps, int) or steps < 1 or not isinstance(per_concept, int) or per_concept < 1:
        raise ValueError(f"steps and per_concept must be positive integers, got {steps!r} and {per_concept!r}")
    _check_boot(n_boot, 0.95)
    runs = []
    for level in tqdm(list(levels), desc="misaligned models", disable=not progress):
        with tempfile.TemporaryDirectory() as folder:
            trained = train_world_model(entry, folder, world_params, world_overrides={"misalignment": float(level)},
                                        train_overrides={"steps": steps, "num_threads": num_threads})
            counts = corpus_counts(trained.world, entry.corpus_size)
            acc = world_accuracy(trained.loaded, trained.world, per_concept, "clean",
                                 {"accuracy": colour_templates(trained.world.palette)})
        table = concept_table(counts.table, acc, trained.world)
        runs.append(MisalignedRun(float(level), counts.misalignment.degree, float(table["accuracy"].mean()),
                                  fit_slope(table, n_boot=n_boot, seed=seed)))
    return runs


def real_concept_table(loaded: Any, images: Any, corpus: Any, *, prompts: Mapping[str, Templates],
                       column: str | None = None, image_column: str = "", tagger: Any | None = None,
                       tagger_threshold: float = 0.5) -> tuple[pd.DataFrame, CountResult]:
    """The concept table for real data: concepts = the image folder's classes.

    images: ``LabeledImages`` (``cliplab.eval.read_image_folder``); corpus: anything ``count_corpus`` reads.
    Text counts always; with ``image_column`` the corpus images are tagged by ``tagger`` (default: the
    evaluated model, which makes image counts circular — pass an independent tagger for a real study) and
    matched counts become the headline ``count``; otherwise the text count is.
    """
    concepts = ConceptSet(list(images.classnames))
    text = count_corpus(corpus, concepts, column=column, keep_hits=bool(image_column))
    counts = text.counts.copy()
    count = "text_count"
    if image_column:
        from cliplab.eval import read_caption_corpus

        if text.bad_rows.count:
            raise ValueError(f"{text.bad_rows.count} malformed caption rows: image and text rows cannot be paired "
                             "by position; clean the corpus or count text only (image_column='')")
        pairs = read_caption_corpus(corpus, image_column=image_column, caption_column=column)
        scorer = clip_scorer(tagger or loaded, concepts, list(prompts.values())[0])
        image_hits = ClipTagger(scorer, concepts, threshold=tagger_threshold).tag(pairs.images)
        both = matched_counts(text.hits, image_hits)
        counts["image_count"], counts["matched_count"] = both["image_count"], both["matched_count"]
        count = "matched_count"
    accuracy = concept_accuracy(loaded, images, prompts)
    accuracy["concept"] = np.arange(len(accuracy))
    return concept_table(counts, accuracy, count=count), text
