"""The model zoo: tiny CLIPs trained on the procedural world, each with a measured model card.

``params.yaml`` holds a ``world:`` block (WorldConfig fields shared by the zoo) and a ``zoo:`` block::

    zoo:
      eval_per_concept: 10          # balanced test images per concept and domain
      quality_per_concept: 200      # clean test images per frequent concept for the quality bar
      train: {steps: 800, batch_size: 256, lr: 0.002, warmup: 50}   # defaults for every model
      models:
        - {name: tiny-s0, arch: cliplab-tiny, corpus_size: 50000, seed: 0}
        - {name: tiny-s1, arch: cliplab-tiny, corpus_size: 50000, seed: 1, train: {steps: 400}}

A model's world is ``WorldConfig(**world_block, seed=entry.seed, **entry.world)``: each seed is its own world, so
the concept -> frequency-rank permutation (and the concepts' names) change with the seed, as the
concept-frequency replication needs. The training corpus is samples ``0..corpus_size-1`` of that world's train
split, rendered once and repeated for as many epochs as ``steps`` asks.

``train_zoo_model`` trains one entry with ``train_clip`` into ``<zoo_dir>/<name>/`` (an open_clip ``local-dir:``
folder, loadable as ``load_model("zoo:<name>")``), then evaluates it zero-shot on balanced held-out images of every
domain and writes the model card: ``card.json`` (machine-readable), ``card.md`` (human-readable),
``training_curve.png`` and ``concepts.csv`` (one row per concept: true training frequencies and zero-shot
accuracy per domain, the single concept-keyed table analyses should start from). The card's ``quality`` block
measures the zoo's quality bar (``QUALITY_TARGET`` zero-shot top-1 on clean images of concepts seen ≥ 1,000
times) on ``quality_per_concept`` images per concept, enough to tell 0.88 from 0.90, which the per-domain table's
handful of images per concept cannot.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import re
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import open_clip
import pandas as pd
import torch
from tqdm.auto import tqdm

from cliplab.models.checkpoint import record_weights_checksum
from cliplab.models.loading import load_model
from cliplab.models.registry import register_configs
from cliplab.models.training import DifferentRun, TrainConfig, TrainData, train_clip

CARD_JSON = "card.json"
CARD_MD = "card.md"
CURVE_PNG = "training_curve.png"
CONCEPTS_CSV = "concepts.csv"
BUCKETS: tuple[tuple[str, int, float], ...] = (
    (">=1000", 1000, float("inf")),
    ("100-999", 100, 1000),
    ("1-99", 1, 100),
    ("never seen", 0, 1),
)
"""Frequency buckets (label, lowest count, highest count exclusive) of matched training occurrences."""
QUALITY_BUCKET, QUALITY_DOMAIN, QUALITY_TARGET = ">=1000", "clean", 0.90
"""The zoo's quality bar: zero-shot top-1 ≥ 0.90 on clean images of concepts seen ≥ 1,000 times in training."""

ENTRY_KEYS = {"name", "arch", "corpus_size", "seed", "world", "train"}
ZOO_KEYS = {"models", "train", "eval_per_concept", "quality_per_concept", "smoke", "jobs"}
SMOKE_KEYS = {"corpus_size", "world", "train", "eval_per_concept", "quality_per_concept"}
SMOKE_SUFFIX = "-smoke"
"""Smoke-scale models live in ``<zoo_dir>-smoke/`` (default ``zoo-smoke/``), beside the default zoo: two DVC outputs
that never overlap, as the smoke replications live apart from the default ones."""
# TrainConfig fields a zoo entry may set; seed comes from the entry, the rest are how it runs, not what it learns.
# num_threads is settable (and part of the model's identity): torch's CPU kernels give other bits on other counts.
SNAPSHOTS = 5  # resumable training snapshots per zoo model
TRAIN_KEYS = {f.name for f in fields(TrainConfig)} - {"seed", "progress", "checkpoint_every"}
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


@dataclass(frozen=True)
class ZooEntry:
    """One zoo model: its folder name, architecture, corpus size, seed, world overrides and train settings.

    ``world`` overrides the shared ``world:`` block (and the seed); ``train`` holds TrainConfig fields
    (``steps`` or ``epochs``, ``batch_size``, ``lr``, ...) already merged with the zoo-wide defaults.
    """

    name: str
    arch: str
    corpus_size: int
    seed: int
    world: dict[str, Any] = field(default_factory=dict)
    train: dict[str, Any] = field(default_factory=dict)
    eval_per_concept: int = 10
    quality_per_concept: int = 200

    def world_config(self, world_params: dict[str, Any] | None = None) -> Any:
        """The WorldConfig of this model's world: the shared block, then ``seed``, then the entry's overrides."""
        from cliplab.world import WorldConfig

        return WorldConfig.from_dict({**(world_params or {}), "seed": self.seed, **self.world})

    def train_config(self, progress: bool = False) -> TrainConfig:
        """The TrainConfig of this model (seeded with the entry's seed; torch threads from ``train.num_threads``).

        A resumable snapshot is written every fifth of the run (``SNAPSHOTS``), so a killed training continues
        from its last one; snapshots do not change the weights (resuming is bit-identical to not stopping).
        """
        config = TrainConfig(**self.train, seed=self.seed, progress=progress)
        every = max(1, config.total_steps(self.corpus_size) // SNAPSHOTS)
        return replace(config, checkpoint_every=every)

    def total_steps(self) -> int:
        """Optimiser steps this entry trains for."""
        return self.train_config().total_steps(self.corpus_size)


def read_zoo(params: dict[str, Any], smoke: bool = False) -> list[ZooEntry]:
    """Validate the ``zoo:`` block of ``params`` (the parsed params.yaml) and return its entries, in order.

    With ``smoke=True`` the ``zoo.smoke`` block (corpus_size, world, train, eval_per_concept) overrides every
    entry: the same names, seeds and architectures at a scale that trains in seconds (CI, notebook smoke runs).

    Every problem is reported with the entry and field it concerns, before anything is trained: unknown keys,
    duplicate or non-folder names, unknown architectures, bad sizes or seeds, world overrides WorldConfig
    rejects, train settings TrainConfig rejects, corpora smaller than a batch, a bad ``jobs`` count.
    """
    if not isinstance(params, dict):
        raise TypeError(f"params must be the parsed params.yaml (a dict), got {type(params).__name__}")
    if "zoo" not in params:
        raise ValueError("params has no 'zoo:' block; add one with a 'models:' list (see cliplab.zoo)")
    zoo = params["zoo"]
    if not isinstance(zoo, dict):
        raise ValueError(f"zoo: must be a mapping with 'models:', got {type(zoo).__name__}")
    _unknown(zoo, ZOO_KEYS, "zoo")
    zoo_jobs(params)
    world_params = params.get("world") or {}
    if not isinstance(world_params, dict):
        raise ValueError(f"world: must be a mapping of WorldConfig fields, got {type(world_params).__name__}")
    defaults = zoo.get("train") or {}
    if not isinstance(defaults, dict):
        raise ValueError(f"zoo.train must be a mapping of TrainConfig fields, got {type(defaults).__name__}")
    _unknown(defaults, TRAIN_KEYS, "zoo.train")
    per_concept = _positive_int(zoo, "eval_per_concept", 10, "zoo")
    quality_per_concept = _positive_int(zoo, "quality_per_concept", 200, "zoo")
    models = zoo.get("models")
    if smoke:
        models = _apply_smoke(zoo.get("smoke"), models)
        per_concept = _positive_int(zoo["smoke"], "eval_per_concept", per_concept, "zoo.smoke")
        quality_per_concept = _positive_int(zoo["smoke"], "quality_per_concept", quality_per_concept, "zoo.smoke")
        if "train" in (zoo.get("smoke") or {}):
            defaults = {**defaults, **zoo["smoke"]["train"]}
            _unknown(defaults, TRAIN_KEYS, "zoo.smoke.train")
    if not isinstance(models, list) or not models:
        raise ValueError("zoo.models must be a non-empty list of {name, arch, corpus_size, seed} mappings")
    archs = set(register_configs())
    entries: list[ZooEntry] = []
    seen: set[str] = set()
    for i, raw in enumerate(models):
        where = f"zoo.models[{i}]"
        if not isinstance(raw, dict):
            raise ValueError(f"{where} must be a mapping with name, arch, corpus_size, seed; got {raw!r}")
        _unknown(raw, ENTRY_KEYS, where)
        missing = sorted({"name", "arch", "corpus_size", "seed"} - set(raw))
        if missing:
            raise ValueError(f"{where} lacks {missing}; every model needs name, arch, corpus_size and seed")
        name = raw["name"]
        where = f"zoo model {name!r}"
        if not isinstance(name, str) or not _NAME.match(name):
            raise ValueError(f"zoo.models[{i}].name must be a plain folder name (letters, digits, . _ -), got {name!r}")
        if name in seen:
            raise ValueError(f"{where} is listed twice; zoo names must be unique")
        seen.add(name)
        if raw["arch"] not in archs:
            raise ValueError(f"{where}: unknown arch {raw['arch']!r}; choose one of {sorted(archs)}")
        for key in ("corpus_size", "seed"):
            value = raw[key]
            if isinstance(value, bool) or not isinstance(value, int) or value < (1 if key == "corpus_size" else 0):
                raise ValueError(f"{where}: {key} must be an int {'>= 1' if key == 'corpus_size' else '>= 0'}, "
                                 f"got {value!r}")
        world = raw.get("world") or {}
        train = raw.get("train") or {}
        if not isinstance(world, dict) or not isinstance(train, dict):
            raise ValueError(f"{where}: world and train must be mappings")
        _unknown(train, TRAIN_KEYS, f"{where} train")
        merged = {**defaults, **train}
        if "steps" in train and "epochs" not in train:
            merged.pop("epochs", None)
        if "epochs" in train and "steps" not in train:
            merged.pop("steps", None)
        entry = ZooEntry(name=name, arch=raw["arch"], corpus_size=raw["corpus_size"], seed=raw["seed"],
                         world=dict(world), train=merged, eval_per_concept=per_concept,
                         quality_per_concept=quality_per_concept)
        try:
            entry.world_config(world_params)
        except (TypeError, ValueError) as err:
            raise ValueError(f"{where}: bad world settings: {err}") from None
        try:
            config = entry.train_config()
        except (TypeError, ValueError) as err:
            raise ValueError(f"{where}: bad train settings: {err}") from None
        if entry.corpus_size < config.batch_size:
            raise ValueError(f"{where}: corpus_size {entry.corpus_size} is smaller than batch_size "
                             f"{config.batch_size}; raise corpus_size or lower batch_size")
        entries.append(entry)
    return entries


def _apply_smoke(smoke: Any, models: Any) -> Any:
    """Entries with the ``zoo.smoke`` corpus size and world overrides applied (train is merged by the caller)."""
    if smoke is None:
        raise ValueError("params has no 'zoo.smoke:' block; add one (corpus_size, world, train) to run at smoke scale")
    if not isinstance(smoke, dict):
        raise ValueError(f"zoo.smoke must be a mapping, got {type(smoke).__name__}")
    _unknown(smoke, SMOKE_KEYS, "zoo.smoke")
    if not isinstance(models, list):
        return models
    out = []
    for raw in models:
        if not isinstance(raw, dict):
            out.append(raw)
            continue
        entry = dict(raw)
        if "corpus_size" in smoke:
            entry["corpus_size"] = smoke["corpus_size"]
        entry["world"] = {**(raw.get("world") or {}), **(smoke.get("world") or {})}
        entry["train"] = {k: v for k, v in (raw.get("train") or {}).items() if k not in (smoke.get("train") or {})}
        out.append(entry)
    return out


def _positive_int(mapping: dict[str, Any], key: str, default: int, where: str) -> int:
    """``mapping[key]`` (or ``default``), checked to be a positive int."""
    value = mapping.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{where}.{key} must be a positive int, got {value!r}")
    return value


def _unknown(mapping: dict[str, Any], known: set[str], where: str) -> None:
    extra = sorted(set(mapping) - known)
    if extra:
        raise ValueError(f"{where}: unknown key(s) {extra}; known: {sorted(known)}")


def colour_templates(palette: Sequence[str]) -> list[Callable[[str], str]]:
    """Zero-shot prompts shaped like the training captions: 'a {colour} {name}', one per palette colour.

    Averaging the class embedding over every colour keeps the name and cancels the colour, so the classifier
    asks "which concept" rather than "which colour".
    """
    if not palette:
        raise ValueError("palette must name at least one colour")
    return [lambda name, colour=colour: f"a {colour} {name}" for colour in palette]


def frequency_bucket(count: int) -> str:
    """The bucket label of a matched training count (see ``BUCKETS``)."""
    for label, low, high in BUCKETS:
        if low <= count < high:
            return label
    raise ValueError(f"count must be >= 0, got {count}")


def render_corpus(world: Any, n: int) -> tuple[TrainData, pd.DataFrame]:
    """Samples 0..n-1 of the world's train split as a TrainData, plus their true per-concept frequencies."""
    from cliplab.world import count_from_meta

    images = np.empty((n, world.config.image_size, world.config.image_size, 3), dtype=np.uint8)
    captions: list[str] = []
    metas: list[dict[str, Any]] = []
    for i, sample in enumerate(world.iter_samples(n, split="train")):
        images[i] = sample.image
        captions.append(sample.caption)
        metas.append({"objects": sample.meta["objects"], "caption_concepts": sample.meta["caption_concepts"]})
    return TrainData(torch.from_numpy(images), captions), count_from_meta(world, metas)


def evaluate(loaded: Any, world: Any, per_concept: int, frequencies: pd.DataFrame) -> tuple[dict[str, Any], pd.DataFrame]:
    """Zero-shot top-1 of ``loaded`` per domain and per frequency bucket; and the per-concept table.

    Buckets use the matched count (image shows the concept and caption names it) of the training corpus.
    Returns (summary dict, concepts table with one ``acc_<domain>`` column per domain).
    """
    from cliplab.eval import world_eval_set, zero_shot_eval

    table = frequencies[["concept", "name", "heldout", "frequency_rank", "strength", "canonical_colour",
                         "probability", "image_count", "text_count", "matched_count", "object_count"]].copy()
    table["bucket"] = [frequency_bucket(int(c)) for c in table["matched_count"]]
    templates = colour_templates(world.palette)
    summary: dict[str, Any] = {"top1": {}, "by_bucket": {}}
    for domain in world.config.domains:
        data = world_eval_set(world, per_concept, domain=domain)
        result = zero_shot_eval(loaded, data, templates)
        per_class = result.per_class.set_index("class_id")
        table[f"acc_{domain}"] = table["concept"].map(per_class["accuracy"]).astype(float)
        summary["top1"][domain] = result.top1
        summary["by_bucket"][domain] = {
            label: bucket_accuracy(per_class.loc[group["concept"]])
            for label, group in ((label, table[table["bucket"] == label]) for label, _, _ in BUCKETS)
            if len(group)
        }
    return summary, table


def bucket_accuracy(per_class: pd.DataFrame) -> dict[str, Any]:
    """Accuracy of a group of classes (rows of a zero-shot per-class table with ``n`` and ``correct``).

    ``accuracy`` is the mean of the per-concept accuracies (equal to the pooled image accuracy on a balanced
    test set); ``ci95`` is the Wilson 95 % interval of the pooled image accuracy (scipy), i.e. the uncertainty
    from the finite number of test images, which decides whether a model is above or below a quality bar.
    """
    from scipy.stats import binomtest

    n_images, correct = int(per_class["n"].sum()), int(per_class["correct"].sum())
    ci = binomtest(correct, n_images).proportion_ci(confidence_level=0.95, method="wilson")
    return {"accuracy": float(per_class["accuracy"].mean()), "n_concepts": int(len(per_class)),
            "n_images": n_images, "ci95": [float(ci.low), float(ci.high)]}


def quality_check(loaded: Any, world: Any, concepts: pd.DataFrame, per_concept: int,
                  bucket: str = QUALITY_BUCKET, domain: str = QUALITY_DOMAIN,
                  target: float = QUALITY_TARGET) -> dict[str, Any]:
    """The quality bar measured on ``per_concept`` test images of each concept in ``bucket`` (of ``concepts``).

    Zero-shot top-1 against every concept of the world (the same classifier as the card's table), on
    ``domain`` images r = 0..per_concept-1 of the test split. ``met`` compares the accuracy (mean over the
    bucket's concepts) with ``target``; ``ci95`` is the Wilson interval over the pooled images, so a miss or pass
    that the interval straddles reads as uncertain. ``top_confusion`` names, per concept, the class its images are
    most often mistaken for and the share of its images that go there (None when none is wrong): what a miss is
    made of. A bucket without concepts gives accuracy and met None.
    """
    from cliplab.eval import LabeledImages, zero_shot_eval

    members = [int(c) for c in concepts.loc[concepts["bucket"] == bucket, "concept"]]
    out: dict[str, Any] = {"bucket": bucket, "domain": domain, "per_concept": per_concept, "target": target,
                           "n_concepts": len(members), "n_images": len(members) * per_concept,
                           "accuracy": None, "ci95": None, "met": None, "per_concept_accuracy": {},
                           "top_confusion": {}}
    if not members:
        return out
    samples = world.eval_set(per_concept, domain=domain, concepts=members)
    data = LabeledImages(images=np.stack([s.image for s in samples]),
                         labels=np.array([int(s.meta["objects"][0]["concept"]) for s in samples]),
                         classnames=[c.name for c in world.concepts], class_ids=[c.id for c in world.concepts])
    result = zero_shot_eval(loaded, data, colour_templates(world.palette))
    per_class = result.per_class.set_index("class_id")
    summary = bucket_accuracy(per_class.loc[members])
    predicted = np.asarray(result.predictions)
    out.update(accuracy=summary["accuracy"], ci95=summary["ci95"], met=bool(summary["accuracy"] >= target),
               per_concept_accuracy={world.concept(c).name: float(per_class.at[c, "accuracy"]) for c in members},
               top_confusion={world.concept(c).name: top_confusion(predicted[data.labels == c], c, world)
                              for c in members})
    return out


def top_confusion(predicted: np.ndarray, concept: int, world: Any) -> dict[str, Any] | None:
    """The class most often predicted for ``concept``'s images other than itself (lowest id on a tie), with the
    share of its images predicted as that class; None when every image is right."""
    wrong = predicted[predicted != concept]
    if not len(wrong):
        return None
    ids, counts = np.unique(wrong, return_counts=True)
    best = int(np.argmax(counts))
    return {"predicted": world.concept(int(ids[best])).name, "share": float(counts[best] / len(predicted))}


def train_zoo_model(entry: ZooEntry, zoo_dir: str | Path, world_params: dict[str, Any] | None = None,
                    progress: bool = False) -> Path:
    """Train ``entry`` into ``<zoo_dir>/<name>/``, evaluate it and write its model card; return the folder.

    Re-running with the same settings reuses the finished checkpoint (``train_clip`` resumes) and rewrites
    the card from it; a folder holding the model as params.yaml defined it before is retrained from scratch.
    """
    if not isinstance(entry, ZooEntry):
        raise TypeError(f"entry must be a ZooEntry (from read_zoo), got {type(entry).__name__}")
    from cliplab.world import World

    world = World(entry.world_config(world_params))
    config = entry.train_config(progress=progress)
    num_threads = config.num_threads
    folder = Path(zoo_dir) / entry.name
    tic = time.perf_counter()
    data, frequencies = render_corpus(world, entry.corpus_size)
    render_s = time.perf_counter() - tic
    tic = time.perf_counter()
    try:
        result = train_clip(entry.arch, data, config, folder, resume=True)
    except DifferentRun:  # params.yaml now defines this model differently: the stored one is stale
        result = train_clip(entry.arch, data, config, folder, resume=False)
    record_weights_checksum(folder)  # models saved before the card carried one
    train_s = time.perf_counter() - tic
    tic = time.perf_counter()
    previous = torch.get_num_threads()
    try:
        torch.set_num_threads(num_threads)
        loaded = load_model(f"zoo:{entry.name}", zoo_dir=zoo_dir)
        summary, concepts = evaluate(loaded, world, entry.eval_per_concept, frequencies)
        quality = quality_check(loaded, world, concepts, entry.quality_per_concept)
    finally:
        torch.set_num_threads(previous)
    eval_s = time.perf_counter() - tic
    history = result.history
    card = {
        "name": entry.name,
        "arch": entry.arch,
        "seed": entry.seed,
        "n_params": int(sum(p.numel() for p in loaded.model.parameters())),
        "world": world.config.to_dict(),
        "data": {"split": "train", "corpus_size": entry.corpus_size, "indices": [0, entry.corpus_size],
                 "domain": "clean", "concepts_seen": int((frequencies["matched_count"] > 0).sum()),
                 "n_concepts": len(world.concepts)},
        "train": {**config.identity(), "total_steps": entry.total_steps(),
                  "epochs": entry.total_steps() * config.batch_size / entry.corpus_size,
                  "final_loss": float(history["loss"].iloc[-min(20, len(history)):].mean()),
                  "final_logit_scale": float(history["logit_scale"].iloc[-1])},
        "throughput": {"samples_per_s": float(np.median(history["samples_per_s"])), "num_threads": num_threads,
                       "train_s": train_s, "render_s": render_s, "eval_s": eval_s,
                       "resumed": bool(result.resumed_from)},
        "eval": {"split": "test", "per_concept": entry.eval_per_concept, "colours": "natural",
                 "templates": [f"a {colour} {{}}" for colour in world.palette], "template_mode": "mean",
                 "chance": 1.0 / len(world.concepts), "buckets_by": "matched_count"},
        "zero_shot_top1": summary["top1"],
        "zero_shot_by_bucket": summary["by_bucket"],
        "quality": quality,
    }
    if result.resumed_from:
        card["throughput"]["train_s"] = None  # reused checkpoint: this call did not train
    concepts.to_csv(folder / CONCEPTS_CSV, index=False)
    (folder / CARD_JSON).write_text(json.dumps(card, indent=2) + "\n")
    (folder / CARD_MD).write_text(card_markdown(card))
    plot_training_curve(history, folder / CURVE_PNG, title=entry.name)
    return folder


def zoo_jobs(params: dict[str, Any]) -> int:
    """``zoo.jobs``: how many zoo models ``cliplab zoo train`` trains at once (default 1).

    How the zoo runs, not what it learns: each model's bits depend on its own ``train.num_threads`` only.
    """
    jobs = (params.get("zoo") or {}).get("jobs", 1)
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"zoo.jobs must be a positive int (models trained at once), got {jobs!r}")
    return jobs


def _training_cost(entry: ZooEntry) -> tuple[int, int, int]:
    """Sort key for scheduling: vision width (most of the compute), text width x layers, samples seen."""
    config = open_clip.get_model_config(entry.arch)
    text = config["text_cfg"]
    samples = entry.total_steps() * entry.train_config().batch_size
    return int(config["vision_cfg"]["width"]), int(text["width"]) * int(text["layers"]), samples


def training_order(entries: Sequence[ZooEntry]) -> list[ZooEntry]:
    """The order ``train_zoo`` starts models in: most expensive first (wide vision tower, then text, then samples),
    so the long jobs do not end up alone at the end of a parallel run."""
    return sorted(entries, key=_training_cost, reverse=True)


def train_zoo(entries: Sequence[ZooEntry], zoo_dir: str | Path, world_params: dict[str, Any] | None = None,
              jobs: int = 1, progress: bool = False) -> dict[str, Path]:
    """Train ``entries`` (``train_zoo_model`` each), ``jobs`` at a time in separate processes; name -> folder.

    On the 2-core machine two single-threaded trainings at once do ~20 % more steps per second than one
    two-threaded training after another (small CPU kernels use a second thread poorly). The most expensive
    models start first. A failure in one model is re-raised after the others finished.
    """
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"jobs must be a positive int, got {jobs!r}")
    entries = list(entries)
    if jobs == 1 or len(entries) < 2:
        return {e.name: train_zoo_model(e, zoo_dir, world_params, progress=progress) for e in entries}
    order = training_order(entries)
    folders: dict[str, Path] = {}
    errors: list[tuple[str, BaseException]] = []
    context = multiprocessing.get_context("spawn")  # no forked torch thread pools
    with ProcessPoolExecutor(max_workers=min(jobs, len(order)), mp_context=context) as pool:
        futures = {pool.submit(train_zoo_model, e, str(zoo_dir), world_params, False): e.name for e in order}
        bar = tqdm(as_completed(futures), total=len(futures), desc=f"zoo ({jobs} at once)", unit="model",
                   disable=not progress)
        for future in bar:
            name = futures[future]
            try:
                folders[name] = Path(future.result())
            except Exception as err:  # noqa: BLE001 - reported below, after the other models finished
                errors.append((name, err))
    if errors:
        name, err = errors[0]
        raise RuntimeError(f"training zoo model {name!r} failed ({len(errors)} of {len(order)} failed): "
                           f"{type(err).__name__}: {err}") from err
    return {e.name: folders[e.name] for e in entries}


def plot_training_curve(history: pd.DataFrame, path: Path, title: str) -> Path:
    """Loss (log scale) and learned logit scale against the step, saved as a PNG.

    Drawn on a bare ``Figure`` (no pyplot, no backend switch): the zoo trains inside notebooks too (smoke
    models on the spot), and switching the process's backend to Agg there hid every later figure in Lab.
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 3), layout="constrained")
    left, right = fig.subplots(1, 2)
    left.plot(history["step"], history["loss"], lw=0.8)
    left.set(xlabel="step", ylabel="contrastive loss", yscale="log", title=title)
    right.plot(history["step"], history["logit_scale"], lw=0.8, color="tab:orange")
    right.set(xlabel="step", ylabel="logit scale (1/temperature)")
    fig.savefig(path, dpi=100)
    return path


def quality_line(quality: dict[str, Any]) -> str:
    """One markdown line stating the quality bar's measurement and verdict."""
    head = (f"- **Quality bar:** zero-shot top-1 ≥ {quality['target']:.2f} on {quality['domain']} images of concepts "
            f"with {quality['bucket']} training occurrences")
    if quality["accuracy"] is None:
        return head + ": no concept in that bucket, not measured"
    low, high = quality["ci95"]
    verdict = "met" if quality["met"] else "NOT met"
    sure = "" if low > quality["target"] or high < quality["target"] else " (the interval straddles the bar)"
    line = (head + f": **{quality['accuracy']:.3f}** [{low:.3f}, {high:.3f}] on {quality['per_concept']} images "
            f"of each of {quality['n_concepts']} concepts — {verdict}{sure}")
    below = sorted((acc, name) for name, acc in quality["per_concept_accuracy"].items() if acc < quality["target"])
    if not below:
        return line
    parts = []
    for acc, name in below:
        confusion = quality.get("top_confusion", {}).get(name)
        mistaken = f" (→ {confusion['predicted']} {confusion['share']:.0%})" if confusion else ""
        parts.append(f"{name} {acc:.3f}{mistaken}")
    return line + f"; concepts under {quality['target']:.2f} on their own: " + ", ".join(parts)


def card_markdown(card: dict[str, Any]) -> str:
    """A human-readable model card from ``card.json``'s dict."""
    t, th, d = card["train"], card["throughput"], card["data"]
    lines = [
        f"# Zoo model `{card['name']}`",
        "",
        f"- **Architecture:** `{card['arch']}` ({card['n_params']:,} parameters), seed {card['seed']}",
        f"- **Data:** samples 0..{d['corpus_size'] - 1} of the world's train split (clean), "
        f"{d['concepts_seen']} of {d['n_concepts']} concepts seen; world seed {card['world']['seed']}",
        f"- **Training:** {t['total_steps']} steps x batch {t['batch_size']} ({t['epochs']:.2f} epochs), "
        f"lr {t['lr']}, warmup {t['warmup']}, weight decay {t['weight_decay']}; final loss {t['final_loss']:.3f}",
        f"- **Throughput:** {th['samples_per_s']:.0f} samples/s on {th['num_threads']} threads "
        f"(median step)" + (f"; trained in {th['train_s']:.0f} s" if th["train_s"] else ""),
        f"- **Evaluation:** zero-shot top-1 over all {d['n_concepts']} concepts, {card['eval']['per_concept']} "
        f"held-out single-object test images per concept and domain, prompts 'a {{colour}} {{name}}' averaged "
        f"over the palette; chance {card['eval']['chance']:.4f}",
        quality_line(card["quality"]),
        "",
        "| domain | top-1 | " + " | ".join(label for label, _, _ in BUCKETS) + " |",
        "|---|---|" + "---|" * len(BUCKETS),
    ]
    for domain, top1 in card["zero_shot_top1"].items():
        cells = []
        for label, _, _ in BUCKETS:
            b = card["zero_shot_by_bucket"][domain].get(label)
            cells.append(f"{b['accuracy']:.3f} [{b['ci95'][0]:.2f}, {b['ci95'][1]:.2f}] (n={b['n_concepts']})"
                         if b else "-")
        lines.append(f"| {domain} | {top1:.3f} | " + " | ".join(cells) + " |")
    lines += ["", "Buckets count matched training occurrences (image shows the concept and caption names it); "
              "[95 % Wilson interval over the bucket's test images]; n = concepts in the bucket. "
              "Per-concept numbers: `concepts.csv`. Curve: `training_curve.png`.", ""]
    return "\n".join(lines)


@dataclass(frozen=True)
class ZooModel:
    """A trained zoo model with everything an analysis needs: the model, its world, its card, its concepts.

    ``concepts`` is the card's per-concept table (true training frequencies, zero-shot accuracy per domain);
    ``world`` is the exact world the model was trained on, so held-out test images come from the same concepts.
    """

    entry: ZooEntry
    loaded: Any
    world: Any
    card: dict[str, Any]
    concepts: pd.DataFrame
    folder: Path


def zoo_dir_for(smoke: bool = False, zoo_dir: str | Path | None = None) -> Path:
    """The folder of the default zoo, or of the smoke zoo (``<zoo>-smoke``)."""
    if zoo_dir is None:
        from cliplab.models.loading import default_zoo_dir

        zoo_dir = default_zoo_dir()
    zoo_dir = Path(zoo_dir)
    return zoo_dir.with_name(zoo_dir.name + SMOKE_SUFFIX) if smoke else zoo_dir


def zoo_model(name: str, smoke: bool = False, *, params: dict[str, Any] | None = None,
              zoo_dir: str | Path | None = None, progress: bool = False) -> ZooModel:
    """Load zoo model ``name`` (as params.yaml defines it) with its world, card and concept table.

    Default scale: the model must already be trained (``cliplab zoo train NAME``, ``dvc repro zoo`` or
    ``dvc pull zoo``) with the settings params.yaml now gives it; otherwise a FileNotFoundError says which
    command fixes it. Smoke scale: a missing or stale model is trained on the spot (seconds), so smoke runs
    need nothing prepared.
    """
    params = read_params() if params is None else params
    entries = {e.name: e for e in read_zoo(params, smoke=smoke)}
    if name not in entries:
        raise ValueError(f"{name!r} is not a zoo model; params.yaml's zoo has {sorted(entries)}")
    entry = entries[name]
    world_params = params.get("world") or {}
    folder_root = zoo_dir_for(smoke, zoo_dir)
    folder = folder_root / name
    expected_world = entry.world_config(world_params).to_dict()
    card = _read_card(folder)
    # the card's train block is the run identity, with steps/epochs resolved into total_steps (compared above)
    identity = {k: v for k, v in json.loads(json.dumps(entry.train_config().identity())).items()
                if k not in ("steps", "epochs")}
    stale = card is not None and (card["world"] != expected_world or card["train"]["total_steps"]
                                  != entry.total_steps() or card["data"]["corpus_size"] != entry.corpus_size
                                  or any(card["train"].get(k) != v for k, v in identity.items()))
    if card is None or stale:
        if not smoke:
            why = "was trained with other settings than params.yaml now gives" if stale else "is not trained"
            raise FileNotFoundError(f"zoo model {name!r} {why} (looked in {folder}); train it with "
                                    f"'cliplab zoo train {name}' or 'dvc repro zoo', or fetch it with 'dvc pull zoo'")
        train_zoo_model(entry, folder_root, world_params, progress=progress)
        card = _read_card(folder)
    from cliplab.world import World

    return ZooModel(entry=entry, loaded=load_model(f"zoo:{name}", zoo_dir=folder_root),
                    world=World(entry.world_config(world_params)), card=card,
                    concepts=pd.read_csv(folder / CONCEPTS_CSV), folder=folder)


def _read_card(folder: Path) -> dict[str, Any] | None:
    path = folder / CARD_JSON
    return json.loads(path.read_text()) if path.is_file() else None


def read_params(path: str | Path | None = None) -> dict[str, Any]:
    """The parsed params.yaml (default: the project's)."""
    import yaml

    if path is None:
        from cliplab.core import paths

        path = paths.params_path(paths.project_root())
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"params file not found: {path}")
    return yaml.safe_load(path.read_text()) or {}


def main(argv: list[str] | None = None) -> int:
    """``zoo list`` shows the zoo; ``zoo train NAME...`` (or ``--all``) trains models and writes their cards."""
    parser = argparse.ArgumentParser(prog="cliplab zoo", description="The model zoo defined in params.yaml.")
    parser.add_argument("--params", default=None, help="params.yaml to read (default: the project's)")
    parser.add_argument("--zoo-dir", default=None, help="where models live (default: <project>/zoo)")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="the zoo's models, their settings and whether they are trained")
    p_train = sub.add_parser("train", help="train models and write their model cards")
    p_train.add_argument("names", nargs="*", help="zoo model names")
    p_train.add_argument("--all", action="store_true", help="train every model of the zoo")
    p_train.add_argument("--jobs", type=int, default=None,
                         help="models trained at once, in separate processes (default: zoo.jobs of params.yaml)")
    p_train.add_argument("--progress", action="store_true", help="show a progress bar")
    parser.add_argument("--smoke", action="store_true", help="the smoke-scale zoo (zoo.smoke overrides), in <zoo>-smoke")
    args = parser.parse_args(argv)

    params = read_params(args.params)
    entries = read_zoo(params, smoke=args.smoke)
    zoo_dir = zoo_dir_for(args.smoke, args.zoo_dir)
    if args.command == "list":
        for e in entries:
            card = zoo_dir / e.name / CARD_JSON
            status = "trained" if card.is_file() else "not trained"
            print(f"{e.name:<16} {e.arch:<14} corpus {e.corpus_size:>7}  seed {e.seed}  "
                  f"{e.total_steps():>5} steps x {e.train_config().batch_size}  {status}")
        return 0
    by_name = {e.name: e for e in entries}
    if args.all == bool(args.names):
        parser.error("give model names or --all (not both)")
    unknown = [n for n in args.names if n not in by_name]
    if unknown:
        parser.error(f"unknown zoo model(s) {unknown}; the zoo has {sorted(by_name)}")
    jobs = zoo_jobs(params) if args.jobs is None else args.jobs
    if jobs < 1:
        parser.error(f"--jobs must be >= 1, got {jobs}")
    chosen = [by_name[n] for n in (list(by_name) if args.all else args.names)]
    folders = train_zoo(chosen, zoo_dir, params.get("world") or {}, jobs=jobs, progress=args.progress)
    for name, folder in folders.items():
        card = json.loads((folder / CARD_JSON).read_text())
        quality = card["quality"]
        bar = "not measured" if quality["accuracy"] is None else (
            f"{quality['accuracy']:.3f} [{quality['ci95'][0]:.3f}, {quality['ci95'][1]:.3f}] "
            f"{'met' if quality['met'] else 'NOT met'}")
        print(f"{name}: top-1 {card['zero_shot_top1']} | quality bar (>= {quality['target']}): {bar} | "
              f"{card['throughput']['samples_per_s']:.0f} samples/s -> {folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
