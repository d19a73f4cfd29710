"""Zero-shot classification and image-text retrieval for any loaded model, on world or real data."""

from cliplab.eval.data import (
    CaptionCorpus,
    LabeledImages,
    read_caption_corpus,
    read_image_folder,
    world_caption_corpus,
    world_eval_set,
)
from cliplab.eval.features import encode_images, encode_texts
from cliplab.eval.retrieval import recall_at_k, retrieval_eval
from cliplab.eval.zeroshot import DEFAULT_TEMPLATES, ZeroShotResult, class_weights, normalize_templates, zero_shot_eval

__all__ = [
    "CaptionCorpus",
    "DEFAULT_TEMPLATES",
    "LabeledImages",
    "ZeroShotResult",
    "class_weights",
    "encode_images",
    "encode_texts",
    "normalize_templates",
    "read_caption_corpus",
    "read_image_folder",
    "recall_at_k",
    "retrieval_eval",
    "world_caption_corpus",
    "world_eval_set",
    "zero_shot_eval",
]
