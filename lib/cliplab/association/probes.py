"""Probe sets for the concept association bias: two objects side by side, plus single-object controls.

Conditions (`docs/papers/concept_association_bias.md` §6):

* ``"natural"``:   strong concepts in their canonical colours (the lemon + eggplant case);
* ``"unnatural"``: strong concepts recoloured to a colour that is neither their own nor their partner's
  canonical colour, so the image holds no canonical colour at all (pink carrot + green orange);
* ``"weak"``:      weak concepts (no canonical colour) in random colours.

The two colours of a pair always differ, otherwise "the other object's colour" is not distinguishable from
the correct one. Every two-object image is queried about both objects (one row each), and each object of the
pair also gets a single-object control image in the same colour. Images come from the world's probe stream
(``World.scene``), which never coincides with a training sample.

For real photos, :func:`read_object_photos` reads ``<object>/<colour>/*.jpg`` folders (or a CSV) and
:func:`build_photo_probes` composes pairs with :func:`compose_pair`, giving the same table layout.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Sequence

import numpy as np
import pandas as pd
from PIL import Image

from cliplab.models.preprocess import to_pil

Condition = Literal["natural", "unnatural", "weak"]
CONDITIONS: tuple[str, ...] = ("natural", "unnatural", "weak")
PROBE_COLUMNS: tuple[str, ...] = (
    "probe_id", "condition", "seed", "pair_id", "kind", "image_index", "query_concept", "query", "query_colour",
    "query_position", "other_concept", "other", "other_colour", "other_position",
)
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp")
_MAX_TRIES = 10_000


@dataclass
class ProbeSet:
    """A tidy probe table (one row per question, columns ``PROBE_COLUMNS``) and the images it refers to.

    ``images[row.image_index]`` is the image a row asks about. ``kind`` is "two" (two-object image; ``other_*``
    describe the second object) or "single" (control; ``other_*`` are missing). ``palette`` is the list of
    candidate colours the probe must be scored over (it contains every colour in the table).
    """

    table: pd.DataFrame
    images: np.ndarray | list[Any]
    palette: list[str]

    def __post_init__(self) -> None:
        missing = [c for c in PROBE_COLUMNS if c not in self.table.columns]
        if missing:
            raise ValueError(f"probe table lacks columns {missing}")
        if len(self.table) and int(self.table["image_index"].max()) >= len(self.images):
            raise ValueError("probe table refers to image indices beyond the images given")
        used = set(self.table["query_colour"]) | set(self.table["other_colour"].dropna())
        absent = sorted(used - set(self.palette))
        if absent:
            raise ValueError(f"colours {absent} appear in the probes but not in the palette {self.palette}")

    def __len__(self) -> int:
        return len(self.table)

    def query_images(self) -> np.ndarray | list[Any]:
        """The image of every row, in row order (uint8 array for world probes, a list for photos)."""
        idx = self.table["image_index"].to_numpy()
        if isinstance(self.images, np.ndarray):
            return self.images[idx]
        return [self.images[i] for i in idx]


def concat_probes(sets: Sequence[ProbeSet]) -> ProbeSet:
    """One ProbeSet from several (e.g. conditions × seeds): image indices and probe ids are re-based."""
    if not sets:
        raise ValueError("concat_probes needs at least one ProbeSet")
    palette = list(sets[0].palette)
    if any(list(s.palette) != palette for s in sets):
        raise ValueError("concat_probes: every ProbeSet must share the same palette")
    tables, images, offset = [], [], 0
    for s in sets:
        t = s.table.copy()
        t["image_index"] += offset
        tables.append(t)
        images.extend(list(s.images))
        offset += len(s.images)
    table = pd.concat(tables, ignore_index=True)
    table["probe_id"] = np.arange(len(table))
    stacked: np.ndarray | list[Any] = np.stack(images) if all(isinstance(s.images, np.ndarray) for s in sets) else images
    return ProbeSet(table, stacked, palette)


def probe_concepts(world: Any, condition: str, concepts: Sequence[int | str] | None = None) -> list[int]:
    """Concept ids a condition may use: strong (natural/unnatural) or weak, never held out of training."""
    _check_condition(condition)
    pool = range(len(world.concepts)) if concepts is None else [world.concept(c).id for c in concepts]
    want = "weak" if condition == "weak" else "strong"
    return [c for c in pool if world.concepts[c].strength == want and not world.concepts[c].heldout]


def known_concepts(concepts: pd.DataFrame, min_count: int, column: str = "matched_count") -> list[int]:
    """Ids of non-held-out concepts seen at least ``min_count`` times in training (a zoo model's concept table).

    Probing only objects a model saw often enough to know their names keeps "cannot bind" apart from
    "never learned the word"; the threshold is on training frequency, never on the model's own accuracy.
    """
    if not isinstance(concepts, pd.DataFrame) or not {"concept", "heldout", column} <= set(concepts.columns):
        raise ValueError(f"concepts must be a zoo concept table with columns concept, heldout, {column}")
    if isinstance(min_count, bool) or not isinstance(min_count, (int, np.integer)) or min_count < 0:
        raise ValueError(f"min_count must be a non-negative int, got {min_count!r}")
    keep = (concepts[column] >= min_count) & ~concepts["heldout"].astype(bool)
    return sorted(int(c) for c in concepts.loc[keep, "concept"])


def build_probes(
    world: Any,
    condition: str,
    n_pairs: int,
    seed: int,
    *,
    concepts: Sequence[int | str] | None = None,
    domain: str = "clean",
    jitter: bool = True,
) -> ProbeSet:
    """``n_pairs`` two-object probe images of a condition (2 rows each) plus single-object controls (2 each).

    ``concepts`` restricts the pool (e.g. to concepts frequent enough for a small model to know their
    names); the pool is then filtered by the condition's strength, and held-out concepts are always excluded.
    Pairs and colours come from ``np.random.default_rng(seed)``; scene seeds for ``World.scene`` from the same
    generator, so the set is a pure function of (world, condition, n_pairs, seed, concepts, domain, jitter).
    """
    _check_condition(condition)
    if isinstance(n_pairs, bool) or not isinstance(n_pairs, (int, np.integer)) or n_pairs < 1:
        raise ValueError(f"n_pairs must be a positive int, got {n_pairs!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    pool = probe_concepts(world, condition, concepts)
    if len(pool) < 2:
        raise ValueError(
            f"condition {condition!r} needs ≥ 2 non-held-out {'weak' if condition == 'weak' else 'strong'} "
            f"concepts, found {len(pool)}; widen `concepts` or use a world with more of them"
        )
    palette = list(world.palette)
    if condition == "natural" and len({world.concepts[c].canonical_colour for c in pool}) < 2:
        raise ValueError("condition 'natural' needs strong concepts with ≥ 2 different canonical colours")
    rng = np.random.default_rng(seed)
    rows: list[dict[str, Any]] = []
    images: list[np.ndarray] = []
    for pair_id in range(int(n_pairs)):
        (a, colour_a), (b, colour_b) = _draw_pair(world, condition, pool, palette, rng)
        scene_seed = int(rng.integers(0, 2**31 - 1))
        two = world.scene([(a, colour_a), (b, colour_b)], domain=domain, seed=scene_seed, jitter=jitter)
        objs = two.meta["objects"]
        image_index = len(images)
        images.append(two.image)
        for q, o in ((0, 1), (1, 0)):
            rows.append(_row(condition, seed, pair_id, "two", image_index, objs[q], objs[o]))
        for q in (0, 1):
            single = world.scene([(objs[q]["concept"], objs[q]["colour"])], domain=domain,
                                 seed=int(rng.integers(0, 2**31 - 1)), jitter=jitter)
            images.append(single.image)
            rows.append(_row(condition, seed, pair_id, "single", len(images) - 1, single.meta["objects"][0], None))
    table = pd.DataFrame(rows, columns=list(PROBE_COLUMNS))
    table["probe_id"] = np.arange(len(table))
    table["other_concept"] = table["other_concept"].astype("Int64")  # concept ids stay ints (missing on controls)
    return ProbeSet(table, np.stack(images), palette)


def _draw_pair(world: Any, condition: str, pool: list[int], palette: list[str],
               rng: np.random.Generator) -> tuple[tuple[int, str], tuple[int, str]]:
    """Two distinct concepts and two different colours following the condition's rule."""
    for _ in range(_MAX_TRIES):
        a, b = (int(x) for x in rng.choice(pool, size=2, replace=False))
        can_a, can_b = world.concepts[a].canonical_colour, world.concepts[b].canonical_colour
        if condition == "natural":
            if can_a != can_b:
                return (a, can_a), (b, can_b)
            continue
        if condition == "unnatural":
            allowed = [c for c in palette if c not in (can_a, can_b)]
        else:
            allowed = palette
        colour_a, colour_b = (str(c) for c in rng.choice(allowed, size=2, replace=False))
        return (a, colour_a), (b, colour_b)
    raise RuntimeError("could not draw a pair with different colours; the concept pool is too uniform")


def _row(condition: str, seed: int, pair_id: int, kind: str, image_index: int, query: dict[str, Any],
         other: dict[str, Any] | None) -> dict[str, Any]:
    return {
        "probe_id": -1, "condition": condition, "seed": int(seed), "pair_id": pair_id, "kind": kind,
        "image_index": image_index, "query_concept": query["concept"], "query": query["name"],
        "query_colour": query["colour"], "query_position": query["position"],
        "other_concept": None if other is None else other["concept"],
        "other": None if other is None else other["name"],
        "other_colour": None if other is None else other["colour"],
        "other_position": None if other is None else other["position"],
    }


def _check_condition(condition: str) -> None:
    if condition not in CONDITIONS:
        raise ValueError(f"condition must be one of {CONDITIONS}, got {condition!r}")


# --------------------------------------------------------------------------------------------------------
# Real photos: compose pairs from single-object images
# --------------------------------------------------------------------------------------------------------


def compose_pair(img_a: Any, img_b: Any, size: int | tuple[int, int] = 224,
                 background: tuple[int, int, int] = (255, 255, 255)) -> Image.Image:
    """Two images side by side on one ``size`` canvas: each fitted (aspect kept) into its half, centred.

    Fitting both into one model-sized square means the model's centre crop cannot cut an object off.
    """
    height, width = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
    if height < 2 or width < 2:
        raise ValueError(f"size must be at least 2×2 pixels, got {size!r}")
    canvas = Image.new("RGB", (width, height), background)
    half = width // 2
    for slot, img in enumerate((img_a, img_b)):
        pil = to_pil(img)
        scale = min(half / pil.width, height / pil.height)
        fitted = pil.resize((max(1, round(pil.width * scale)), max(1, round(pil.height * scale))), Image.BICUBIC)
        x0 = slot * half + (half - fitted.width) // 2
        canvas.paste(fitted, (x0, (height - fitted.height) // 2))
    return canvas


def read_object_photos(source: str | Path) -> pd.DataFrame:
    """Single-object photos as a (path, object, colour[, condition]) table from ``<object>/<colour>/<image>``
    or a CSV.

    The CSV needs columns ``path``, ``object``, ``colour`` (``color`` is accepted) and may add ``condition``
    (e.g. "natural"/"unnatural": pairs are then composed within a condition); relative paths resolve against
    the CSV's folder.
    """
    root = Path(source).expanduser()
    columns = ["path", "object", "colour"]
    if root.is_file():
        if root.suffix.lower() != ".csv":
            raise ValueError(f"{root} is a file but not a .csv; pass a CSV of (path, object, colour) or a folder")
        table = pd.read_csv(root).rename(columns={"color": "colour"})
        missing = [c for c in columns if c not in table.columns]
        if missing:
            raise ValueError(f"{root} lacks columns {missing}; it needs path, object, colour")
        table["path"] = [str(p if Path(p).is_absolute() else root.parent / p) for p in table["path"]]
        if "condition" in table.columns:
            columns.append("condition")
    elif root.is_dir():
        rows = [{"path": str(p), "object": p.parent.parent.name, "colour": p.parent.name}
                for p in sorted(root.glob("*/*/*")) if p.suffix.lower() in IMAGE_SUFFIXES]
        table = pd.DataFrame(rows, columns=columns)
    else:
        raise FileNotFoundError(f"{root} not found: pass a folder <object>/<colour>/*.jpg or a CSV")
    if table.empty:
        raise ValueError(f"no images found in {root} (expected <object>/<colour>/*.jpg or CSV rows)")
    for column in columns[1:]:
        table[column] = table[column].astype(str)
    return table[columns].reset_index(drop=True)


def build_photo_probes(photos: pd.DataFrame, n_pairs: int, seed: int, size: int | tuple[int, int] = 224,
                       palette: Sequence[str] | None = None, condition: str = "photos") -> ProbeSet:
    """Pairs of photos of different objects in different colours, composed side by side, plus controls.

    ``palette`` defaults to every colour in ``photos``; the table has the same columns as world probes
    (concept ids are the object names). Rows are labelled ``condition``, or, when ``photos`` has a
    ``condition`` column, with that column's value, and both photos of a pair then share it. The prompt names an
    object by its label with underscores as spaces (``coffee_cup`` → "coffee cup", :func:`object_name`); the
    concept id keeps the label. ``size`` should
    be the model's input size (:func:`cliplab.models.preprocess.image_size`).
    """
    if not isinstance(photos, pd.DataFrame) or not {"path", "object", "colour"} <= set(photos.columns):
        raise ValueError("photos must be a DataFrame with columns path, object, colour (see read_object_photos)")
    if isinstance(n_pairs, bool) or not isinstance(n_pairs, (int, np.integer)) or n_pairs < 1:
        raise ValueError(f"n_pairs must be a positive int, got {n_pairs!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    colours = sorted(set(photos["colour"]))
    palette = list(palette) if palette is not None else colours
    absent = sorted(set(colours) - set(palette))
    if absent:
        raise ValueError(f"photo colours {absent} are not in the palette {palette}; add them")
    rng = np.random.default_rng(seed)
    records = photos.to_dict("records")
    objects, colours_seen = photos["object"].to_numpy(), photos["colour"].to_numpy()
    groups = (photos["condition"].to_numpy() if "condition" in photos.columns
              else np.full(len(photos), condition, dtype=object))
    partners = [_partners(objects, colours_seen, groups, i) for i in range(len(records))]
    candidates = [i for i, p in enumerate(partners) if p.size]
    if not candidates:
        raise ValueError("no two photos show different objects in different colours (within one condition)")
    rows: list[dict[str, Any]] = []
    images: list[Image.Image] = []
    for pair_id in range(int(n_pairs)):
        i = int(candidates[rng.integers(len(candidates))])  # a photo that has partners, then a partner
        j = int(partners[i][rng.integers(partners[i].size)])
        a, b = records[i], records[j]
        label = str(groups[i])
        images.append(compose_pair(a["path"], b["path"], size))
        objs = [{"concept": r["object"], "name": object_name(r["object"]), "colour": r["colour"], "position": pos}
                for r, pos in ((a, "left"), (b, "right"))]
        for q, o in ((0, 1), (1, 0)):
            rows.append(_row(label, seed, pair_id, "two", len(images) - 1, objs[q], objs[o]))
        for q, r in enumerate((a, b)):
            images.append(to_pil(r["path"]))
            rows.append(_row(label, seed, pair_id, "single", len(images) - 1, dict(objs[q], position="center"), None))
    table = pd.DataFrame(rows, columns=list(PROBE_COLUMNS))
    table["probe_id"] = np.arange(len(table))
    return ProbeSet(table, images, palette)


def object_name(label: str) -> str:
    """The object's name as a prompt says it: a folder or CSV label with '_' read as a space (coffee_cup)."""
    return " ".join(str(label).replace("_", " ").split())


def _partners(objects: np.ndarray, colours: np.ndarray, groups: np.ndarray, i: int) -> np.ndarray:
    """Photos that may pair with photo ``i``: another object, another colour, the same condition."""
    return np.flatnonzero((objects != objects[i]) & (colours != colours[i]) & (groups == groups[i]))
