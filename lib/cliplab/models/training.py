"""Contrastive training of open_clip models on image-caption pairs, deterministic and resumable on CPU.

The model is a real open_clip CLIP (``open_clip.create_model``), the loss is ``open_clip.ClipLoss``, the
schedule is open_clip_train's ``cosine_lr`` (linear warmup, then cosine), the optimiser AdamW with CLIP's
usual exclusion of gains, biases and ``logit_scale`` from weight decay.

Determinism: initialisation runs under ``torch.random.fork_rng`` seeded with ``config.seed``; the data order
of epoch ``e`` is a ``torch.randperm`` drawn from a ``torch.Generator`` seeded by ``(seed, e)``, so any step's
batch is known without replaying earlier ones. Together with the saved AdamW moments and RNG state, a run
resumed from a snapshot at step k ends with the same bits as an uninterrupted run.
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
import time
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np
import open_clip
import pandas as pd
import torch
from open_clip_train.scheduler import cosine_lr
from tqdm.auto import tqdm

from cliplab.models.checkpoint import (
    CARD_FILE,
    HISTORY_FILE,
    WEIGHTS_FILE,
    load_train_state,
    peek_train_state,
    read_card,
    save_checkpoint,
    save_train_state,
)
from cliplab.models.loading import _check_architecture, _quiet_open_clip
from cliplab.models.preprocess import image_size, is_fast_batch, normalization, to_pil, uint8_to_tensor

STATE_DIR = "train_state"


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of one training run. Give ``steps`` or ``epochs`` (not both)."""

    steps: int | None = None
    epochs: float | None = None
    batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 0.1
    warmup: int = 50  # linear warmup steps
    beta1: float = 0.9
    beta2: float = 0.98
    eps: float = 1e-6
    grad_clip_norm: float | None = None
    seed: int = 0
    checkpoint_every: int = 0  # steps between resumable snapshots; 0 = none
    num_threads: int = 2  # torch threads during training only (restored afterwards); changes the last bits
    progress: bool = True  # tqdm bar with loss and samples/s

    def __post_init__(self) -> None:
        if (self.steps is None) == (self.epochs is None):
            raise ValueError("TrainConfig needs exactly one of steps=... or epochs=...")
        if self.steps is not None and (not isinstance(self.steps, int) or self.steps < 1):
            raise ValueError(f"steps must be a positive int, got {self.steps!r}")
        if self.epochs is not None and not self.epochs > 0:
            raise ValueError(f"epochs must be > 0, got {self.epochs!r}")
        if not isinstance(self.batch_size, int) or self.batch_size < 2:
            raise ValueError(f"batch_size must be an int >= 2 (contrastive loss needs negatives), got {self.batch_size!r}")
        if not self.lr > 0 or self.weight_decay < 0 or self.warmup < 0 or self.checkpoint_every < 0:
            raise ValueError("lr must be > 0 and weight_decay, warmup, checkpoint_every >= 0")
        if not 0 <= self.beta1 < 1 or not 0 <= self.beta2 < 1 or not self.eps > 0:
            raise ValueError(f"need 0 <= beta1, beta2 < 1 and eps > 0, got {self.beta1}, {self.beta2}, {self.eps}")
        if not isinstance(self.num_threads, int) or self.num_threads < 1:
            raise ValueError(f"num_threads must be a positive int, got {self.num_threads!r}")

    def total_steps(self, n_samples: int) -> int:
        """Optimiser steps for a corpus of ``n_samples`` (an epoch is ``n_samples // batch_size`` steps)."""
        if self.steps is not None:
            return self.steps
        return max(1, int(round(float(self.epochs) * (n_samples // self.batch_size))))

    def identity(self) -> dict[str, Any]:
        """The fields that change the numbers (a resumed run must agree on all of them).

        ``num_threads`` is one of them: CPU kernels split their reductions by thread, so 1 and 2 threads give
        weights that differ in the last bits (measured: 1e-3 after five steps of cliplab-tiny).
        """
        cosmetic = {"checkpoint_every", "progress"}
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name not in cosmetic}


@dataclass(frozen=True)
class WorldSamples:
    """``n`` samples of a world's split, read through ``world.iter_samples`` (a lazily rendered corpus)."""

    world: Any
    n: int
    split: str = "train"
    start: int = 0
    domain: str | None = None

    def __iter__(self):
        return iter(self.world.iter_samples(self.n, split=self.split, start=self.start, domain=self.domain))


@dataclass
class TrainData:
    """A materialised corpus: images as one tensor (uint8 NHWC, or float NCHW already preprocessed)."""

    images: torch.Tensor
    captions: list[str]

    def __post_init__(self) -> None:
        if len(self.images) != len(self.captions):
            raise ValueError(f"{len(self.images)} images but {len(self.captions)} captions")

    def __len__(self) -> int:
        return len(self.captions)

    @property
    def is_uint8(self) -> bool:
        return self.images.dtype == torch.uint8

    def fingerprint(self) -> str:
        """sha256 over image bytes and captions: a resumed run must see the very same data."""
        digest = hashlib.sha256()
        digest.update(str(tuple(self.images.shape)).encode())
        digest.update(self.images.contiguous().numpy().tobytes())
        digest.update("\n".join(self.captions).encode())
        return digest.hexdigest()


@dataclass(frozen=True)
class TrainResult:
    """What a training run leaves: per-step history, the ``local-dir:`` checkpoint and its folder."""

    history: pd.DataFrame
    checkpoint: Path
    out_dir: Path
    resumed_from: int  # step the run started from (0 = fresh, total = already finished)


def prepare_data(
    samples: Iterable[Any] | TrainData,
    model: torch.nn.Module,
    preprocess: Callable[[Any], torch.Tensor] | None = None,
) -> TrainData:
    """Materialise ``(image, caption)`` pairs (or objects with ``.image``/``.caption``) as a TrainData.

    uint8 HxWx3 images at the model's resolution are kept as uint8 and normalised per batch; any other image
    (PIL, other size, file path) goes through ``preprocess`` once here.
    """
    if isinstance(samples, TrainData):
        return samples
    if isinstance(samples, (str, bytes)) or not isinstance(samples, Iterable):
        raise TypeError(
            f"samples must be an iterable of (image, caption) pairs, a WorldSamples or a TrainData, "
            f"got {type(samples).__name__}"
        )
    size = image_size(model)
    images: list[Any] = []
    captions: list[str] = []
    for i, item in enumerate(samples):
        image, caption = _split_item(item, i)
        images.append(image)
        captions.append(caption)
    if not images:
        raise ValueError("samples is empty: training needs at least batch_size pairs")
    if all(isinstance(im, np.ndarray) and is_fast_batch(im[None], size) for im in images):
        return TrainData(torch.from_numpy(np.stack(images)), captions)
    if preprocess is None:
        raise ValueError(f"images are not uint8 {size[0]}x{size[1]}x3 arrays; pass the model's preprocess")
    return TrainData(torch.stack([preprocess(to_pil(im)) for im in images]), captions)


def _split_item(item: Any, index: int) -> tuple[Any, str]:
    if hasattr(item, "image") and hasattr(item, "caption"):
        image, caption = item.image, item.caption
    elif isinstance(item, (tuple, list)) and len(item) == 2:
        image, caption = item
    else:
        raise TypeError(f"sample {index} is {type(item).__name__}; expected (image, caption) or .image/.caption")
    if not isinstance(caption, str):
        raise TypeError(f"sample {index}: caption must be str, got {type(caption).__name__}")
    return image, caption


def tokenize_unique(tokenizer: Callable[..., torch.Tensor], captions: list[str]) -> torch.Tensor:
    """Token ids for every caption, tokenising each distinct caption once (templated corpora repeat a lot)."""
    unique = sorted(set(captions))
    index = {c: i for i, c in enumerate(unique)}
    table = tokenizer(unique)
    return table[torch.tensor([index[c] for c in captions], dtype=torch.long)]


def epoch_order(seed: int, epoch: int, n: int) -> torch.Tensor:
    """The sample order of one epoch, a pure function of (seed, epoch)."""
    mixed = int(np.random.SeedSequence([seed, epoch]).generate_state(1, dtype=np.uint64)[0] >> 1)
    return torch.randperm(n, generator=torch.Generator().manual_seed(mixed))


def create_model(model_name: str, seed: int) -> tuple[torch.nn.Module, Callable[[Any], torch.Tensor], Any]:
    """A randomly initialised open_clip model (seeded, global RNG untouched), its preprocess and tokenizer."""
    name = _check_architecture(model_name)
    with torch.random.fork_rng(devices=[]), _quiet_open_clip():
        torch.manual_seed(seed)
        model, _, preprocess = open_clip.create_model_and_transforms(name, pretrained=None)
    return model, preprocess, open_clip.get_tokenizer(name)


OPTIMIZER = "AdamW, fused kernel where available"
"""Part of a run's identity: weights trained by the unfused AdamW of older versions differ in the last bits."""


def make_optimizer(model: torch.nn.Module, config: TrainConfig) -> torch.optim.AdamW:
    """AdamW over CLIP's parameter groups, with torch's fused kernel when every parameter is on CPU or CUDA.

    The fused kernel updates all tensors in one pass (on the 2-core machine the optimiser step of cliplab-tiny
    drops from ~9 ms to ~3 ms of a ~140 ms step); it is deterministic on CPU, so runs stay reproducible.
    """
    groups = _param_groups(model, config.weight_decay)
    fused = all(p.device.type in ("cpu", "cuda") and p.is_floating_point() for g in groups for p in g["params"])
    return torch.optim.AdamW(groups, lr=config.lr, betas=(config.beta1, config.beta2), eps=config.eps,
                             fused=fused or None)


def _param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """CLIP's recipe: no decay on gains, biases, norms, embeddings' scalars and logit_scale."""

    def exclude(name: str, p: torch.Tensor) -> bool:
        return p.ndim < 2 or "bn" in name or "ln" in name or "bias" in name or "logit_scale" in name

    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    return [
        {"params": [p for n, p in named if exclude(n, p)], "weight_decay": 0.0},
        {"params": [p for n, p in named if not exclude(n, p)], "weight_decay": weight_decay},
    ]


def train_clip(
    model_name: str,
    samples: Iterable[Any] | WorldSamples | TrainData,
    config: TrainConfig,
    out_dir: str | Path,
    resume: bool = True,
    on_step: Callable[[int, dict[str, float]], None] | None = None,
) -> TrainResult:
    """Train ``model_name`` from scratch on ``samples`` and save it as a ``local-dir:`` folder in ``out_dir``.

    With ``resume=True`` a finished run with the same config and data returns at once, and an interrupted
    one continues from its last snapshot (``config.checkpoint_every``); a mismatching snapshot is an error.
    ``on_step(step, row)`` is called after every optimiser step (``step`` counts completed steps).
    """
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ValueError(f"out_dir {out} exists and is not a folder")
    model, preprocess, tokenizer = create_model(model_name, config.seed)
    data = prepare_data(samples, model, preprocess)
    if len(data) < config.batch_size:
        raise ValueError(f"{len(data)} samples is fewer than batch_size={config.batch_size}: lower batch_size")
    total = config.total_steps(len(data))
    identity = {
        "model_name": model_name,
        # the architecture itself: editing a registered JSON config must not resume the old model
        "model_config": open_clip.get_model_config(_check_architecture(model_name)),
        "config": config.identity(),
        "n_samples": len(data),
        "data_sha256": data.fingerprint(),
        "total_steps": total,
        "optimizer": OPTIMIZER,
    }
    state_dir = out / STATE_DIR
    if resume:
        done = _finished_run(out, identity)
        if done is not None:
            return done
    elif out.exists():
        for stale in (state_dir, out / WEIGHTS_FILE, out / CARD_FILE, out / HISTORY_FILE):
            if stale.is_dir():
                shutil.rmtree(stale)
            elif stale.exists():
                stale.unlink()

    optimizer = make_optimizer(model, config)
    start, history, rng_state = 0, [], None
    snapshot = peek_train_state(state_dir) if resume else None
    if snapshot is not None:
        _check_same_run(snapshot["meta"]["identity"], identity, out)
        start, meta, rng_state = load_train_state(state_dir, model, optimizer)
        history = meta["history"]

    history = _run_steps(model, optimizer, data, tokenizer, config, total, start, history, rng_state, identity,
                         state_dir, on_step)
    model.eval()
    card = {"name": out.name, "training": identity, "final_loss": history[-1]["loss"] if history else None}
    save_checkpoint(model, model_name, out, extra_card=card)
    frame = pd.DataFrame(history)
    frame.to_csv(out / HISTORY_FILE, index=False)
    if state_dir.exists():
        shutil.rmtree(state_dir)
    return TrainResult(history=frame, checkpoint=out / WEIGHTS_FILE, out_dir=out, resumed_from=start)


def _finished_run(out: Path, identity: dict[str, Any]) -> TrainResult | None:
    card = read_card(out)
    if not card or not (out / WEIGHTS_FILE).is_file() or not (out / HISTORY_FILE).is_file():
        return None
    _check_same_run(card.get("training", {}), identity, out)
    history = pd.read_csv(out / HISTORY_FILE)
    return TrainResult(history=history, checkpoint=out / WEIGHTS_FILE, out_dir=out, resumed_from=identity["total_steps"])


class DifferentRun(ValueError):
    """The output folder holds a run with other settings or data than the one asked for."""


def _check_same_run(saved: dict[str, Any], current: dict[str, Any], out: Path) -> None:
    saved = json.loads(json.dumps(saved))
    current = json.loads(json.dumps(current))
    if saved == current:
        return
    keys = sorted(set(saved) | set(current))
    diffs = [k for k in keys if saved.get(k) != current.get(k)]
    if "config" in diffs:
        sc, cc = saved.get("config", {}), current.get("config", {})
        diffs = [d for d in diffs if d != "config"] + [f"config.{k}" for k in sorted(set(sc) | set(cc)) if sc.get(k) != cc.get(k)]
    raise DifferentRun(
        f"{out} holds a run with different settings ({', '.join(diffs)}): pass resume=False to overwrite it, "
        "or choose another out_dir"
    )


def _run_steps(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    data: TrainData,
    tokenizer: Any,
    config: TrainConfig,
    total: int,
    start: int,
    history: list[dict[str, float]],
    rng_state: torch.Tensor | None,
    identity: dict[str, Any],
    state_dir: Path,
    on_step: Callable[[int, dict[str, float]], None] | None,
) -> list[dict[str, float]]:
    tokens = tokenize_unique(tokenizer, data.captions)
    mean, std = normalization(model)
    loss_fn = open_clip.ClipLoss()
    schedule = cosine_lr(optimizer, config.lr, config.warmup, total)
    per_epoch = len(data) // config.batch_size
    previous_threads = torch.get_num_threads()
    order_epoch, order = -1, torch.empty(0, dtype=torch.long)
    history = list(history)
    bar = tqdm(total=total, initial=start, disable=not config.progress, desc="train", unit="step", leave=False)
    try:
        torch.set_num_threads(config.num_threads)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.seed)
            if rng_state is not None:
                torch.set_rng_state(rng_state)
            model.train()
            for step in range(start, total):
                tic = time.perf_counter()
                epoch, position = divmod(step, per_epoch)
                if epoch != order_epoch:
                    order_epoch, order = epoch, epoch_order(config.seed, epoch, len(data))
                idx = order[position * config.batch_size:(position + 1) * config.batch_size]
                images = uint8_to_tensor(data.images[idx], mean, std) if data.is_uint8 else data.images[idx]
                lr = schedule(step)
                image_features, text_features, logit_scale = model(images, tokens[idx])[:3]
                loss = loss_fn(image_features, text_features, logit_scale)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if config.grad_clip_norm:
                    torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip_norm)
                optimizer.step()
                with torch.no_grad():
                    model.logit_scale.clamp_(0, math.log(100))
                seconds = time.perf_counter() - tic
                row = {
                    "step": step + 1,
                    "epoch": epoch + (position + 1) / per_epoch,
                    "loss": float(loss.detach()),
                    "lr": float(lr),
                    "logit_scale": float(model.logit_scale.exp().detach()),
                    "samples_per_s": config.batch_size / seconds,
                }
                history.append(row)
                bar.update(1)
                bar.set_postfix(loss=f"{row['loss']:.3f}", samples_s=f"{row['samples_per_s']:.0f}")
                if config.checkpoint_every and (step + 1) % config.checkpoint_every == 0 and step + 1 < total:
                    save_train_state(state_dir, model, optimizer, step + 1, {"identity": identity, "history": history})
                if on_step is not None:
                    on_step(step + 1, row)
    finally:
        torch.set_num_threads(previous_threads)
        bar.close()
    return history


def measure_throughput(model_name: str, batch_size: int = 256, steps: int = 5, num_threads: int = 2, seed: int = 0) -> float:
    """Training samples/s of ``model_name`` on random uint8 data (after one warm-up step)."""
    model, _, tokenizer = create_model(model_name, seed)
    size = image_size(model)
    gen = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (batch_size, *size, 3), generator=gen, dtype=torch.uint8)
    captions = [f"a photo of thing {i}" for i in range(batch_size)]
    data = TrainData(images, captions)
    config = TrainConfig(steps=steps + 1, batch_size=batch_size, warmup=0, seed=seed, num_threads=num_threads, progress=False)
    optimizer = make_optimizer(model, config)
    history = _run_steps(model, optimizer, data, tokenizer, config, steps + 1, 0, [], None, {}, Path("."), None)
    return float(np.median([row["samples_per_s"] for row in history[1:]]))
