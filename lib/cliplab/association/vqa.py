"""Mitigation and the VQA link (claim C4 of `docs/papers/concept_association_bias.md`): a Transformer head over a CLIP's image and text tokens.

Standard CLIP lets image and text interact only through the dot product of two pooled embeddings, which is
what makes it behave like a bag of concepts. The head here reads the *token* outputs of both encoders:
image tokens (a ``VisionTransformer``'s patch tokens; for the zoo's ``ModifiedResNet``, whose final map is 1×1
at 32 px, the spatial map of an earlier stage, see :func:`image_tokens`) and the text transformer's
per-token states, projects both to a common width, prepends a learned [CLS] token and runs a
``torch.nn.TransformerEncoder``; the [CLS] output classifies the answer colour. It is trained on templated
VQA from world scenes ("what color is the {object}?" → the object's colour).

Variants (``VARIANTS``), from least to most cross-modal capacity:

* ``pooled``:            an MLP on [image embedding; text embedding] (pooled, frozen encoders);
* ``pooled_unfrozen``:   the same MLP with both encoders fine-tuned;
* ``layers1``/``layers2``: 1 or 2 Transformer layers over [CLS; image tokens; text tokens], frozen encoders;
* ``layers2_unfrozen``:  2 layers with both encoders fine-tuned (``encoder_lr``).

The head owns a deep copy of the CLIP, so fine-tuning never changes the caller's model. CAB of a head is
measured by scoring the colour question about each object (:func:`head_scorer`): the head's logit for each
candidate colour plays the role of the statement's similarity.
"""

from __future__ import annotations

import contextlib
import copy
import math
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Iterator, Sequence

import numpy as np
import pandas as pd
import torch
from open_clip.transformer import text_global_pool
from torch import nn

from cliplab import stats
from cliplab.association.metrics import cab_metrics
from cliplab.association.probes import ProbeSet
from cliplab.association.scoring import DEFAULT_TEMPLATE, Scorer, run_probes, score_colour_statements
from cliplab.models.loading import LoadedModel
from cliplab.models.preprocess import image_size, images_to_tensor
from cliplab.models.training import tokenize_unique

VQA_TEMPLATE = "what color is the {object}?"
PAD_TOKEN = 0  # open_clip's SimpleTokenizer pads with 0


@dataclass(frozen=True)
class HeadVariant:
    """A head architecture: ``layers`` = 0 is the pooled-embedding MLP; ``unfreeze`` fine-tunes both encoders."""

    name: str
    layers: int
    unfreeze: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.layers, int) or not 0 <= self.layers <= 4:
            raise ValueError(f"layers must be an int in [0, 4] (0 = pooled MLP), got {self.layers!r}")


VARIANTS: dict[str, HeadVariant] = {v.name: v for v in (
    HeadVariant("pooled", 0),
    HeadVariant("pooled_unfrozen", 0, unfreeze=True),
    HeadVariant("layers1", 1),
    HeadVariant("layers2", 2),
    HeadVariant("layers2_unfrozen", 2, unfreeze=True),
)}


@dataclass(frozen=True)
class VQAConfig:
    """Training of one head: AdamW, linear warmup then cosine decay, minibatches drawn by a seeded generator."""

    steps: int = 300
    batch_size: int = 64
    lr: float = 1e-3
    encoder_lr: float = 1e-4  # for unfrozen variants
    weight_decay: float = 0.01
    warmup: int = 20
    width: int = 64
    heads: int = 2
    resnet_stage: int = 3  # ModifiedResNet stage giving the image tokens (2: layer2, 3: layer3); ignored for ViTs
    seed: int = 0
    num_threads: int = 1

    def __post_init__(self) -> None:
        if self.resnet_stage not in RESNET_STAGES:
            raise ValueError(f"VQAConfig.resnet_stage must be one of {sorted(RESNET_STAGES)}, got {self.resnet_stage!r}")
        for name in ("steps", "batch_size", "width", "heads", "num_threads"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"VQAConfig.{name} must be a positive int, got {value!r}")
        if self.width % self.heads:
            raise ValueError(f"VQAConfig.width ({self.width}) must be divisible by heads ({self.heads})")
        if not self.lr > 0 or not self.encoder_lr > 0 or self.weight_decay < 0 or self.warmup < 0:
            raise ValueError("VQAConfig needs lr, encoder_lr > 0 and weight_decay, warmup ≥ 0")


@dataclass
class VQAData:
    """Questions about images: ``images[image_index[q]]`` is the image of question ``q``; ``answers`` index
    ``palette``; ``objects`` are the queried object names."""

    images: np.ndarray
    image_index: np.ndarray
    objects: list[str]
    questions: list[str]
    answers: np.ndarray
    palette: list[str]
    n_objects: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    def __post_init__(self) -> None:
        n = len(self.questions)
        if not (len(self.image_index) == len(self.objects) == len(self.answers) == n):
            raise ValueError("VQAData: image_index, objects, questions and answers must have one entry per question")
        if n == 0:
            raise ValueError("VQAData: no questions")
        if int(np.max(self.image_index)) >= len(self.images) or int(np.max(self.answers)) >= len(self.palette):
            raise ValueError("VQAData: an image index or answer is out of range")

    def __len__(self) -> int:
        return len(self.questions)


def vqa_data(world: Any, n_images: int, split: str = "train", start: int = 0, n_objects: Sequence[int] = (1, 2),
             domain: str = "clean", template: str = VQA_TEMPLATE) -> VQAData:
    """Templated VQA from world samples ``start, start+1, ...`` of ``split``: one question per object.

    Only scenes with an allowed object count are kept (until ``n_images`` are found); an object whose concept
    appears twice in a scene is not asked about (its question would be ambiguous).
    """
    if isinstance(n_images, bool) or not isinstance(n_images, int) or n_images < 1:
        raise ValueError(f"n_images must be a positive int, got {n_images!r}")
    allowed = set(n_objects)
    if not allowed or not allowed <= {1, 2, 3}:
        raise ValueError(f"n_objects must be a non-empty subset of (1, 2, 3), got {n_objects!r}")
    if "{object}" not in template:
        raise ValueError(f"template must contain '{{object}}', got {template!r}")
    colour_index = {c: k for k, c in enumerate(world.palette)}
    images, image_index, objects, questions, answers, counts = [], [], [], [], [], []
    i = start
    limit = start + 1000 * n_images
    while len(images) < n_images:
        if i >= limit:
            raise ValueError(f"fewer than {n_images} scenes with {sorted(allowed)} objects in {split!r}")
        draw = world.draw(i, split, domain)
        objs = draw.meta["objects"]
        names = [o["name"] for o in objs]
        askable = [o for o in objs if names.count(o["name"]) == 1]
        if len(objs) in allowed and askable:
            images.append(world.render(draw.scene, draw.domain))
            for o in askable:
                image_index.append(len(images) - 1)
                objects.append(o["name"])
                questions.append(template.format(object=o["name"]))
                answers.append(colour_index[o["colour"]])
            counts.append(len(objs))
        i += 1
    return VQAData(np.stack(images), np.asarray(image_index), objects, questions, np.asarray(answers),
                   list(world.palette), np.asarray(counts))


# --------------------------------------------------------------------------------------------------------
# Encoder outputs
# --------------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def _tokens_on(module: nn.Module) -> Iterator[None]:
    previous = module.output_tokens
    module.output_tokens = True
    try:
        yield
    finally:
        module.output_tokens = previous


RESNET_STAGES: dict[int, str] = {1: "layer1", 2: "layer2", 3: "layer3", 4: "layer4"}
"""Stages of open_clip's ModifiedResNet whose spatial map can serve as image tokens (index into
``forward_intermediates``' blocks: 0 is the stem). At 32 px: layer1 8×8, layer2 4×4, layer3 2×2, layer4 1×1."""


def image_tokens(model: nn.Module, images: torch.Tensor, resnet_stage: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    """(pooled embedding (B, D), image tokens (B, P, W)) from an open_clip image tower, in one forward pass.

    * ``VisionTransformer``: the patch tokens (``output_tokens=True``).
    * ``ModifiedResNet``: its final map is 1×1 at small resolutions, so the tokens are the spatial map of an
      earlier stage (``resnet_stage``: 2 = layer2, 3 = layer3), flattened row-major to (B, H·W, C), taken with
      open_clip's ``forward_intermediates``; the pooled embedding is the tower's usual attention-pool output.
    """
    visual = model.visual
    if hasattr(visual, "output_tokens"):
        with _tokens_on(visual):
            pooled, tokens = visual(images)
        return pooled, tokens
    if all(hasattr(visual, name) for name in (*RESNET_STAGES.values(), "attnpool", "forward_intermediates")):
        if resnet_stage not in RESNET_STAGES:
            raise ValueError(f"resnet_stage must be one of {sorted(RESNET_STAGES)} (layer1..layer4), got {resnet_stage!r}")
        # open_clip 3.3.0's ModifiedResNet.forward_intermediates runs only up to the last index asked for and
        # then attention-pools that map (a shape error before layer4), so the last stage is always requested.
        out = visual.forward_intermediates(images, indices=sorted({resnet_stage, 4}))
        feature_map = out["image_intermediates"][0]  # (B, C, H, W) of resnet_stage
        return out["image_features"], feature_map.flatten(2).transpose(1, 2)
    raise TypeError(f"{type(visual).__name__} cannot return image tokens; the VQA head needs an open_clip "
                    "VisionTransformer or ModifiedResNet image tower")


def text_tokens(model: nn.Module, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(pooled embedding (B, D), per-token states (B, L, W)): ``encode_text`` without discarding the tokens."""
    if hasattr(model, "text"):  # CustomTextCLIP: a TextTransformer that can return its tokens
        if not hasattr(model.text, "output_tokens"):
            raise TypeError(f"{type(model.text).__name__} cannot return token states; use an open_clip text tower")
        with _tokens_on(model.text):
            pooled, states = model.text(tokens)
        return pooled, states
    cast = model.transformer.get_cast_dtype()
    x = model.token_embedding(tokens).to(cast) + model.positional_embedding.to(cast)
    states = model.ln_final(model.transformer(x, attn_mask=model.attn_mask))
    pooled = text_global_pool(states, tokens, model.text_pool_type, eos_token_id=getattr(model, "text_eos_id", None))
    projection = model.text_projection
    if projection is not None:
        pooled = projection(pooled) if isinstance(projection, nn.Linear) else pooled @ projection
    return pooled, states


# --------------------------------------------------------------------------------------------------------
# The head
# --------------------------------------------------------------------------------------------------------


class VQAHead(nn.Module):
    """A classifier over answer colours on top of a (deep-copied) CLIP; see the module docstring."""

    def __init__(self, clip: nn.Module, n_classes: int, variant: HeadVariant, width: int = 64, heads: int = 2,
                 resnet_stage: int = 3) -> None:
        super().__init__()
        if not isinstance(variant, HeadVariant):
            raise TypeError(f"variant must be a HeadVariant (see VARIANTS), got {type(variant).__name__}")
        if isinstance(n_classes, bool) or not isinstance(n_classes, int) or n_classes < 2:
            raise ValueError(f"n_classes must be an int ≥ 2, got {n_classes!r}")
        self.clip = clip
        self.variant = variant
        self.resnet_stage = resnet_stage
        self.clip.requires_grad_(variant.unfreeze)
        self.clip.eval()  # no dropout / stochastic depth in the encoders, frozen or not
        size = image_size(clip)
        with torch.no_grad():
            img_pooled, img_tok = image_tokens(clip, torch.zeros(1, 3, *size), resnet_stage)
            context = getattr(clip, "context_length", None) or clip.text.context_length
            txt_pooled, txt_tok = text_tokens(clip, torch.zeros(1, context, dtype=torch.long))
        if variant.layers == 0:
            d = img_pooled.shape[-1] + txt_pooled.shape[-1]
            self.mlp = nn.Sequential(nn.Linear(d, 2 * width), nn.GELU(), nn.Linear(2 * width, n_classes))
        else:
            self.image_proj = nn.Linear(img_tok.shape[-1], width)
            self.text_proj = nn.Linear(txt_tok.shape[-1], width)
            self.cls = nn.Parameter(torch.zeros(1, 1, width))
            self.type_embedding = nn.Parameter(0.02 * torch.randn(2, width))
            layer = nn.TransformerEncoderLayer(width, heads, dim_feedforward=2 * width, dropout=0.0,
                                               batch_first=True, norm_first=True)
            self.encoder = nn.TransformerEncoder(layer, variant.layers, enable_nested_tensor=False)
            self.norm = nn.LayerNorm(width)
            self.classifier = nn.Linear(width, n_classes)

    def _encode(self, images: torch.Tensor, tokens: torch.Tensor):
        with torch.set_grad_enabled(self.variant.unfreeze and torch.is_grad_enabled()):
            img_pooled, img_tok = image_tokens(self.clip, images, self.resnet_stage)
            txt_pooled, txt_tok = text_tokens(self.clip, tokens)
        return img_pooled, img_tok, txt_pooled, txt_tok

    def forward(self, images: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """Answer logits (B, n_classes) for preprocessed images (B, 3, H, W) and question tokens (B, L)."""
        return self.classify(*self._encode(images, tokens), tokens)

    def classify(self, img_pooled: torch.Tensor, img_tok: torch.Tensor, txt_pooled: torch.Tensor,
                 txt_tok: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """Answer logits from the encoders' outputs (what :meth:`forward` computes after encoding)."""
        if self.variant.layers == 0:
            features = torch.cat([nn.functional.normalize(img_pooled, dim=-1),
                                  nn.functional.normalize(txt_pooled, dim=-1)], dim=-1)
            return self.mlp(features)
        b = img_tok.shape[0]
        sequence = torch.cat([
            self.cls.expand(b, -1, -1),
            self.image_proj(img_tok) + self.type_embedding[0],
            self.text_proj(txt_tok) + self.type_embedding[1],
        ], dim=1)
        keep = torch.zeros(b, 1 + img_tok.shape[1], dtype=torch.bool, device=tokens.device)
        padding = torch.cat([keep, tokens == PAD_TOKEN], dim=1)
        encoded = self.encoder(sequence, src_key_padding_mask=padding)
        return self.classifier(self.norm(encoded[:, 0]))


@dataclass(frozen=True)
class FrozenFeatures:
    """The frozen encoders' outputs for every image and question of a :class:`VQAData`, computed once.

    A head whose encoders are frozen (and in eval mode) sees the same encoder outputs for an image at every
    step, so training on these is the same computation as encoding each minibatch again, without repeating the
    encoders ``steps`` times. ``image`` holds (pooled, tokens) per image of ``data.images``; ``text`` (pooled,
    tokens) per question.
    """

    image_pooled: torch.Tensor
    image_tokens: torch.Tensor
    text_pooled: torch.Tensor
    text_tokens: torch.Tensor
    tokens: torch.Tensor
    resnet_stage: int


def encode_frozen(loaded: LoadedModel, data: VQAData, resnet_stage: int = 3, batch_size: int = 256) -> FrozenFeatures:
    """Encode every image and distinct question of ``data`` once with ``loaded``'s (frozen, eval-mode) encoders."""
    model = loaded.model
    was_training = model.training
    model.eval()
    tokens = tokenize_unique(loaded.tokenizer, data.questions)
    unique, inverse = torch.unique(tokens, dim=0, return_inverse=True)
    pooled, toks = [], []
    try:
        with torch.no_grad():
            for s in range(0, len(data.images), batch_size):
                x = images_to_tensor(data.images[s:s + batch_size], model, loaded.preprocess)
                p, t = image_tokens(model, x, resnet_stage)
                pooled.append(p)
                toks.append(t)
            txt_pooled, txt_tok = text_tokens(model, unique)
    finally:
        model.train(was_training)
    return FrozenFeatures(torch.cat(pooled), torch.cat(toks), txt_pooled[inverse], txt_tok[inverse], tokens,
                          resnet_stage)


@dataclass
class TrainedHead:
    """A trained head with what it needs to answer questions: tokenizer, preprocess, answer palette."""

    head: VQAHead
    loaded: LoadedModel
    palette: list[str]
    variant: HeadVariant
    history: pd.DataFrame

    def logits(self, images: Any, questions: Sequence[str], batch_size: int = 256) -> torch.Tensor:
        """(n, n_colours) answer logits for images (uint8 arrays at model size, or preprocessable) and questions."""
        if len(images) != len(questions):
            raise ValueError(f"{len(images)} images but {len(questions)} questions")
        self.head.eval()
        out = []
        with torch.no_grad():
            for s in range(0, len(questions), batch_size):
                x = images_to_tensor(images[s:s + batch_size], self.head.clip, self.loaded.preprocess)
                tokens = self.loaded.tokenizer(list(questions[s:s + batch_size]))
                out.append(self.head(x, tokens).float())
        return torch.cat(out)


def train_vqa_head(loaded: LoadedModel, data: VQAData, variant: str | HeadVariant = "layers1",
                   config: VQAConfig = VQAConfig(), progress: bool = False,
                   features: FrozenFeatures | None = None) -> TrainedHead:
    """Train one head on ``data`` (deterministic given ``config.seed``); the caller's model is not modified.

    A frozen-encoder head trains on ``features`` (:func:`encode_frozen` of the same model and data, computed
    here when not given; share one across heads to encode once); heads that fine-tune the encoders ignore it.
    """
    if not isinstance(loaded, LoadedModel):
        raise TypeError(f"expected a LoadedModel from cliplab.models.load_model, got {type(loaded).__name__}")
    if not isinstance(data, VQAData):
        raise TypeError(f"expected VQAData (see vqa_data), got {type(data).__name__}")
    if isinstance(variant, str):
        if variant not in VARIANTS:
            raise ValueError(f"unknown variant {variant!r}; choose from {list(VARIANTS)} or pass a HeadVariant")
        variant = VARIANTS[variant]
    if not isinstance(config, VQAConfig):
        raise TypeError(f"config must be a VQAConfig, got {type(config).__name__}")
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(config.num_threads)
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.seed)
            head = VQAHead(copy.deepcopy(loaded.model), len(data.palette), variant, config.width, config.heads,
                           config.resnet_stage)
            if not variant.unfreeze and features is None:
                features = encode_frozen(loaded, data, config.resnet_stage)
            if features is not None and features.resnet_stage != config.resnet_stage:
                raise ValueError(f"features were encoded at resnet_stage {features.resnet_stage}, the config asks "
                                 f"for {config.resnet_stage}")
            history = _fit(head, loaded, data, config, None if variant.unfreeze else features)
    finally:
        torch.set_num_threads(previous_threads)
    head.eval()
    return TrainedHead(head, loaded, list(data.palette), variant, pd.DataFrame(history))


def _fit(head: VQAHead, loaded: LoadedModel, data: VQAData, config: VQAConfig,
         features: FrozenFeatures | None = None) -> list[dict[str, float]]:
    own = [p for n, p in head.named_parameters() if not n.startswith("clip.")]
    groups = [{"params": own, "lr": config.lr}]
    if head.variant.unfreeze:
        groups.append({"params": list(head.clip.parameters()), "lr": config.encoder_lr})
    optimizer = torch.optim.AdamW(groups, weight_decay=config.weight_decay)

    def factor(step: int) -> float:
        if step < config.warmup:
            return (step + 1) / config.warmup
        progress = (step - config.warmup) / max(1, config.steps - config.warmup)
        return 0.5 * (1.0 + math.cos(math.pi * progress))

    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
    tokens = tokenize_unique(loaded.tokenizer, data.questions)
    answers = torch.as_tensor(data.answers, dtype=torch.long)
    image_index = torch.as_tensor(data.image_index, dtype=torch.long)
    generator = torch.Generator().manual_seed(config.seed)
    history = []
    head.train()
    head.clip.eval()
    for step in range(config.steps):
        tic = time.perf_counter()
        idx = torch.randint(len(data), (config.batch_size,), generator=generator)
        if features is None:
            x = images_to_tensor(data.images[image_index[idx].numpy()], head.clip, loaded.preprocess)
            logits = head(x, tokens[idx])
        else:
            img = image_index[idx]
            logits = head.classify(features.image_pooled[img], features.image_tokens[img],
                                   features.text_pooled[idx], features.text_tokens[idx], tokens[idx])
        loss = nn.functional.cross_entropy(logits, answers[idx])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        history.append({"step": step + 1, "loss": float(loss.detach()),
                        "accuracy": float((logits.argmax(1) == answers[idx]).float().mean()),
                        "seconds": time.perf_counter() - tic})
    return history


def vqa_accuracy(trained: TrainedHead, data: VQAData) -> float:
    """Fraction of questions answered with the right colour."""
    if list(data.palette) != trained.palette:
        raise ValueError("the data's palette differs from the palette the head was trained on")
    logits = trained.logits(data.images[data.image_index], data.questions)
    return float((logits.argmax(1).numpy() == np.asarray(data.answers)).mean())


def zero_shot_vqa_accuracy(loaded: LoadedModel, data: VQAData, template: str = DEFAULT_TEMPLATE) -> float:
    """VQA accuracy of the plain CLIP: each question answered by the best-scoring colour statement (no head)."""
    if not isinstance(data, VQAData):
        raise TypeError(f"expected VQAData (see vqa_data), got {type(data).__name__}")
    logits = score_colour_statements(loaded, data.images[data.image_index], data.objects, data.palette, template)
    return float((logits.argmax(1).numpy() == np.asarray(data.answers)).mean())


def head_scorer(trained: TrainedHead, template: str = VQA_TEMPLATE) -> Scorer:
    """A scorer for :func:`run_probes`: the head's answer logits for "what color is the {object}?"."""
    if "{object}" not in template:
        raise ValueError(f"template must contain '{{object}}', got {template!r}")

    def score(images: Any, object_names: Sequence[str], palette: Sequence[str]) -> torch.Tensor:
        missing = [c for c in palette if c not in trained.palette]
        if missing:
            raise ValueError(f"the head cannot answer colours {missing}; it knows {trained.palette}")
        logits = trained.logits(images, [template.format(object=n) for n in object_names])
        return logits[:, [trained.palette.index(c) for c in palette]]

    return score


def variant_sweep(loaded: LoadedModel, train: VQAData, test: VQAData, probes: ProbeSet,
                  variants: Sequence[str | HeadVariant] = tuple(VARIANTS), seeds: Sequence[int] = (0,),
                  config: VQAConfig = VQAConfig(), jobs: int = 1) -> pd.DataFrame:
    """Train every (variant, seed) head; one row each with VQA accuracy on ``test`` and CAB metrics on ``probes``.

    Frozen-encoder heads share one :func:`encode_frozen` of ``train``. ``jobs`` > 1 trains that many heads at
    once in separate (spawned) processes, ``config.num_threads`` threads each; every head is a pure function of
    its (variant, seed, config), so the table is the same for any ``jobs`` (rows in variant, then seed order).
    """
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"jobs must be a positive int, got {jobs!r}")
    tasks = [(name, int(seed)) for name in variants for seed in seeds]
    if not tasks:
        raise ValueError("variant_sweep needs at least one variant and one seed")
    if jobs == 1 or len(tasks) < 2:
        _init_worker(loaded, train, test, probes, config)
        try:
            return pd.DataFrame([_worker_head(name, seed) for name, seed in tasks])
        finally:
            _WORKER.clear()
    context = multiprocessing.get_context("spawn")  # no forked torch thread pools
    # the costliest heads (fine-tuned encoders, then more layers) first, so none is left alone at the end
    order = sorted(range(len(tasks)), key=lambda k: _head_cost(tasks[k][0]), reverse=True)
    with ProcessPoolExecutor(max_workers=min(jobs, len(tasks)), mp_context=context, initializer=_init_pool_worker,
                             initargs=(loaded, train, test, probes, config)) as pool:
        futures = {k: pool.submit(_worker_head, *tasks[k]) for k in order}
        rows = [futures[k].result() for k in range(len(tasks))]
    return pd.DataFrame(rows)


_WORKER: dict[str, Any] = {}  # what every head of a sweep shares, set once per process by _init_worker


def _init_worker(loaded: LoadedModel, train: VQAData, test: VQAData, probes: ProbeSet, config: VQAConfig) -> None:
    _WORKER.clear()
    _WORKER.update(loaded=loaded, train=train, test=test, probes=probes, config=config, features=None)


def _init_pool_worker(loaded: LoadedModel, train: VQAData, test: VQAData, probes: ProbeSet,
                      config: VQAConfig) -> None:
    torch.set_num_threads(config.num_threads)  # a spawned process would otherwise use every core
    _init_worker(loaded, train, test, probes, config)


def _head_cost(variant: str | HeadVariant) -> tuple[bool, int]:
    v = VARIANTS[variant] if isinstance(variant, str) else variant
    return v.unfreeze, v.layers


def _worker_head(variant: str | HeadVariant, seed: int) -> dict[str, Any]:
    """Train and evaluate one head from the sweep's shared inputs (``_WORKER``): one row of the sweep table."""
    w = _WORKER
    config = _with_seed(w["config"], seed)
    resolved = VARIANTS[variant] if isinstance(variant, str) and variant in VARIANTS else variant
    if isinstance(resolved, HeadVariant) and not resolved.unfreeze and w["features"] is None:
        previous = torch.get_num_threads()
        torch.set_num_threads(config.num_threads)
        try:
            w["features"] = encode_frozen(w["loaded"], w["train"], config.resnet_stage)
        finally:
            torch.set_num_threads(previous)
    trained = train_vqa_head(w["loaded"], w["train"], variant, config, features=w["features"])
    scored = run_probes(head_scorer(trained), w["probes"])
    return {"variant": trained.variant.name, "seed": int(seed), "vqa_accuracy": vqa_accuracy(trained, w["test"]),
            "train_loss": float(trained.history["loss"].tail(20).mean()), **cab_metrics(scored)}


def cab_vqa_rank_correlation(sweep: pd.DataFrame) -> float:
    """Spearman ρ between per-variant mean CAB and mean VQA accuracy (the paper: negative, monotone).

    NaN when either side is the same for every variant (ρ is undefined then).
    """
    means = sweep.groupby("variant")[["cab", "vqa_accuracy"]].mean()
    if len(means) < 3:
        raise ValueError(f"need ≥ 3 variants for a rank correlation, got {len(means)}")
    if means["cab"].nunique() < 2 or means["vqa_accuracy"].nunique() < 2:
        return float("nan")
    return stats.spearman(means["cab"], means["vqa_accuracy"])


def _with_seed(config: VQAConfig, seed: int) -> VQAConfig:
    from dataclasses import replace

    return replace(config, seed=int(seed))
