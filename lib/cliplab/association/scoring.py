"""Scoring colour statements: "In this picture, the color of the {object} is {color}." over a palette.

For a contrastive model the score of a statement is open_clip's zero-shot logit, 100 · image · text on
normalised features; the prediction is the argmax over candidate colours. Any other model family plugs in as
a *scorer*: a callable ``scorer(images, object_names, palette) -> (n, n_colours)`` logits (e.g. the VQA head's
:func:`cliplab.association.vqa.head_scorer`), so :func:`run_probes` treats every model alike.
"""

from __future__ import annotations

import string
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd
import torch

from cliplab.association.probes import ProbeSet
from cliplab.eval.features import encode_images, encode_texts
from cliplab.eval.zeroshot import LOGIT_SCALE
from cliplab.models.loading import LoadedModel

DEFAULT_TEMPLATE = "In this picture, the color of the {object} is {color}."
Scorer = Callable[[Any, Sequence[str], Sequence[str]], torch.Tensor]


def check_template(template: str) -> str:
    """Return ``template`` if its only fields are ``{object}`` and ``{color}``, each exactly once."""
    if not isinstance(template, str):
        raise TypeError(f"template must be a string, got {type(template).__name__}")
    fields = [f for _, f, _, _ in string.Formatter().parse(template) if f is not None]
    if sorted(fields) != ["color", "object"]:
        raise ValueError(f"template {template!r} must contain '{{object}}' and '{{color}}' once each, "
                         f"e.g. {DEFAULT_TEMPLATE!r}")
    return template


def colour_statements(object_name: str, palette: Sequence[str], template: str = DEFAULT_TEMPLATE) -> list[str]:
    """One statement per candidate colour for an object."""
    check_template(template)
    return [template.format(object=object_name, color=c) for c in palette]


def _check_palette(palette: Sequence[str]) -> list[str]:
    if isinstance(palette, str) or not palette or not all(isinstance(c, str) and c for c in palette):
        raise ValueError("palette must be a non-empty list of colour words")
    if len(set(palette)) != len(palette):
        raise ValueError(f"palette has duplicates: {list(palette)}")
    return list(palette)


def score_colour_statements(loaded: LoadedModel, images: Any, object_names: Sequence[str],
                            palette: Sequence[str], template: str = DEFAULT_TEMPLATE,
                            batch_size: int = 256) -> torch.Tensor:
    """(n, n_colours) logits 100 · image_i · text(object_i, colour_c) on normalised CLIP features.

    ``images`` are uint8 arrays at model size (fast path) or anything the model's preprocess accepts;
    statements are encoded once per distinct object name.
    """
    if not isinstance(loaded, LoadedModel):
        raise TypeError(f"expected a LoadedModel from cliplab.models.load_model, got {type(loaded).__name__}")
    palette = _check_palette(palette)
    check_template(template)
    names = list(object_names)
    if len(names) != len(images):
        raise ValueError(f"{len(images)} images but {len(names)} object names: give one name per image")
    if not all(isinstance(n, str) and n for n in names):
        raise ValueError("object_names must be non-empty strings")
    unique = sorted(set(names))
    texts = [s for name in unique for s in colour_statements(name, palette, template)]
    text_features = encode_texts(loaded, texts).view(len(unique), len(palette), -1)
    image_features = encode_images(loaded, images, batch_size)
    position = {name: k for k, name in enumerate(unique)}
    rows = torch.tensor([position[n] for n in names], dtype=torch.long)
    return LOGIT_SCALE * torch.einsum("nd,ncd->nc", image_features, text_features[rows])


def clip_scorer(loaded: LoadedModel, template: str = DEFAULT_TEMPLATE, batch_size: int = 256) -> Scorer:
    """A scorer (see module docstring) for a contrastive model and a statement template."""
    check_template(template)

    def score(images: Any, object_names: Sequence[str], palette: Sequence[str]) -> torch.Tensor:
        return score_colour_statements(loaded, images, object_names, palette, template, batch_size)

    return score


def predict_colours(logits: torch.Tensor, palette: Sequence[str]) -> np.ndarray:
    """The argmax colour word of each row."""
    if logits.ndim != 2 or logits.shape[1] != len(palette):
        raise ValueError(f"logits must be (n, {len(palette)}), got {tuple(logits.shape)}")
    return np.asarray(palette, dtype=object)[logits.argmax(dim=1).numpy()]


def run_probes(model: LoadedModel | Scorer, probes: ProbeSet, template: str = DEFAULT_TEMPLATE,
               palette: Sequence[str] | None = None) -> pd.DataFrame:
    """The probe table with ``predicted`` and one ``logit_<colour>`` column per candidate colour.

    ``model`` is a LoadedModel (scored with ``template``) or a scorer callable. The candidate set defaults to
    the probe set's palette and must contain both objects' colours (else Two* would be 0 by construction).
    """
    if not isinstance(probes, ProbeSet):
        raise TypeError(f"expected a ProbeSet from build_probes, got {type(probes).__name__}")
    palette = _check_palette(palette if palette is not None else probes.palette)
    used = set(probes.table["query_colour"]) | set(probes.table["other_colour"].dropna())
    if not used <= set(palette):
        raise ValueError(f"candidate colours must include every colour shown; missing {sorted(used - set(palette))}")
    scorer = clip_scorer(model, template) if isinstance(model, LoadedModel) else model
    if not callable(scorer):
        raise TypeError(f"model must be a LoadedModel or a scorer callable, got {type(model).__name__}")
    logits = scorer(probes.query_images(), list(probes.table["query"]), palette).float()
    if tuple(logits.shape) != (len(probes), len(palette)):
        raise ValueError(f"scorer returned {tuple(logits.shape)}, expected {(len(probes), len(palette))}")
    out = probes.table.copy()
    out["predicted"] = predict_colours(logits, palette)
    for k, colour in enumerate(palette):
        out[f"logit_{colour}"] = logits[:, k].numpy()
    return out
