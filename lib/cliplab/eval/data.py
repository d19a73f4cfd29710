"""Evaluation data, world or real: labelled images for zero-shot, image-caption corpora for retrieval.

- :func:`world_eval_set` / :func:`world_caption_corpus`: from a ``cliplab.world.World``.
- :func:`read_image_folder`: a folder with one sub-folder per class (torchvision ``ImageFolder`` layout);
  each image is decoded once there, so that files that do not decode stop the read (or are skipped, reported).
- :func:`read_caption_corpus`: CSV/TSV or parquet with (path, caption) columns, or webdataset tar shards
  (image + ``txt`` per sample).

Paths and columns are checked before any image is decoded; images of real data stay as file paths or PIL
images and go through the model's open_clip preprocess when encoded.
"""

from __future__ import annotations

import glob
import inspect
import io
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd
from PIL import Image

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")
ON_BAD_IMAGE = ("raise", "skip", "unchecked")
WDS_IMAGE_KEYS = "jpg;jpeg;png;webp;ppm"


@dataclass
class LabeledImages:
    """Images with integer labels into ``classnames`` (``class_ids`` keeps e.g. world concept ids).

    ``skipped`` lists (path, reason) of image files a reader left out because they do not decode.
    """

    images: np.ndarray | Sequence[Any]
    labels: np.ndarray
    classnames: list[str]
    class_ids: list[Any] | None = None
    skipped: list[tuple[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.labels = np.asarray(self.labels, dtype=np.int64)
        if len(self.images) != len(self.labels):
            raise ValueError(f"{len(self.images)} images but {len(self.labels)} labels")
        if len(self.labels) == 0:
            raise ValueError("no images: an evaluation set needs at least one")
        if self.labels.min() < 0 or self.labels.max() >= len(self.classnames):
            raise ValueError(f"labels must index classnames (0..{len(self.classnames) - 1})")
        if self.class_ids is not None and len(self.class_ids) != len(self.classnames):
            raise ValueError("class_ids must have one entry per class name")

    def __len__(self) -> int:
        return len(self.labels)


@dataclass
class CaptionCorpus:
    """Paired images and captions (row i's caption describes row i's image)."""

    images: np.ndarray | Sequence[Any]
    captions: list[str]

    def __post_init__(self) -> None:
        if len(self.images) != len(self.captions):
            raise ValueError(f"{len(self.images)} images but {len(self.captions)} captions")
        if not self.captions:
            raise ValueError("the corpus is empty")
        bad = [i for i, c in enumerate(self.captions) if not isinstance(c, str)]
        if bad:
            raise TypeError(f"captions must be strings; row {bad[0]} is {type(self.captions[bad[0]]).__name__}")

    def __len__(self) -> int:
        return len(self.captions)


# --- world -------------------------------------------------------------------------------------------------


def world_eval_set(
    world: Any,
    per_concept: int,
    domain: str = "clean",
    concepts: Sequence[int] | None = None,
    split: str = "test",
) -> LabeledImages:
    """A balanced single-object test set: ``per_concept`` images of each concept, labelled by concept.

    Class names are the concepts' caption words, classes ordered by concept id; ``class_ids`` are the ids.
    """
    samples = world.eval_set(per_concept, domain=domain, concepts=concepts, split=split)
    ids = [int(s.meta["objects"][0]["concept"]) for s in samples]
    class_ids = sorted(set(ids)) if concepts is None else [world.concept(c).id for c in concepts]
    position = {cid: i for i, cid in enumerate(class_ids)}
    return LabeledImages(
        images=np.stack([s.image for s in samples]),
        labels=np.array([position[c] for c in ids]),
        classnames=[world.concept(c).name for c in class_ids],
        class_ids=class_ids,
    )


def world_caption_corpus(world: Any, n: int, split: str = "test", start: int = 0, domain: str = "clean") -> CaptionCorpus:
    """``n`` image-caption pairs of a world split (held-out from training when split != 'train')."""
    samples = list(world.iter_samples(n, split=split, start=start, domain=domain))
    return CaptionCorpus(images=np.stack([s.image for s in samples]), captions=[s.caption for s in samples])


# --- real data ---------------------------------------------------------------------------------------------


def read_image_folder(root: str | Path, on_bad_image: str = "raise") -> LabeledImages:
    """``root/<class>/<image>`` as LabeledImages (images stay file paths; '_' in folder names -> spaces).

    Each image is decoded once here (JPEGs at reduced scale), so that a file that does not decode — empty,
    truncated, corrupt, or not an image despite its suffix — is found before any model runs rather than
    halfway through an evaluation. ``on_bad_image``: "raise" (default) stops with a ValueError giving their
    count and the first few paths with PIL's reason; "skip" leaves them out, warns with the same, and lists
    them in ``LabeledImages.skipped``; "unchecked" decodes nothing (faster; a bad file then fails when
    encoded). Files without an image suffix are not images and are ignored, as by torchvision's ImageFolder.
    """
    from torchvision.datasets import ImageFolder

    if on_bad_image not in ON_BAD_IMAGE:
        raise ValueError(f"on_bad_image must be one of {ON_BAD_IMAGE}, got {on_bad_image!r}")

    path = Path(root)
    if not path.is_dir():
        raise FileNotFoundError(f"image folder not found: {path} (expected root/<class name>/<image files>)")
    classes = sorted(p.name for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise ValueError(f"{path} has no class sub-folders: expected root/<class name>/<image files>")
    try:
        folder = ImageFolder(str(path))
    except FileNotFoundError as err:
        raise ValueError(f"{path}: {err} (image suffixes: {', '.join(IMAGE_SUFFIXES)})") from None
    samples, skipped = folder.samples, []
    if on_bad_image != "unchecked":
        skipped = [(p, why) for p, _ in samples if (why := _decode_error(p)) is not None]
    if skipped:
        message = _bad_images_message(path, skipped, len(samples))
        if on_bad_image == "raise" or len(skipped) == len(samples):
            raise ValueError(f"{message}; delete or replace them, or pass on_bad_image='skip' to leave them out")
        warnings.warn(f"{message}; left out (LabeledImages.skipped lists them)", stacklevel=2)
        bad = {p for p, _ in skipped}
        samples = [(p, label) for p, label in samples if p not in bad]
    return LabeledImages(
        images=[p for p, _ in samples],
        labels=np.array([label for _, label in samples]),
        classnames=[c.replace("_", " ") for c in folder.classes],
        class_ids=list(folder.classes),
        skipped=skipped,
    )


def _decode_error(path: str) -> str | None:
    """Why an image file does not decode (PIL's exception), or None when it does."""
    try:
        with Image.open(path) as img:
            img.draft("RGB", (1, 1))  # JPEG: decode at 1/8 scale, which still reads all of the data
            img.load()
    except Exception as err:  # PIL raises OSError, SyntaxError, ValueError, DecompressionBombError, ...
        return f"{type(err).__name__}: {err}"
    return None


def _bad_images_message(root: Path, bad: list[tuple[str, str]], total: int, shown: int = 5) -> str:
    """'N of M image files under root do not decode: a.jpg (reason), ...' with the first ``shown`` of them."""
    examples = "; ".join(f"{Path(p).relative_to(root) if Path(p).is_relative_to(root) else p} ({why})"
                         for p, why in bad[:shown])
    more = f"; and {len(bad) - shown} more" if len(bad) > shown else ""
    return f"{len(bad)} of {total} image files under {root} do not decode: {examples}{more}"


def read_caption_corpus(
    source: str | Path | Sequence[str],
    image_column: str | None = None,
    caption_column: str | None = None,
) -> CaptionCorpus:
    """A caption corpus from CSV/TSV/parquet (columns default to ``path``, ``caption``) or webdataset shards.

    Table paths are relative to the table's folder; a parquet image column may also hold encoded bytes.
    Webdataset sources are a ``.tar`` file, a folder of ``.tar`` shards, a glob, a brace pattern
    (``shard-{000..009}.tar``) or a list of those; the image key defaults to jpg/png/webp, the caption key to
    ``txt``.
    """
    if isinstance(source, (list, tuple)):
        return _read_webdataset([str(s) for s in source], image_column, caption_column)
    text = str(source)
    path = Path(text)
    if path.suffix.lower() in (".csv", ".tsv", ".parquet", ".pq"):
        if not path.is_file():
            raise FileNotFoundError(f"caption table not found: {path}")
        return _read_table(path, image_column or "path", caption_column or "caption")
    if path.is_dir():
        shards = sorted(str(p) for p in path.glob("*.tar"))
        if not shards:
            raise ValueError(f"{path} holds no .tar shards; pass a CSV/parquet file or webdataset shards")
        return _read_webdataset(shards, image_column, caption_column)
    if path.suffix == ".tar" or "{" in text or any(ch in text for ch in "*?["):
        return _read_webdataset([text], image_column, caption_column)
    raise ValueError(f"cannot read a caption corpus from {text!r}: use .csv, .tsv, .parquet or webdataset .tar shards")


def _read_table(path: Path, image_column: str, caption_column: str) -> CaptionCorpus:
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq"):
        frame = pd.read_parquet(path)
    else:
        frame = pd.read_csv(path, sep="\t" if suffix == ".tsv" else ",")
    missing = [c for c in (image_column, caption_column) if c not in frame.columns]
    if missing:
        raise ValueError(
            f"{path} lacks column(s) {missing}; it has {list(frame.columns)}. "
            "Pass image_column=... and caption_column=..."
        )
    if frame[caption_column].isna().any():
        raise ValueError(f"{path}: column {caption_column!r} has empty captions (rows {list(frame.index[frame[caption_column].isna()][:5])})")
    values = frame[image_column].tolist()
    if values and isinstance(values[0], (bytes, bytearray)):
        images: list[Any] = [Image.open(io.BytesIO(v)).convert("RGB") for v in values]
    elif values and isinstance(values[0], dict) and "bytes" in values[0]:  # HF datasets' Image feature
        images = [Image.open(io.BytesIO(v["bytes"])).convert("RGB") for v in values]
    else:
        images = [(path.parent / str(v)) if not Path(str(v)).is_absolute() else Path(str(v)) for v in values]
        absent = [str(p) for p in images if not p.is_file()]
        if absent:
            raise FileNotFoundError(
                f"{len(absent)} image file(s) listed in {path} do not exist, e.g. {absent[:3]} "
                f"(paths are resolved relative to {path.parent})"
            )
    return CaptionCorpus(images=images, captions=[str(c) for c in frame[caption_column]])


def _expand_shards(patterns: list[str]) -> list[str]:
    import braceexpand

    shards: list[str] = []
    for pattern in patterns:
        for item in braceexpand.braceexpand(pattern):
            matches = sorted(glob.glob(item)) if any(ch in item for ch in "*?[") else [item]
            shards.extend(matches)
    absent = [s for s in shards if not Path(s).is_file()]
    if not shards or absent:
        raise FileNotFoundError(f"webdataset shard(s) not found: {absent[:3] or patterns}")
    return shards


def _read_webdataset(patterns: list[str], image_key: str | None, caption_key: str | None) -> CaptionCorpus:
    import webdataset as wds

    shards = _expand_shards(patterns)
    image_key, caption_key = image_key or WDS_IMAGE_KEYS, caption_key or "txt"
    options: dict[str, Any] = {"shardshuffle": False}
    if "empty_check" in inspect.signature(wds.WebDataset.__init__).parameters:  # webdataset >= 0.2.90
        options["empty_check"] = False
    dataset = wds.WebDataset(shards, **options).decode("pil")
    images: list[Any] = []
    captions: list[str] = []
    for i, sample in enumerate(dataset.to_tuple(image_key, caption_key, handler=_missing_keys(image_key, caption_key))):
        image, caption = sample
        images.append(image.convert("RGB") if isinstance(image, Image.Image) else image)
        captions.append(caption if isinstance(caption, str) else str(caption))
    if not captions:
        raise ValueError(f"no samples with keys {image_key!r} and {caption_key!r} in {shards[:3]}")
    return CaptionCorpus(images=images, captions=captions)


def _missing_keys(image_key: str, caption_key: str):
    def handler(err: Exception) -> bool:
        raise ValueError(
            f"a webdataset sample lacks {image_key!r} or {caption_key!r} ({err}); pass image_column=/caption_column="
            " with the member suffixes your shards use"
        ) from err

    return handler
