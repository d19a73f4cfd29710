"""Normalised image and text embeddings of a loaded model, in batches, without gradients."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch

from cliplab.models.loading import LoadedModel
from cliplab.models.preprocess import images_to_tensor


def _check_loaded(loaded: Any) -> LoadedModel:
    if not isinstance(loaded, LoadedModel):
        raise TypeError(f"expected a LoadedModel from cliplab.models.load_model, got {type(loaded).__name__}")
    return loaded


def _device(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device


def encode_images(loaded: LoadedModel, images: Sequence[Any] | np.ndarray, batch_size: int = 256) -> torch.Tensor:
    """L2-normalised image embeddings (N, D). uint8 arrays at model size skip PIL; others use preprocess."""
    loaded = _check_loaded(loaded)
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    model, device = loaded.model, _device(loaded.model)
    model.eval()
    out = []
    with torch.no_grad():
        for start in range(0, len(images), batch_size):
            batch = images_to_tensor(images[start:start + batch_size], model, loaded.preprocess)
            out.append(model.encode_image(batch.to(device), normalize=True).float().cpu())
    if not out:
        raise ValueError("no images to encode")
    return torch.cat(out)


def encode_texts(loaded: LoadedModel, texts: Sequence[str], batch_size: int = 1024) -> torch.Tensor:
    """L2-normalised text embeddings (N, D) of ``texts`` tokenised with the model's own tokenizer."""
    loaded = _check_loaded(loaded)
    if not texts or not all(isinstance(t, str) for t in texts):
        raise ValueError("texts must be a non-empty sequence of strings")
    model, device = loaded.model, _device(loaded.model)
    model.eval()
    out = []
    with torch.no_grad():
        for start in range(0, len(texts), batch_size):
            tokens = loaded.tokenizer(list(texts[start:start + batch_size])).to(device)
            out.append(model.encode_text(tokens, normalize=True).float().cpu())
    return torch.cat(out)
