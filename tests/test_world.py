"""Tests of the procedural image–caption world (cliplab.world) against independent expectations."""

from __future__ import annotations

import json
import logging
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from cliplab.world import (
    DOMAINS, MIXED, World, WorldConfig, frequencies_from_index, iter_shards, read_index, true_frequencies,
    write_shards,
)


@pytest.fixture(scope="module")
def world() -> World:
    return World(WorldConfig(seed=7))


def _words(caption: str) -> list[str]:
    return re.findall(r"[a-z]+", caption)


def _pairs_in_caption(caption: str, names: set[str], palette: set[str]) -> list[tuple[str | None, str]]:
    """(colour word or None, name) for every concept name in the caption, read from the words alone."""
    words = _words(caption)
    return [(words[k - 1] if k > 0 and words[k - 1] in palette else None, w)
            for k, w in enumerate(words) if w in names]


def _zipf(world: World) -> np.ndarray:
    """Expected training probabilities recomputed from the ranks alone (not via train_probabilities)."""
    alpha = world.config.zipf_exponent
    p = np.array([0.0 if c.frequency_rank is None else c.frequency_rank ** -alpha for c in world.concepts])
    return p / p.sum()


def _chi2_pvalue(counts: np.ndarray, probs: np.ndarray, min_expected: float = 5.0) -> float:
    """Chi-square goodness of fit, pooling cells with small expected counts into one."""
    expected = probs * counts.sum()
    keep = expected >= min_expected
    obs = np.append(counts[keep], counts[~keep].sum())
    exp = np.append(expected[keep], expected[~keep].sum())
    if exp[-1] == 0:
        obs, exp = obs[:-1], exp[:-1]
    return float(stats.chisquare(obs, exp).pvalue)


# ----------------------------------------------------------------------------- determinism


def test_same_config_gives_identical_bytes_and_other_seed_differs() -> None:
    a, b = World(WorldConfig(seed=1)), World(WorldConfig(seed=1))
    c = World(WorldConfig(seed=2))
    for i in (0, 17, 999):
        for domain in DOMAINS:
            sa, sb = a.sample(i, domain=domain), b.sample(i, domain=domain)
            assert sa.image.tobytes() == sb.image.tobytes()
            assert sa.caption == sb.caption and sa.meta == sb.meta
    assert [x.name for x in a.concepts] == [x.name for x in b.concepts]
    assert [x.name for x in a.concepts] != [x.name for x in c.concepts]
    diff = sum(a.sample(i).image.tobytes() != c.sample(i).image.tobytes() for i in range(20))
    assert diff == 20


@pytest.mark.parametrize("size", [48, 64])
def test_larger_images_keep_objects_inside(size: int) -> None:
    w = World(WorldConfig(image_size=size))
    for s in w.iter_samples(50, domain=MIXED):
        assert s.image.shape == (size, size, 3)
        for o in s.meta["objects"]:
            x0, y0, x1, y1 = o["box"]
            assert 0 <= x0 < x1 <= size and 0 <= y0 < y1 <= size


def test_sample_is_independent_of_generation_order(world: World) -> None:
    forward = [world.sample(i, "train", "textured") for i in range(30, 40)]
    fresh = World(world.config)
    backward = [fresh.sample(i, "train", "textured") for i in reversed(range(30, 40))][::-1]
    streamed = list(World(world.config).iter_samples(10, start=30, domain="textured"))
    for f, b, s in zip(forward, backward, streamed):
        assert f.image.tobytes() == b.image.tobytes() == s.image.tobytes()
        assert f.caption == b.caption == s.caption
    assert world.sample(5, "val").caption != world.sample(5, "train").caption or \
        world.sample(5, "val").image.tobytes() != world.sample(5, "train").image.tobytes()


def test_domains_share_the_scene_but_not_the_pixels(world: World) -> None:
    samples = {d: world.sample(3, domain=d) for d in DOMAINS}
    objects = {json.dumps(s.meta["objects"]) for s in samples.values()}
    assert len(objects) == 1
    assert len({s.image.tobytes() for s in samples.values()}) == len(DOMAINS)
    for s in samples.values():
        assert s.image.dtype == np.uint8 and s.image.shape == (32, 32, 3)
    mixed = [world.sample(i, domain=MIXED).meta["domain"] for i in range(200)]
    assert set(mixed) == set(world.config.domains)


# ----------------------------------------------------------------------------- captions and metadata


def test_aligned_captions_name_every_object_with_its_colour(world: World) -> None:
    names = {c.name for c in world.concepts}
    palette = set(world.palette)
    omitted = 0
    for s in world.iter_samples(400, start=1000):
        assert s.meta["aligned"]
        pairs = _pairs_in_caption(s.caption, names, palette)
        expected = [(o["colour"], o["name"]) for o in s.meta["objects"]]
        if s.meta["colour_omitted"]:
            omitted += 1
            assert not palette & set(_words(s.caption))
            expected = [(None, n) for _, n in expected]
        assert Counter(pairs) == Counter(expected), s.caption
        assert Counter(s.meta["caption_concepts"]) == Counter(o["concept"] for o in s.meta["objects"])
    rate, p = omitted / 400, world.config.p_omit_colour
    assert abs(rate - p) < 4 * np.sqrt(p * (1 - p) / 400)


def test_boxes_lie_in_the_image_and_two_objects_sit_side_by_side(world: World) -> None:
    s_ = world.config.image_size
    for s in world.iter_samples(300):
        objs = s.meta["objects"]
        for o in objs:
            x0, y0, x1, y1 = o["box"]
            assert 0 <= x0 < x1 <= s_ and 0 <= y0 < y1 <= s_
        if len(objs) == 2:
            assert objs[0]["box"][2] <= s_ // 2 <= objs[1]["box"][0]
    # the box is where the object's pixels differ from the background
    probe = world.scene([(0, "blue")], jitter=False)
    x0, y0, x1, y1 = probe.meta["objects"][0]["box"]
    bg = probe.image[0, 0].astype(int)
    changed = np.abs(probe.image.astype(int) - bg).sum(-1) > 60
    ys, xs = np.nonzero(changed)
    assert abs(xs.min() - x0) <= 1 and abs(xs.max() + 1 - x1) <= 1
    assert abs(ys.min() - y0) <= 1 and abs(ys.max() + 1 - y1) <= 1


def test_misalignment_fraction_and_swapped_captions() -> None:
    m = 0.3
    w = World(WorldConfig(seed=4, misalignment=m, p_omit_colour=0.0))
    n = 1500
    draws = [w.draw(i) for i in range(n)]
    bad = [d for d in draws if not d.meta["aligned"]]
    assert abs(len(bad) / n - m) < 4 * np.sqrt(m * (1 - m) / n)
    names = {c.name for c in w.concepts}
    for d in draws[:300]:
        source = w.draw(d.meta["caption_source"]).scene if not d.meta["aligned"] else d.scene
        assert (d.meta["caption_source"] != d.meta["index"]) == (not d.meta["aligned"])
        described = Counter(o.name for o in source.objects)
        assert Counter(n_ for _, n_ in _pairs_in_caption(d.caption, names, set(w.palette))) == described


# ----------------------------------------------------------------------------- frequencies and colours


def test_training_frequencies_follow_the_requested_zipf_and_hold_out_concepts() -> None:
    w = World(WorldConfig(seed=5, zipf_exponent=1.3, n_heldout=20, misalignment=0.1))
    freq = true_frequencies(w, 6000)
    p = _zipf(w)
    assert sorted(c.frequency_rank for c in w.concepts if not c.heldout) == list(range(1, 257 - 20))
    assert _chi2_pvalue(freq["object_count"].to_numpy(), p) > 1e-3
    # the test has power: a different exponent is rejected
    wrong = np.array([0.0 if c.frequency_rank is None else c.frequency_rank ** -1.0 for c in w.concepts])
    assert _chi2_pvalue(freq["object_count"].to_numpy(), wrong / wrong.sum()) < 1e-6
    held = freq["heldout"].to_numpy()
    assert held.sum() == 20
    assert freq.loc[held, ["image_count", "text_count", "object_count"]].to_numpy().sum() == 0
    assert (freq["matched_count"] <= np.minimum(freq["image_count"], freq["text_count"])).all()
    n_obj = Counter(w.draw(i).meta["n_objects"] for i in range(3000))
    assert _chi2_pvalue(np.array([n_obj[k] for k in (1, 2, 3)]), np.array(w.config.objects_weights)) > 1e-3


def test_frequency_rank_permutation_depends_on_seed() -> None:
    a, b = World(WorldConfig(seed=0)), World(WorldConfig(seed=1))
    top_a = {c.parts for c in a.concepts if c.frequency_rank is not None and c.frequency_rank <= 20}
    top_b = {c.parts for c in b.concepts if c.frequency_rank is not None and c.frequency_rank <= 20}
    assert len(top_a & top_b) < 10


def test_strong_concepts_take_their_canonical_colour_at_rate_p() -> None:
    p = 0.8
    w = World(WorldConfig(seed=6, p_canonical=p, zipf_exponent=0.5))
    hits = total = 0
    weak_colours: Counter[str] = Counter()
    for i in range(4000):
        for o in w.draw(i).meta["objects"]:
            c = w.concepts[o["concept"]]
            if c.strength == "strong":
                total += 1
                hits += o["colour"] == c.canonical_colour
            else:
                weak_colours[o["colour"]] += 1
    assert abs(hits / total - p) < 4 * np.sqrt(p * (1 - p) / total)
    counts = np.array([weak_colours[c] for c in w.palette])
    assert _chi2_pvalue(counts, np.full(len(w.palette), 1 / len(w.palette))) > 1e-3
    strong = [c for c in w.concepts if c.strength == "strong"]
    assert len(strong) == 128 and all(c.canonical_colour in w.palette for c in strong)
    assert all(c.canonical_colour is None for c in w.concepts if c.strength == "weak")


def test_overlap_knobs_control_shared_name_and_visual_parts() -> None:
    def same_shape_prefix_rate(overlap: float) -> float:
        cs = World(WorldConfig(seed=2, name_overlap=overlap)).concepts
        pairs = [(a, b) for a in cs[:80] for b in cs[:80] if a.id < b.id and a.parts[0] == b.parts[0]]
        return float(np.mean([a.name[:2] == b.name[:2] for a, b in pairs]))

    assert same_shape_prefix_rate(1.0) == 1.0
    assert same_shape_prefix_rate(0.0) < 0.2
    few = World(WorldConfig(seed=2, n_shapes=3, n_markings=4, n_patterns=8, n_concepts=90)).concepts
    assert len({c.parts[0] for c in few}) == 3 and len({c.parts[1] for c in few}) == 4
    assert len({c.parts for c in few}) == 90
    names = [c.name for c in World(WorldConfig(name_overlap=0.5)).concepts]
    assert len(set(names)) == len(names) and all(n.isalpha() and n.islower() for n in names)


# ----------------------------------------------------------------------------- evaluation sets and probes


def test_eval_set_is_balanced_single_object_and_disjoint_from_training(world: World) -> None:
    ids = [0, 5, 9]
    ev = world.eval_set(4, domain="sketch", concepts=ids)
    assert Counter(s.meta["objects"][0]["concept"] for s in ev) == {c: 4 for c in ids}
    assert all(s.meta["n_objects"] == 1 and s.meta["domain"] == "sketch" for s in ev)
    heldout = [c.id for c in world.concepts if c.heldout][:2]
    assert len(world.eval_set(2, concepts=heldout)) == 4
    train_images = {s.image.tobytes() for s in world.iter_samples(200, domain="sketch")}
    assert not train_images & {s.image.tobytes() for s in ev}
    with pytest.raises(ValueError, match="train"):
        world.eval_set(2, split="train")


def test_probe_scene_places_given_objects_side_by_side(world: World) -> None:
    a, b = world.concepts[3], world.concepts[4]
    s = world.scene([(a.id, "yellow"), (b.name, "purple")], seed=1)
    assert s.caption == f"a yellow {a.name} and a purple {b.name}"
    left, right = s.meta["objects"]
    assert (left["colour"], right["colour"]) == ("yellow", "purple")
    assert left["box"][2] <= 16 <= right["box"][0]
    # object pixels (far from the background) are yellow on the left (G ≫ B), purple on the right (R, B ≫ G)
    img = s.image.astype(int)
    fg = np.abs(img - img[0, 0]).sum(-1) > 90
    lp, rp = img[:, :16][fg[:, :16]], img[:, 16:][fg[:, 16:]]
    assert len(lp) > 20 and len(rp) > 20
    assert np.median(lp[:, 1] - lp[:, 2]) > 80
    assert np.median(rp[:, 0] - rp[:, 1]) > 40 and np.median(rp[:, 2] - rp[:, 1]) > 40
    with pytest.raises(ValueError, match="palette"):
        world.scene([(0, "turquoise")])


def test_concepts_are_visually_distinguishable_at_32px() -> None:
    """A linear probe on translation-invariant features (|FFT| of grey levels) of clean single-object renders
    with uniformly random colours separates 64 concepts far above chance (1/64)."""
    from sklearn.linear_model import RidgeClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    w = World(WorldConfig(seed=3))
    ids = list(range(64))

    def xy(split: str, per: int) -> tuple[np.ndarray, np.ndarray]:
        ss = w.eval_set(per, concepts=ids, split=split, colours="uniform")
        g = np.stack([s.image for s in ss]).astype(np.float32).mean(-1) / 255
        g -= g.mean(axis=(1, 2), keepdims=True)
        return np.log1p(np.abs(np.fft.rfft2(g))).reshape(len(ss), -1), np.array([s.meta["objects"][0]["concept"] for s in ss])

    xtr, ytr = xy("val", 30)
    xte, yte = xy("test", 10)
    clf = make_pipeline(StandardScaler(), RidgeClassifier(alpha=10.0)).fit(xtr, ytr)
    assert clf.score(xte, yte) > 0.2  # chance is 0.016


# ----------------------------------------------------------------------------- validation


@pytest.mark.parametrize("kwargs, match", [
    ({"n_concepts": 600}, "n_concepts"),
    ({"image_size": 16}, "image_size"),
    ({"palette": ("red", "blue")}, "palette"),
    ({"palette": ("red", "orange", "yellow", "green", "blue", "purple", "pink", "mauve")}, "mauve"),
    ({"p_canonical": 1.5}, "p_canonical"),
    ({"misalignment": -0.1}, "misalignment"),
    ({"n_heldout": 256}, "n_heldout"),
    ({"objects_weights": (0.5, 0.5, 0.5)}, "objects_weights"),
    ({"max_objects": 2}, "objects_weights"),
    ({"domains": ("clean", "oil-painting")}, "domains"),
    ({"zipf_exponent": -1.0}, "zipf_exponent"),
    ({"max_rotation": 90}, "max_rotation"),
    ({"n_shapes": 2, "n_markings": 2, "n_patterns": 2}, "n_concepts"),
    ({"n_patterns": 9}, "n_patterns"),
])
def test_bad_config_is_rejected_with_a_named_field(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        World(WorldConfig(**kwargs))


def test_bad_calls_are_rejected(world: World) -> None:
    with pytest.raises(TypeError, match="n_concepts"):
        WorldConfig(n_concepts=2.5).validate()  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="domain"):
        world.sample(0, domain="watercolour")
    with pytest.raises(ValueError, match="i must"):
        world.sample(-1)
    with pytest.raises(ValueError, match="split"):
        world.sample(0, split="")
    restricted = World(WorldConfig(domains=("clean",)))
    with pytest.raises(ValueError, match="domain"):
        restricted.sample(0, domain="sketch")
    assert WorldConfig.from_dict(world.config.to_dict()) == world.config


# ----------------------------------------------------------------------------- shards


def test_shards_round_trip_and_index_matches(tmp_path: Path, world: World) -> None:
    paths = write_shards(world, 25, tmp_path / "train", shard_size=10, start=100, domain="noisy")
    assert [p.name for p in paths] == ["train-000000.tar", "train-000001.tar", "train-000002.tar"]
    back = list(iter_shards(paths))
    assert len(back) == 25
    for k, (image, caption, meta) in enumerate(back):
        expected = world.sample(100 + k, domain="noisy")
        assert np.array_equal(image, expected.image)
        assert caption == expected.caption
        assert meta == json.loads(json.dumps(expected.meta))
    index = read_index(tmp_path / "train")
    assert len(index) == 25 and index["index"].tolist() == list(range(100, 125))
    assert index["caption"].tolist() == [c for _, c, _ in back]
    assert [list(x) for x in index["concepts"]] == [[o["concept"] for o in m["objects"]] for _, _, m in back]
    assert [[list(b) for b in x] for x in index["boxes"]] == [[o["box"] for o in m["objects"]] for _, _, m in back]
    assert set(index["shard"]) == {p.name for p in paths}
    from_index = frequencies_from_index(world, index)
    direct = true_frequencies(world, 25, start=100)
    assert (from_index["image_count"] == direct["image_count"]).all()
    assert (from_index["text_count"] == direct["text_count"]).all()
    cfg = json.loads((tmp_path / "train" / "world.json").read_text())
    assert WorldConfig.from_dict(cfg) == world.config


def test_jpg_shards_decode_close_to_the_render(tmp_path: Path, world: World) -> None:
    paths = write_shards(world, 4, tmp_path, image_format="jpg")
    for k, (image, _, _) in enumerate(iter_shards(paths)):
        assert np.abs(image.astype(int) - world.sample(k).image.astype(int)).mean() < 6


def test_open_clip_train_runs_one_step_on_a_world_shard(tmp_path: Path) -> None:
    """The shards are real webdataset: open_clip's own training script trains a tiny CLIP on one for a step."""
    torch = pytest.importorskip("torch")
    import open_clip
    from open_clip_train.main import main

    torch.set_num_threads(2)
    world = World(WorldConfig(seed=0))
    shard = write_shards(world, 16, tmp_path / "shards", shard_size=16)[0]
    config = {"embed_dim": 32,
              "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "patch_size": 8, "head_width": 8},
              "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 4, "layers": 1}}
    (tmp_path / "cliplab-world-test-tiny.json").write_text(json.dumps(config))
    open_clip.add_model_config(tmp_path / "cliplab-world-test-tiny.json")
    # open_clip_train's setup_logging sets every logger to INFO and adds root handlers; undo that afterwards
    root_handlers = list(logging.root.handlers)
    levels = {name: logging.getLogger(name).level for name in [*logging.root.manager.loggerDict, ""]}
    try:
        rc = main(["--model", "cliplab-world-test-tiny", "--train-data", str(shard), "--train-num-samples", "8",
                   "--dataset-type", "webdataset", "--batch-size", "8", "--epochs", "1", "--device", "cpu",
                   "--workers", "0", "--logs", str(tmp_path / "logs"), "--name", "one-step", "--report-to", "",
                   "--precision", "fp32", "--lr", "1e-3", "--warmup", "1", "--seed", "0"])
    finally:
        for handler in [h for h in logging.root.handlers if h not in root_handlers]:
            logging.root.removeHandler(handler)
            handler.close()
        for name in logging.root.manager.loggerDict:
            logging.getLogger(name).setLevel(levels.get(name, logging.NOTSET))
        logging.root.setLevel(levels[""])
    assert rc in (None, 0)
    log = (tmp_path / "logs" / "one-step" / "out.log").read_text()
    losses = [float(x) for x in re.findall(r"Contrastive_loss: ([0-9.]+)", log)]
    assert losses and all(np.isfinite(losses))
    # InfoNCE at initialisation is about log(batch) = log 8
    assert abs(losses[0] - np.log(8)) < 1.0
    assert (tmp_path / "logs" / "one-step" / "checkpoints" / "epoch_1.pt").is_file()
