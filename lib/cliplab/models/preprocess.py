"""Turning images into model input: a vectorised fast path for world images, open_clip's transform for the rest.

World images are already uint8 arrays at the model's resolution, so resizing is a no-op and a PIL round trip
per sample would dominate training time; they are converted and normalised as one batch tensor instead.
Anything else (real photos, other sizes, file paths) goes through the model's own open_clip preprocess.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
from PIL import Image


def normalization(model: torch.nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
    """The (mean, std) the model was trained with, shaped (1, 3, 1, 1), from open_clip's preprocess_cfg."""
    cfg = getattr(model.visual, "preprocess_cfg", None) or {}
    mean = cfg.get("mean", (0.48145466, 0.4578275, 0.40821073))
    std = cfg.get("std", (0.26862954, 0.26130258, 0.27577711))
    return (
        torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1),
        torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1),
    )


def image_size(model: torch.nn.Module) -> tuple[int, int]:
    """(height, width) the vision tower expects."""
    size = getattr(model.visual, "image_size", None)
    if size is None:
        size = (getattr(model.visual, "preprocess_cfg", {}) or {}).get("size", 224)
    if isinstance(size, int):
        return (size, size)
    return (int(size[0]), int(size[1]))


def uint8_to_tensor(images: np.ndarray | torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """uint8 (N, H, W, 3) -> normalised float32 (N, 3, H, W) in one vectorised op."""
    batch = torch.as_tensor(images)
    if batch.dtype != torch.uint8 or batch.ndim != 4 or batch.shape[-1] != 3:
        raise ValueError(
            f"expected uint8 images shaped (N, H, W, 3), got {tuple(batch.shape)} {batch.dtype}; "
            "convert with np.asarray(img, dtype=np.uint8) or pass PIL images"
        )
    x = batch.permute(0, 3, 1, 2).to(torch.float32).div_(255.0)
    return (x - mean) / std


def is_fast_batch(images: Any, size: tuple[int, int]) -> bool:
    """True when ``images`` is a uint8 (N, H, W, 3) array/tensor already at the model's resolution."""
    if isinstance(images, (np.ndarray, torch.Tensor)):
        dtype_ok = images.dtype == np.uint8 if isinstance(images, np.ndarray) else images.dtype == torch.uint8
        return dtype_ok and images.ndim == 4 and tuple(images.shape[1:3]) == size and images.shape[3] == 3
    return False


def to_pil(image: Any) -> Image.Image:
    """A PIL RGB image from a PIL image, a uint8 HxWx3 array, or an image file path."""
    if isinstance(image, Image.Image):
        return image.convert("RGB")
    if isinstance(image, (str, Path)):
        path = Path(image)
        if not path.is_file():
            raise FileNotFoundError(f"image file not found: {path}")
        with Image.open(path) as img:
            return img.convert("RGB")
    if isinstance(image, np.ndarray):
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"expected a uint8 HxWx3 array, got {image.shape} {image.dtype}")
        return Image.fromarray(image, mode="RGB")
    raise TypeError(f"cannot read an image from {type(image).__name__}; pass a PIL image, uint8 array or path")


def images_to_tensor(
    images: Sequence[Any] | np.ndarray | torch.Tensor,
    model: torch.nn.Module,
    preprocess: Callable[[Image.Image], torch.Tensor] | None = None,
) -> torch.Tensor:
    """Model input (N, 3, H, W) for a batch: fast path for uint8 arrays at model size, else ``preprocess``."""
    size = image_size(model)
    if is_fast_batch(images, size):
        mean, std = normalization(model)
        return uint8_to_tensor(images, mean, std)
    if isinstance(images, np.ndarray) and images.ndim == 4:
        images = list(images)
    if preprocess is None:
        raise ValueError(
            f"images are not uint8 arrays at {size[0]}x{size[1]}, so they need the model's preprocess: "
            "pass preprocess=LoadedModel.preprocess"
        )
    return torch.stack([preprocess(to_pil(img)) for img in images])
