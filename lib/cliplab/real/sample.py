"""A small real-photograph sample for the real-data path, built offline from scikit-image's bundled photos.

The photographs are the few that scikit-image ships inside its wheel (``skimage/data``); they are read from that
folder directly, so nothing is downloaded. Crops, flips, tints and edge maps are seeded transformations of them:
the sample wires the real-data options (``images``, ``test_images``, ``ood_images``, ``corpus``,
``colour_images``) end to end, it is not a benchmark.
"""

from __future__ import annotations

import csv
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

N_CAPTIONS = 2000
TOP_SHARE, RAREST_SHARE = 0.30, 0.01
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (225, 30, 30), "green": (30, 175, 50), "blue": (35, 70, 230), "yellow": (240, 210, 25),
    "purple": (140, 40, 185),
}
COLOUR_OBJECTS = ("coffee_cup", "rocket", "motorcycle", "cat")
STREAMS = {"train": 0, "test": 1, "colour": 2, "corpus": 3}
_COMPRESS_LEVEL = 0


@dataclass(frozen=True)
class PhotoClass:
    """One class of the sample: its folder name, source files in ``skimage/data``, caption forms and licence."""

    folder: str
    files: tuple[str, ...]
    one: str
    many: str
    licence: str

    @property
    def name(self) -> str:
        """The class name as captions and ``read_image_folder`` spell it (spaces, not underscores)."""
        return self.folder.replace("_", " ")


CLASSES: tuple[PhotoClass, ...] = (
    PhotoClass("astronaut", ("astronaut.png",), "an astronaut", "astronauts",
               "NASA Great Images: \"No known copyright restrictions, released into the public domain.\""),
    PhotoClass("cat", ("chelsea.png",), "a cat", "cats",
               "\"No copyright restrictions. CC0 by the photographer (Stefan van der Walt).\""),
    PhotoClass("coffee_cup", ("coffee.png",), "a coffee cup", "coffee cups",
               "Pikolo Espresso Bar: \"No copyright restrictions. CC0 by the photographer (Rachel Michetti).\""),
    PhotoClass("rocket", ("rocket.jpg",), "a rocket", "rockets",
               "SpaceX Photos: \"captured by SpaceX and released in the public domain\"."),
    PhotoClass("motorcycle", ("motorcycle_left.png", "motorcycle_right.png"), "a motorcycle", "motorcycles",
               "Middlebury 2014 stereo benchmark (Scharstein et al.), down-sampled; skimage.data states no licence "
               "for it, so check the benchmark's terms before using these beyond tests."),
    PhotoClass("brick_wall", ("brick.png",), "a brick wall", "brick walls",
               "CC0Textures (Bricks25): \"licensed under the Creative Commons CC0 License\"."),
    PhotoClass("grass", ("grass.png",), "some grass", "tufts of grass",
               "DeviantArt (linolafett, Grass 01): \"licensed under the Creative Commons CC0 License\"."),
    PhotoClass("gravel", ("gravel.png",), "some gravel", "heaps of gravel",
               "CC0Textures (Gravel04): \"licensed under the Creative Commons CC0 License\"."),
)

SINGULAR = (
    "a photo of {one}.", "{One} on a table.", "{One} in the morning light.", "a close-up of {one}.",
    "{One}, seen from above.", "an old photograph of {one}.", "a blurry picture of {one} at night.",
    "{One} next to a window.",
)
PLURAL = (
    "Two {many} on a sofa.", "three {many} in a row.", "{Many} in the sunlight.", "a picture of several {many}.",
    "Many {many} side by side.", "{Many}, photographed outdoors.",
)
NEUTRAL_SUBJECTS = (
    "a view of the sea", "a city street", "a bowl of fruit", "a mountain lake", "an old wooden door",
    "a plate of pasta", "children in a park", "a bicycle by a fence", "a lighthouse", "a snowy forest",
    "a train station", "a bookshelf",
)
NEUTRAL_ENDINGS = (" at dusk.", " in the rain.", " on a sunny day.", ".", " in black and white.", " from far away.")


def skimage_data_dir() -> Path:
    """The folder of photographs inside the installed scikit-image wheel."""
    import skimage.data

    return Path(skimage.data.__file__).parent


def available_classes(data_dir: Path | None = None) -> list[PhotoClass]:
    """The classes whose source photographs are all present (a trimmed wheel may lack some)."""
    folder = skimage_data_dir() if data_dir is None else data_dir
    return [c for c in CLASSES if all((folder / f).is_file() for f in c.files)]


def _check_args(per_class: int, seed: int, size: int) -> None:
    """Reject bad sizes and seeds before anything is written."""
    for name, value, least in (("per_class", per_class, 2), ("size", size, 32), ("seed", seed, 0)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < least:
            raise ValueError(f"{name} must be an int ≥ {least}, got {value!r}")


def _rng(seed: int, stream: str, index: int) -> np.random.Generator:
    """An independent generator per (seed, split, class), so one split or class never shifts another."""
    return np.random.default_rng([int(seed), STREAMS[stream], index])


def _load(path: Path) -> Image.Image:
    """A source photograph as RGB (the grayscale textures are replicated to three channels)."""
    with Image.open(path) as img:
        return img.convert("RGB")


def _crop(photo: Image.Image, rng: np.random.Generator, size: int) -> Image.Image:
    """A square crop covering 50–100 % of the shorter side, flipped half the time, resized to size×size."""
    width, height = photo.size
    side = max(1, round(rng.uniform(0.5, 1.0) * min(width, height)))
    left, top = int(rng.integers(0, width - side + 1)), int(rng.integers(0, height - side + 1))
    flip = bool(rng.random() < 0.5)
    crop = photo.crop((left, top, left + side, top + side)).resize((size, size), Image.Resampling.LANCZOS)
    return crop.transpose(Image.Transpose.FLIP_LEFT_RIGHT) if flip else crop


def _crops(photos: list[Image.Image], rng: np.random.Generator, count: int, size: int) -> list[Image.Image]:
    """``count`` crops, cycling through a class's photos so every one of them appears."""
    return [_crop(photos[i % len(photos)], rng, size) for i in range(count)]


def _grayscale(img: Image.Image) -> Image.Image:
    """The image's luminance as a three-channel image (a colour-free shift of the same content)."""
    return img.convert("L").convert("RGB")


def _sketch(img: Image.Image) -> Image.Image:
    """An inverted Sobel edge map (dark lines on white), a sketch-like shift of the same content."""
    from skimage.filters import sobel

    edges = sobel(np.asarray(img.convert("L"), dtype=np.float64) / 255.0)
    scale = float(np.percentile(edges, 99)) or 1.0
    ink = np.clip(edges / scale, 0.0, 1.0)
    return Image.fromarray(np.round(255.0 * (1.0 - ink)).astype(np.uint8)).convert("RGB")


def _tint(img: Image.Image, colour: tuple[int, int, int]) -> Image.Image:
    """Luminance times the colour (lifted off black), so the whole object reads as that colour."""
    lum = np.asarray(img.convert("L"), dtype=np.float64)[..., None] / 255.0
    rgb = (0.2 + 0.8 * lum) * np.asarray(colour, dtype=np.float64)
    return Image.fromarray(np.round(rgb).astype(np.uint8))


def _save(img: Image.Image, path: Path) -> None:
    """An uncompressed PNG with no timestamp or other metadata, so the same pixels give the same bytes.

    Uncompressed, as in ``cliplab.core.sample_data``: Pillow's bundled zlib-ng may compress differently on
    other CPUs, which would change the bytes (and a DVC hash) of an otherwise identical sample.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, format="PNG", compress_level=_COMPRESS_LEVEL)


def _save_all(images: list[Image.Image], folder: Path) -> list[str]:
    """Write ``folder/000.png``, ``001.png``, ... and return the file names."""
    names = [f"{i:03d}.png" for i in range(len(images))]
    for img, name in zip(images, names):
        _save(img, folder / name)
    return names


def caption_shares(n_classes: int) -> list[float]:
    """Zipf-like caption shares by rank: the first class in ~30 % of captions, the last in ~1 %."""
    if n_classes == 1:
        return [TOP_SHARE]
    exponent = np.log(TOP_SHARE / RAREST_SHARE) / np.log(n_classes)
    return [TOP_SHARE * float(rank) ** -exponent for rank in range(1, n_classes + 1)]


def _class_caption(cls: PhotoClass, rng: np.random.Generator) -> str:
    """One caption naming ``cls`` once, singular or plural, sometimes starting with a capital."""
    if rng.random() < 0.35:
        template = PLURAL[int(rng.integers(len(PLURAL)))]
    else:
        template = SINGULAR[int(rng.integers(len(SINGULAR)))]
    text = template.format(one=cls.one, One=cls.one[0].upper() + cls.one[1:],
                           many=cls.many, Many=cls.many[0].upper() + cls.many[1:])
    return text[0].upper() + text[1:] if rng.random() < 0.3 else text


def _neutral_caption(rng: np.random.Generator) -> str:
    """A caption naming none of the classes."""
    text = NEUTRAL_SUBJECTS[int(rng.integers(len(NEUTRAL_SUBJECTS)))]
    text += NEUTRAL_ENDINGS[int(rng.integers(len(NEUTRAL_ENDINGS)))]
    return text[0].upper() + text[1:] if rng.random() < 0.3 else text


def _corpus(classes: list[PhotoClass], seed: int, per_class: int) -> tuple[list[tuple[str, str]], list[str]]:
    """(caption, image) rows, and the class folders from most to least often named (a seeded ranking)."""
    rng = _rng(seed, "corpus", 0)
    ranking = [classes[i] for i in rng.permutation(len(classes))]
    counts = [round(share * N_CAPTIONS) for share in caption_shares(len(ranking))]
    slots: list[PhotoClass | None] = [c for c, n in zip(ranking, counts) for _ in range(n)]
    slots += [None] * (N_CAPTIONS - len(slots))
    rows = []
    for slot in (slots[i] for i in rng.permutation(len(slots))):
        if slot is None:
            rows.append((_neutral_caption(rng), ""))
        else:
            image = f"images/{slot.folder}/{int(rng.integers(per_class)):03d}.png"
            rows.append((_class_caption(slot, rng), image))
    return rows, [c.folder for c in ranking]


def _write_corpus(rows: list[tuple[str, str]], path: Path) -> None:
    """``caption,image`` CSV with Unix line endings."""
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(["caption", "image"])
        writer.writerows(rows)


def _table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    """A Markdown table."""
    lines = [header, tuple("---" for _ in header), *rows]
    return "\n".join("| " + " | ".join(line) + " |" for line in lines)


def _folder_rows(per_class: int, size: int, n_captions: int, colour_objects: list[str],
                 per_colour: int) -> list[tuple[str, str, str]]:
    """(folder, what it is, real-data option) for the README."""
    crops = (f"{per_class} seeded square crops per class (50–100 % of the shorter side, random horizontal flip), "
             f"{size}×{size} RGB PNG")
    test = f"{per_class // 2} further crops per class from a separate seed stream (held-out split)"
    corpus = (f"{n_captions} seeded captions (`caption,image`); `image` is a path under `images/` of the class the "
              "caption names, empty when it names none")
    tints = (f"{per_colour} crops per (object, colour) of {', '.join(colour_objects)}, tinted "
             f"{', '.join(COLOURS)} (luminance times the colour)")
    return [
        ("`images/<class>/`", crops, "`images`"),
        ("`test_images/<class>/`", test, "`test_images`"),
        ("`ood/sketch/<class>/`", "the test crops as inverted Sobel edge maps (`skimage.filters.sobel`)",
         "`ood_images`"),
        ("`ood/grayscale/<class>/`", "the test crops in grayscale (as RGB)", "`ood_images`"),
        ("`corpus.csv`", corpus, '`corpus` (`caption_column="caption"`)'),
        ("`colour_images/<object>/<colour>/`", tints, "`colour_images`"),
    ]


def _readme(classes: list[PhotoClass], ranking: list[str], rows: list[tuple[str, str]], per_class: int,
            seed: int, size: int, colour_objects: list[str], per_colour: int) -> str:
    """The sample's README: folders, sources and licences, caption frequencies, and what it is not."""
    import skimage

    named = {folder: sum(1 for _, image in rows if image.startswith(f"images/{folder}/")) for folder in ranking}
    neutral = sum(1 for _, image in rows if not image)
    folders = _table(("folder", "what it is", "real-data option"),
                     _folder_rows(per_class, size, len(rows), colour_objects, per_colour))
    sources = _table(("class", "source file", "licence (as stated by `skimage.data`)"),
                     [(f"`{c.folder}`", ", ".join(f"`skimage/data/{f}`" for f in c.files), c.licence)
                      for c in classes])
    frequencies = _table(("class", "captions naming it"),
                         [(folder.replace("_", " "), str(named[folder])) for folder in ranking])
    return f"""# Real-photograph sample

Written by `cliplab.real.sample.write_real_sample(per_class={per_class}, seed={seed}, size={size})`; the same
arguments give the same bytes. It exercises the real-data options of the notebooks offline.

{folders}

Folder names use `_` for spaces (`coffee_cup` is the class "coffee cup"). Counting images as well as text
(`image_column="image"`) reads an image for every caption, so it needs the rows with an empty `image` left out.

## Sources and licences

The photographs are scikit-image's bundled sample data (`skimage.data`, scikit-image {skimage.__version__}). Its
`skimage/data/README.txt` states no licence; the licence notes below are quoted from the docstrings of the
`skimage.data` loader of each photograph.

{sources}

## Caption frequencies

A Zipf-like spread over the classes (seeded ranking), plus {neutral} captions naming none of them:

{frequencies}

## Not a benchmark

Crops, flips, tints, grayscale and edge maps are synthetic transformations of a handful of photographs, made so the
real-data code paths can be wired and tested without a download. Accuracies or frequency effects measured on this
sample say nothing about a model.
"""


def _write_into(root: Path, classes: list[PhotoClass], per_class: int, seed: int, size: int) -> None:
    """Every file of the sample, written under ``root``."""
    data_dir = skimage_data_dir()
    photos = {c.folder: [_load(data_dir / f) for f in c.files] for c in classes}
    for cls in classes:
        index = CLASSES.index(cls)
        _save_all(_crops(photos[cls.folder], _rng(seed, "train", index), per_class, size), root / "images" / cls.folder)
        test = _crops(photos[cls.folder], _rng(seed, "test", index), per_class // 2, size)
        _save_all(test, root / "test_images" / cls.folder)
        _save_all([_sketch(img) for img in test], root / "ood" / "sketch" / cls.folder)
        _save_all([_grayscale(img) for img in test], root / "ood" / "grayscale" / cls.folder)
    per_colour = max(2, per_class // 4)
    colour_objects = [c.folder for c in classes if c.folder in COLOUR_OBJECTS]
    for index, folder in enumerate(COLOUR_OBJECTS):
        if folder not in colour_objects:
            continue
        rng = _rng(seed, "colour", index)
        for colour, rgb in COLOURS.items():
            tinted = [_tint(img, rgb) for img in _crops(photos[folder], rng, per_colour, size)]
            _save_all(tinted, root / "colour_images" / folder / colour)
    rows, ranking = _corpus(classes, seed, per_class)
    _write_corpus(rows, root / "corpus.csv")
    readme = _readme(classes, ranking, rows, per_class, seed, size, colour_objects, per_colour)
    (root / "README.md").write_text(readme, encoding="utf-8", newline="\n")


def write_real_sample(out: str | Path, per_class: int = 16, seed: int = 0, size: int = 160) -> Path:
    """Write the real-photograph sample to ``out`` and return it (see the README it writes for the layout).

    Deterministic: the same arguments give the same bytes. The sample is built in a temporary sibling folder and
    renamed into place at the end, so a failure leaves no half-written sample; an existing non-empty ``out`` is
    refused rather than mixed with.
    """
    _check_args(per_class, seed, size)
    root = Path(out).expanduser()
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise FileExistsError(f"{root} exists and is not empty; remove it or pass another folder to write the sample")
    classes = available_classes()
    if not classes:
        raise FileNotFoundError(f"none of the sample's photographs are in {skimage_data_dir()}; reinstall scikit-image")
    root.parent.mkdir(parents=True, exist_ok=True)
    staging = root.parent / f".{root.name}.{uuid.uuid4().hex[:12]}.partial"
    staging.mkdir()
    try:
        _write_into(staging, classes, int(per_class), int(seed), int(size))
        if root.exists():
            root.rmdir()
        staging.rename(root)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return root
