"""Zero-shot classification with open_clip's ``build_zero_shot_classifier``: per-class and overall top-1.

Templates follow open_clip's convention: positional ``"a photo of a {}."`` strings or callables. Named
templates in CLIP_benchmark style (``"a photo of a {c}."``) would raise KeyError inside open_clip, so they are
converted to callables here; any other named field is rejected before work starts.
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import pandas as pd
import torch
from open_clip import build_zero_shot_classifier

from cliplab.eval.data import LabeledImages
from cliplab.eval.features import encode_images
from cliplab.models.loading import LoadedModel

Template = str | Callable[[str], str]
DEFAULT_TEMPLATES: tuple[str, ...] = ("a photo of a {}.",)
LOGIT_SCALE = 100.0  # open_clip's zero-shot logits: 100 * image . class on normalised features


@dataclass(frozen=True)
class ZeroShotResult:
    """Per-class table (class, n, correct, accuracy), overall top-1, and each image's predicted class."""

    per_class: pd.DataFrame
    top1: float
    predictions: np.ndarray
    logits: torch.Tensor


def normalize_templates(templates: Sequence[Template]) -> list[Callable[[str], str]]:
    """Turn templates into callables: positional ``{}`` and CLIP_benchmark ``{c}`` strings, or callables."""
    if isinstance(templates, str) or not isinstance(templates, Sequence) or len(templates) == 0:
        raise ValueError("templates must be a non-empty list of strings like 'a photo of a {}.' or callables")
    out: list[Callable[[str], str]] = []
    for template in templates:
        if callable(template):
            out.append(template)
            continue
        if not isinstance(template, str):
            raise TypeError(f"template {template!r} is neither a string nor a callable")
        fields = [f for _, f, _, _ in string.Formatter().parse(template) if f is not None]
        if fields == [""]:
            out.append(template.format)
        elif fields == ["c"]:
            out.append(lambda c, t=template: t.format(c=c))
        else:
            raise ValueError(
                f"template {template!r} must have exactly one '{{}}' (or CLIP_benchmark's '{{c}}') placeholder"
            )
    return out


def class_weights(loaded: LoadedModel, classnames: Sequence[str], templates: Sequence[Template] = DEFAULT_TEMPLATES) -> torch.Tensor:
    """(D, C) zero-shot classifier: template-averaged, normalised class embeddings (open_clip)."""
    if not classnames or not all(isinstance(c, str) and c for c in classnames):
        raise ValueError("classnames must be a non-empty list of non-empty strings")
    loaded.model.eval()
    device = next(loaded.model.parameters()).device
    return build_zero_shot_classifier(
        loaded.model, loaded.tokenizer, list(classnames), normalize_templates(templates),
        num_classes_per_batch=64, device=device,
    ).float().cpu()


def zero_shot_eval(
    loaded: LoadedModel,
    data: LabeledImages,
    templates: Sequence[Template] = DEFAULT_TEMPLATES,
    batch_size: int = 256,
) -> ZeroShotResult:
    """Top-1 zero-shot accuracy over ``data.classnames``, per class and overall (micro-averaged)."""
    if not isinstance(loaded, LoadedModel):
        raise TypeError(f"expected a LoadedModel, got {type(loaded).__name__}")
    if not isinstance(data, LabeledImages):
        raise TypeError(f"expected LabeledImages (see cliplab.eval.data), got {type(data).__name__}")
    callables = normalize_templates(templates)
    weights = class_weights(loaded, data.classnames, callables)
    features = encode_images(loaded, data.images, batch_size)
    logits = LOGIT_SCALE * features @ weights
    predictions = logits.argmax(dim=1).numpy()
    labels = np.asarray(data.labels)
    correct = predictions == labels
    n = np.bincount(labels, minlength=len(data.classnames))
    hits = np.bincount(labels, weights=correct, minlength=len(data.classnames)).astype(int)
    table = pd.DataFrame({
        "class": list(data.classnames),
        "n": n,
        "correct": hits,
        "accuracy": np.divide(hits, n, out=np.full(len(n), np.nan), where=n > 0),
    })
    if data.class_ids is not None:
        table.insert(0, "class_id", list(data.class_ids))
    return ZeroShotResult(per_class=table, top1=float(correct.mean()), predictions=predictions, logits=logits)
