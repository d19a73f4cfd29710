"""The small, deterministic sample that ``data/`` holds by default.

``data/`` is for input data the pipeline does not make — real caption corpora and image folders you bring.
Out of the box it holds a tiny stand-in of exactly those formats (an image folder with one sub-folder per
class, and a ``path,caption`` CSV), so the real-data code paths can be tried offline. Images are written as
uncompressed PNGs so the bytes — and therefore ``data.dvc`` — are identical on every machine.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

SHAPES = ("circle", "square", "triangle", "diamond")
COLOURS = {"red": (220, 40, 40), "green": (40, 170, 60), "blue": (40, 80, 220), "yellow": (235, 200, 30)}


def _draw(shape: str, colour: tuple[int, int, int], rng: np.random.Generator, size: int) -> Image.Image:
    img = Image.new("RGB", (size, size), (245, 245, 245))
    draw = ImageDraw.Draw(img)
    r = int(rng.integers(size // 5, size // 3))
    cx, cy = (int(v) for v in rng.integers(r + 2, size - r - 2, size=2))
    box = (cx - r, cy - r, cx + r, cy + r)
    if shape == "circle":
        draw.ellipse(box, fill=colour)
    elif shape == "square":
        draw.rectangle(box, fill=colour)
    elif shape == "triangle":
        draw.polygon([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)], fill=colour)
    else:
        draw.polygon([(cx, cy - r), (cx + r, cy), (cx, cy + r), (cx - r, cy)], fill=colour)
    return img


def write_sample(out_dir: Path, per_class: int = 6, size: int = 64, seed: int = 0) -> Path:
    """Write ``out_dir/sample/images/<shape>/<i>.png`` and ``out_dir/sample/captions.csv``."""
    root = Path(out_dir) / "sample"
    rng = np.random.default_rng(seed)
    rows = []
    for shape in SHAPES:
        folder = root / "images" / shape
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            name = list(COLOURS)[int(rng.integers(len(COLOURS)))]
            path = folder / f"{i:03d}.png"
            _draw(shape, COLOURS[name], rng, size).save(path, format="PNG", compress_level=0)
            rows.append((path.relative_to(root).as_posix(), f"a {name} {shape} on a white background"))
    with open(root / "captions.csv", "w", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(["path", "caption"])
        writer.writerows(rows)
    return root
