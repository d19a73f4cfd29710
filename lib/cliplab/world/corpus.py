"""The World: concepts plus a seeded, streamable corpus of image–caption samples with ground-truth metadata.

Sample i of a split is a pure function of (config, split, i): its generator is
``PCG64(SeedSequence(config.seed, spawn_key=(SAMPLE_STREAM, crc32(split), i)))``, so corpora of any size can be
streamed, sharded or regenerated in any order. Scenes do not depend on the domain; only rendering does.
Balanced evaluation sets use their own stream (``EVAL_STREAM``) and can never coincide with training samples.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterator, Literal, Sequence

import numpy as np

from cliplab.world import captions as cap
from cliplab.world.colours import COLOURS
from cliplab.world.concepts import Concept, build_concepts, zipf_probabilities
from cliplab.world.config import WorldConfig
from cliplab.world.render import Renderer, stream_code
from cliplab.world.scene import SIZE_LEVELS, Scene, SceneObject, cells, object_size, place

SAMPLE_STREAM = 10
EVAL_STREAM = 11
PROBE_STREAM = 12
MIXED = "mixed"
"""Pass as ``domain`` to draw each sample's domain uniformly from ``config.domains`` (recorded in meta)."""

_SIZE_NAMES = tuple(SIZE_LEVELS)
_MAX_PARTNER = 2**40


@dataclass
class Sample:
    """One image–caption pair. ``meta`` holds the ground truth (see ``World.sample``); ``scene`` the objects."""

    image: np.ndarray
    caption: str
    meta: dict[str, Any]
    scene: Scene = field(repr=False)


@dataclass(frozen=True)
class Draw:
    """Everything about a sample except its pixels (cheap: used for counting frequencies)."""

    scene: Scene
    caption: str
    meta: dict[str, Any]
    domain: str


class World:
    """A procedural image–caption world built from a validated ``WorldConfig``."""

    def __init__(self, config: WorldConfig | None = None) -> None:
        if config is None:
            config = WorldConfig()
        if not isinstance(config, WorldConfig):
            raise TypeError(f"World needs a WorldConfig, got {type(config).__name__}")
        self.config = config.validate()
        self.concepts: list[Concept] = build_concepts(config)
        self.palette: list[str] = list(config.palette)
        self._probs = zipf_probabilities(self.concepts, config.zipf_exponent)
        self._concept_cdf = np.cumsum(self._probs)
        self._last_positive = int(np.flatnonzero(self._probs > 0)[-1])
        self._objects_cdf = np.cumsum(np.asarray(config.objects_weights, dtype=np.float64))
        self._colour_index = {c: i for i, c in enumerate(self.palette)}
        self._canonical = np.array([self._colour_index[c.canonical_colour] if c.canonical_colour else -1
                                    for c in self.concepts])
        self._rgb = np.array([COLOURS[c] for c in self.palette], dtype=np.int64)
        step, m = config.rotation_step, config.max_rotation
        self._rotations = np.arange(-(m // step), m // step + 1) * step
        self._renderer = Renderer(self.concepts, config.image_size, config.seed)
        self._by_name = {c.name: c for c in self.concepts}

    # ----------------------------------------------------------------- concepts
    def train_probabilities(self) -> np.ndarray:
        """Per-concept probability that a training object is that concept (Zipf over ranks; 0 if held out)."""
        return self._probs.copy()

    def concept(self, key: int | str) -> Concept:
        """A concept by id or name."""
        if isinstance(key, str):
            if key not in self._by_name:
                raise ValueError(f"no concept named {key!r} in this world")
            return self._by_name[key]
        if not 0 <= int(key) < len(self.concepts):
            raise ValueError(f"concept id {key} out of range [0, {len(self.concepts)})")
        return self.concepts[int(key)]

    def colour_distribution(self, concept: int) -> np.ndarray:
        """P(colour | concept) over the palette, as objects of this concept are coloured in training."""
        k = len(self.palette)
        c = self._canonical[concept]
        if c < 0:
            return np.full(k, 1.0 / k)
        p = np.full(k, (1.0 - self.config.p_canonical) / (k - 1))
        p[c] = self.config.p_canonical
        return p

    # ----------------------------------------------------------------- samples
    def sample(self, i: int, split: str = "train", domain: str = "clean") -> Sample:
        """Sample ``i`` of ``split`` rendered in ``domain`` — a pure function of (config, split, i, domain).

        meta: index, split, domain, background, n_objects, objects (concept, name, colour, rgb, size, size_px,
        rotation, x, y, position, box), caption_concepts / caption_colours (what the caption mentions, in
        order; colours None when omitted), colour_omitted, aligned, caption_source (index whose scene the
        caption describes; == index when aligned). With misalignment the caption is that of another sample
        of the same split (aligned=False), which may by chance mention the same concepts.
        """
        draw = self.draw(i, split, domain)
        image, background = self._renderer.render_with_background(draw.scene, draw.domain)
        meta = dict(draw.meta, background=background)
        return Sample(image, draw.caption, meta, draw.scene)

    def iter_samples(self, n: int, split: str = "train", start: int = 0, domain: str = "clean") -> Iterator[Sample]:
        """Samples start, ..., start+n−1 of a split, generated lazily."""
        _check_count(n, "n")
        _check_count(start, "start")
        self._check_domain(domain, allow_mixed=True)
        for i in range(start, start + n):
            yield self.sample(i, split, domain)

    def draw(self, i: int, split: str = "train", domain: str = "clean") -> Draw:
        """Scene, caption and metadata of sample ``i`` without rendering pixels."""
        _check_count(i, "i")
        _check_split(split)
        self._check_domain(domain, allow_mixed=True)
        rng = self._sample_rng(i, split)
        scene = self._draw_scene(rng)
        aligned = not (self.config.misalignment > 0 and rng.random() < self.config.misalignment)
        source = i
        described = scene
        if not aligned:
            source = int(rng.integers(0, _MAX_PARTNER - 1))
            source += source >= i  # any other index of the same split
            described = self._draw_scene(self._sample_rng(source, split))
        omit = bool(rng.random() < self.config.p_omit_colour)
        caption = cap.compose([o.name for o in described.objects], [o.colour for o in described.objects], rng, omit)
        if domain == MIXED:
            domain = self.config.domains[int(rng.integers(len(self.config.domains)))]
        meta = self._meta(scene, described, caption, index=i, split=split, domain=domain,
                          aligned=aligned, source=source)
        return Draw(scene, caption.text, meta, domain)

    def render(self, scene: Scene, domain: str) -> np.ndarray:
        """Pixels (uint8 H×W×3) of a scene in a domain."""
        self._check_domain(domain)
        return self._renderer.render(scene, domain)

    def caption(self, scene: Scene, rng: np.random.Generator) -> str:
        """A paraphrased caption of a scene (colours omitted with probability p_omit_colour)."""
        omit = bool(rng.random() < self.config.p_omit_colour)
        return cap.compose([o.name for o in scene.objects], [o.colour for o in scene.objects], rng, omit).text

    # ----------------------------------------------------------------- evaluation and probes
    def eval_set(self, per_concept: int, domain: str = "clean", concepts: Sequence[int] | None = None,
                 split: str = "test", colours: Literal["natural", "uniform"] = "natural") -> list[Sample]:
        """Balanced single-object images: ``per_concept`` per concept (default: all, held-out included).

        Drawn from the eval stream keyed by (split, concept, r), disjoint from every corpus stream; ``split``
        must not be "train". ``colours="natural"`` colours objects as in training (strong concepts mostly
        canonical); ``"uniform"`` draws colours uniformly. meta["index"] is r, meta["eval"] is True.
        """
        _check_count(per_concept, "per_concept")
        _check_split(split)
        if split == "train":
            raise ValueError("eval_set split must not be 'train' (evaluation must not share training samples); "
                             "use 'test' or 'val'")
        if colours not in ("natural", "uniform"):
            raise ValueError(f"colours must be 'natural' or 'uniform', got {colours!r}")
        self._check_domain(domain)
        ids = range(len(self.concepts)) if concepts is None else [self.concept(c).id for c in concepts]
        out = []
        for c in ids:
            for r in range(per_concept):
                rng = self._rng(EVAL_STREAM, stream_code(split), c, r)
                scene = self._draw_scene(rng, concept_ids=[c], uniform_colours=colours == "uniform")
                caption = cap.compose([scene.objects[0].name], [scene.objects[0].colour], rng, False)
                meta = self._meta(scene, scene, caption, index=r, split=split, domain=domain, aligned=True, source=r)
                meta["eval"] = True
                image, background = self._renderer.render_with_background(scene, domain)
                out.append(Sample(image, caption.text, dict(meta, background=background), scene))
        return out

    def scene(self, objects: Sequence[tuple[int | str, str | None]], domain: str = "clean", seed: int = 0,
              jitter: bool = True, size: str = "large") -> Sample:
        """A hand-built probe scene: the given (concept id or name, colour) pairs placed left to right.

        Two objects sit side by side (three in a 2×2 grid). A colour of None draws the concept's natural
        colour. ``jitter=False`` centres objects unrotated in exact palette colours. The caption is the
        canonical 'a yellow blick and a purple zorp'.
        """
        if not 1 <= len(objects) <= 3:
            raise ValueError(f"a scene holds 1 to 3 objects, got {len(objects)}")
        if size not in SIZE_LEVELS:
            raise ValueError(f"size must be one of {tuple(SIZE_LEVELS)}, got {size!r}")
        self._check_domain(domain)
        _check_count(seed, "seed")
        ids = [self.concept(c).id for c in objects_ids(objects)]
        for _, colour in objects:
            if colour is not None and colour not in self._colour_index:
                raise ValueError(f"colour {colour!r} is not in this world's palette {self.palette}")
        rng = self._rng(PROBE_STREAM, seed)
        fixed = [None if colour is None else self._colour_index[colour] for _, colour in objects]
        scene = self._draw_scene(rng, concept_ids=ids, colour_ids=fixed, jitter=jitter,
                                 size_level=_SIZE_NAMES.index(size))
        text = cap.canonical([o.name for o in scene.objects], [o.colour for o in scene.objects])
        caption = cap.Caption(text, tuple(range(len(ids))), False)
        meta = self._meta(scene, scene, caption, index=seed, split="probe", domain=domain, aligned=True,
                          source=seed)
        image, background = self._renderer.render_with_background(scene, domain)
        return Sample(image, text, dict(meta, background=background), scene)

    # ----------------------------------------------------------------- internals
    def _rng(self, *key: int) -> np.random.Generator:
        return np.random.Generator(np.random.PCG64(np.random.SeedSequence(self.config.seed, spawn_key=key)))

    def _sample_rng(self, i: int, split: str) -> np.random.Generator:
        return self._rng(SAMPLE_STREAM, stream_code(split), i)

    def _draw_scene(self, rng: np.random.Generator, concept_ids: list[int] | None = None,
                    colour_ids: list[int | None] | None = None, uniform_colours: bool = False,
                    jitter: bool = True, size_level: int | None = None) -> Scene:
        cfg = self.config
        if concept_ids is None:
            n = int(np.searchsorted(self._objects_cdf, rng.random(), side="right")) + 1
            n = min(n, cfg.max_objects)
            draws = np.searchsorted(self._concept_cdf, rng.random(n), side="right")
            concept_ids = np.minimum(draws, self._last_positive).tolist()
        n = len(concept_ids)
        layout = cells(n, cfg.image_size)
        if n == 3:
            layout = tuple(layout[k] for k in sorted(rng.permutation(4)[:3].tolist()))
        objs = []
        for slot, c in enumerate(concept_ids):
            fixed = colour_ids[slot] if colour_ids is not None else None
            colour = fixed if fixed is not None else self._draw_colour(c, rng, uniform_colours)
            if jitter:
                j = cfg.colour_jitter
                rgb = np.clip(self._rgb[colour] + rng.integers(-j, j + 1, 3), 0, 255)
                level = int(rng.integers(3)) if size_level is None else size_level
                rotation = int(self._rotations[rng.integers(len(self._rotations))])
            else:
                rgb, level, rotation = self._rgb[colour], (2 if size_level is None else size_level), 0
            size_px = object_size(_SIZE_NAMES[level], layout[slot])
            x, y = place(layout[slot], size_px, rng if jitter else None)
            objs.append(SceneObject(
                concept=int(c), name=self.concepts[c].name, colour=self.palette[colour],
                rgb=(int(rgb[0]), int(rgb[1]), int(rgb[2])), size=_SIZE_NAMES[level], size_px=size_px,
                rotation=rotation, x=x, y=y, position=layout[slot][0],
                box=self._renderer.tight_box(int(c), size_px, rotation, x, y),
            ))
        return Scene(tuple(objs), int(rng.integers(0, 2**63 - 1)))

    def _draw_colour(self, concept: int, rng: np.random.Generator, uniform: bool) -> int:
        k = len(self.palette)
        canonical = self._canonical[concept]
        if uniform or canonical < 0:
            return int(rng.integers(k))
        if rng.random() < self.config.p_canonical:
            return int(canonical)
        other = int(rng.integers(k - 1))
        return other + (other >= canonical)

    def _meta(self, scene: Scene, described: Scene, caption: cap.Caption, *, index: int, split: str,
              domain: str, aligned: bool, source: int) -> dict[str, Any]:
        mentioned = [described.objects[k] for k in caption.order]
        return {
            "index": index, "split": split, "domain": domain, "n_objects": len(scene.objects),
            "objects": [o.as_meta() for o in scene.objects],
            "caption_concepts": [o.concept for o in mentioned],
            "caption_colours": [None if caption.colour_omitted else o.colour for o in mentioned],
            "colour_omitted": caption.colour_omitted, "aligned": aligned, "caption_source": source,
        }

    def _check_domain(self, domain: str, allow_mixed: bool = False) -> None:
        if allow_mixed and domain == MIXED:
            return
        if domain not in self.config.domains:
            extra = f" or {MIXED!r}" if allow_mixed else ""
            raise ValueError(f"domain {domain!r} is not one of this world's domains {self.config.domains}{extra}")


def objects_ids(objects: Sequence[tuple[int | str, str | None]]) -> list[int | str]:
    """Concept keys of (concept, colour) pairs, with a clear error for malformed input."""
    keys = []
    for item in objects:
        if not isinstance(item, (tuple, list)) or len(item) != 2:
            raise TypeError(f"scene objects are (concept, colour) pairs, got {item!r}")
        keys.append(item[0])
    return keys


def _check_count(value: int, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ValueError(f"{name} must be a non-negative int, got {value!r}")


def _check_split(split: str) -> None:
    if not isinstance(split, str) or not split or not split.replace("-", "").replace("_", "").isalnum():
        raise ValueError(f"split must be a non-empty alphanumeric name such as 'train' or 'test', got {split!r}")
