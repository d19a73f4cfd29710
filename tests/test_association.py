"""cliplab.association: CAB metrics on hand-built tables, probe invariants, caption association counts,
statement scoring, the VQA head on ModifiedResNet and ViT towers, and the real-photo path."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import open_clip
import pandas as pd
import pytest
import torch
from PIL import Image

from cliplab import association as ca
from cliplab.models import load_model
from cliplab.models.loading import LoadedModel
from cliplab.world import World, WorldConfig

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models run fastest on one thread on shared cores; restore the caller's setting afterwards."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


# --------------------------------------------------------------------------------------------------------
# fixtures
# --------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def world() -> World:
    return World(WorldConfig(seed=3, n_concepts=32, n_heldout=4, max_objects=2, objects_weights=(0.7, 0.3)))


@pytest.fixture(scope="module")
def tiny() -> LoadedModel:
    """cliplab-tiny, random init: open_clip's ModifiedResNet image tower (32 px, final map 1×1)."""
    return load_model("cliplab-tiny", seed=0)


@pytest.fixture(scope="module")
def tiny_vit() -> LoadedModel:
    """A random-init open_clip ViT CLIP small enough for unit tests (32 px, 8 px patches → 16 tokens)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = open_clip.model.CLIP(
            embed_dim=32,
            vision_cfg={"image_size": 32, "patch_size": 8, "width": 32, "layers": 1, "head_width": 16},
            text_cfg={"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
        ).eval()
    return LoadedModel(model, open_clip.image_transform(32, is_train=False),
                       open_clip.tokenizer.SimpleTokenizer(context_length=16), "tiny-vit", "test")


def table(predicted: list[str], query: list[str], other: list[str]) -> pd.DataFrame:
    """Two-object rows with the given predictions (plus one correct single-object row)."""
    rows = [{"kind": "two", "query_colour": q, "other_colour": o, "predicted": p, "pair_id": i}
            for i, (p, q, o) in enumerate(zip(predicted, query, other))]
    rows.append({"kind": "single", "query_colour": "red", "other_colour": None, "predicted": "red", "pair_id": -1})
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------------------------------------
# metrics
# --------------------------------------------------------------------------------------------------------


def test_always_other_colour_is_cab_one() -> None:
    m = ca.cab_metrics(table(["blue"] * 4, ["red"] * 4, ["blue"] * 4))
    assert (m["two"], m["two_star"], m["third"], m["cab"]) == (0.0, 1.0, 0.0, 1.0)
    assert m["single"] == 1.0 and m["n_two"] == 4 and m["n_single"] == 1


def test_always_correct_is_cab_zero() -> None:
    m = ca.cab_metrics(table(["red", "green"], ["red", "green"], ["blue", "red"]))
    assert (m["two"], m["two_star"], m["cab"]) == (1.0, 0.0, 0.0)


def test_half_and_half_is_cab_half() -> None:
    m = ca.cab_metrics(table(["red", "blue", "red", "blue"], ["red"] * 4, ["blue"] * 4))
    assert (m["two"], m["two_star"], m["cab"]) == (0.5, 0.5, 0.5)


def test_third_colour_is_not_counted_as_other() -> None:
    m = ca.cab_metrics(table(["green", "green", "blue"], ["red"] * 3, ["blue"] * 3))
    assert m["two"] == 0.0
    assert m["two_star"] == pytest.approx(1 / 3)  # only the "blue" answer; Two* ≠ 1 − Two
    assert m["third"] == pytest.approx(2 / 3)
    assert m["cab"] == pytest.approx((1 - 0 + 1 / 3) / 2)


def test_cab_formula_on_random_tables() -> None:
    rng = np.random.default_rng(0)
    palette = ["red", "green", "blue", "pink"]
    for _ in range(20):
        n = int(rng.integers(1, 40))
        q = rng.choice(palette, n)
        o = np.array([rng.choice([c for c in palette if c != x]) for x in q])
        p = rng.choice(palette, n)
        m = ca.cab_metrics(table(list(p), list(q), list(o)))
        assert m["two"] == np.mean(p == q) and m["two_star"] == np.mean(p == o)
        assert m["cab"] == (1 - m["two"] + m["two_star"]) / 2
        assert m["two"] + m["two_star"] + m["third"] == pytest.approx(1.0)


def test_metric_input_errors() -> None:
    with pytest.raises(ValueError, match="Two \\+ Two\\*"):
        ca.cab(0.7, 0.6)
    with pytest.raises(ValueError, match="equal colours"):
        ca.cab_metrics(table(["red"], ["red"], ["red"]))
    with pytest.raises(ValueError, match="lacks columns"):
        ca.cab_metrics(pd.DataFrame({"kind": ["two"]}))


def test_cab_ci_brackets_point_and_resamples_whole_images() -> None:
    df = table(["blue", "red", "blue", "green"] * 10, ["red"] * 40, ["blue"] * 40)
    df.loc[df.kind == "two", "pair_id"] = np.arange(40) // 2  # two questions per image
    out = ca.cab_ci(df, "pair_id", seed=1, n_resamples=300)
    point = ca.cab_metrics(df)
    assert out["cab"] == pytest.approx(point["cab"]) and out["two_star"] == pytest.approx(point["two_star"])
    assert out["cab_ci_low"] <= out["cab"] <= out["cab_ci_high"] and out["cab_ci_low"] < out["cab_ci_high"]
    constant = table(["blue"] * 6, ["red"] * 6, ["blue"] * 6)
    degenerate = ca.cab_ci(constant, "pair_id", n_resamples=50)
    assert degenerate["cab_ci_low"] == degenerate["cab_ci_high"] == 1.0


def test_pair_cab_groups_by_binding() -> None:
    df = table(["blue", "red", "blue"], ["red"] * 3, ["blue"] * 3)
    df["query_concept"], df["query"], df["other_concept"], df["other"] = [0, 0, 1, 9], "a", [1, 1, 0, -1], "b"
    per_pair = ca.pair_cab(df)
    assert len(per_pair) == 2
    assert sorted(per_pair.cab) == [0.5, 1.0]


# --------------------------------------------------------------------------------------------------------
# probes
# --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("condition", ca.CONDITIONS)
def test_probe_invariants(world: World, condition: str) -> None:
    probes = ca.build_probes(world, condition, 12, seed=1)
    t = probes.table
    assert list(t.columns) == list(ca.PROBE_COLUMNS) and len(t) == 12 * 4
    two, single = t[t.kind == "two"], t[t.kind == "single"]
    assert (two.query_colour != two.other_colour).all()
    concepts = [world.concepts[c] for c in t.query_concept]
    assert not any(c.heldout for c in concepts)
    want = "weak" if condition == "weak" else "strong"
    assert all(c.strength == want for c in concepts)
    canonical = np.array([c.canonical_colour for c in concepts], dtype=object)
    if condition == "natural":
        assert (t.query_colour.to_numpy(dtype=object) == canonical).all()
    if condition == "unnatural":
        assert (t.query_colour.to_numpy(dtype=object) != canonical).all()
        other_canonical = [world.concepts[c].canonical_colour for c in two.other_concept]
        assert all(q != oc for q, oc in zip(two.query_colour, other_canonical))  # not the partner's either
    # side by side: each image asked about both objects, one left and one right
    for _, image_rows in two.groupby("image_index"):
        assert sorted(image_rows.query_position) == ["left", "right"]
        assert set(image_rows.query_concept) == set(image_rows.other_concept)
    # controls: one single-object image per object, same concept and colour as in the pair
    for pair_id, rows in t.groupby("pair_id"):
        a = rows[rows.kind == "two"].set_index("query_concept").query_colour.sort_index()
        b = rows[rows.kind == "single"].set_index("query_concept").query_colour.sort_index()
        assert a.equals(b)
    assert single.other_colour.isna().all()
    assert probes.images.shape == (36, 32, 32, 3) and probes.images.dtype == np.uint8


def test_probe_objects_sit_in_their_halves(world: World) -> None:
    probes = ca.build_probes(world, "natural", 6, seed=2, jitter=False)
    from cliplab.world.colours import COLOURS

    for _, row in probes.table[probes.table.kind == "two"].iterrows():
        image = probes.images[row.image_index].astype(int)
        left, right = image[:, :16], image[:, 16:]
        own, other = (left, right) if row.query_position == "left" else (right, left)
        target = np.asarray(COLOURS[row.query_colour])
        distance = lambda half: np.abs(half - target).sum(axis=-1).min()  # noqa: E731
        assert distance(own) < 60 and distance(own) < distance(other), "queried object not in its half"


def test_probes_are_never_training_samples(world: World) -> None:
    probes = ca.build_probes(world, "weak", 10, seed=0)
    train = {world.sample(i).image.tobytes() for i in range(600)}
    assert not any(img.tobytes() in train for img in probes.images)


def test_probes_are_deterministic(world: World) -> None:
    a, b = ca.build_probes(world, "unnatural", 8, seed=5), ca.build_probes(world, "unnatural", 8, seed=5)
    c = ca.build_probes(world, "unnatural", 8, seed=6)
    assert a.table.equals(b.table) and np.array_equal(a.images, b.images)
    assert not np.array_equal(a.images, c.images)


def test_probe_input_errors(world: World) -> None:
    with pytest.raises(ValueError, match="condition"):
        ca.build_probes(world, "odd", 3, 0)
    with pytest.raises(ValueError, match="n_pairs"):
        ca.build_probes(world, "natural", 0, 0)
    with pytest.raises(ValueError, match="needs ≥ 2"):
        weak = [c.id for c in world.concepts if c.strength == "weak" and not c.heldout][:1]
        ca.build_probes(world, "weak", 3, 0, concepts=weak)


def test_known_concepts_filters_on_training_frequency() -> None:
    concepts = pd.DataFrame({"concept": [0, 1, 2, 3], "heldout": [False, False, True, False],
                             "matched_count": [5, 100, 500, 99]})
    assert ca.known_concepts(concepts, 100) == [1]
    assert ca.known_concepts(concepts, 0) == [0, 1, 3]


def test_concat_probes_rebases_image_indices(world: World) -> None:
    a, b = ca.build_probes(world, "natural", 3, 0), ca.build_probes(world, "weak", 2, 0)
    both = ca.concat_probes([a, b])
    assert len(both) == len(a) + len(b) and len(both.images) == len(a.images) + len(b.images)
    last = both.table.iloc[-1]
    assert np.array_equal(both.images[last.image_index], b.images[b.table.iloc[-1].image_index])


# --------------------------------------------------------------------------------------------------------
# association strength
# --------------------------------------------------------------------------------------------------------


def test_caption_counts_match_scene_objects() -> None:
    """With aligned captions, the caption's (object, colour) mentions are exactly the scene's objects."""
    w = World(WorldConfig(seed=1, n_concepts=32, n_heldout=4, max_objects=2, objects_weights=(0.5, 0.5),
                          p_omit_colour=0.2))
    n = 400
    counts = ca.caption_counts(w, n)
    rows = []
    for i in range(n):
        meta = w.draw(i).meta
        if not meta["colour_omitted"]:
            rows += [(o["concept"], o["colour"]) for o in meta["objects"]]
    expected = pd.crosstab(pd.Series([r[0] for r in rows]), pd.Series([r[1] for r in rows]))
    expected = expected.reindex(index=range(32), columns=w.palette, fill_value=0).to_numpy()
    assert np.array_equal(counts, expected)
    assert counts.sum() > 0


def test_association_strength_closed_forms(world: World) -> None:
    counts = np.zeros((len(world.concepts), len(world.palette)), dtype=int)
    counts[0, 0], counts[0, 1], counts[1, 1] = 3, 1, 4
    s = ca.strength_from_counts(counts, world, smoothing=0.0)
    cell = s.set_index(["concept", "colour"])
    red, orange = world.palette[0], world.palette[1]
    assert cell.loc[(0, red), "p_colour_given_object"] == 0.75
    assert cell.loc[(1, orange), "p_colour_given_object"] == 1.0
    # PMI = log P(o,c) / (P(o) P(c)): concept 0 & red: (3/8) / ((4/8)(3/8)) = 2
    assert cell.loc[(0, red), "pmi"] == pytest.approx(np.log(2))
    assert np.isnan(cell.loc[(2, red), "p_colour_given_object"])  # never mentioned with a colour
    smoothed = ca.strength_from_counts(counts, world, smoothing=0.5)
    assert np.isfinite(smoothed.pmi).all()


def test_association_strength_recovers_canonical_colours(world: World) -> None:
    s = ca.association_strength(world, 3000)
    frequent = s[(s.object_count >= 60) & (s.strength == "strong")]
    canonical = {c.id: c.canonical_colour for c in world.concepts}
    top = frequent.loc[frequent.groupby("concept").p_colour_given_object.idxmax()]
    assert len(top) >= 3
    assert all(canonical[c] == colour for c, colour in zip(top.concept, top.colour))
    assert top.p_colour_given_object.mean() == pytest.approx(world.config.p_canonical, abs=0.05)


def test_cab_vs_association_joins_each_side(world: World) -> None:
    probes = ca.build_probes(world, "natural", 6, 0)
    scored = probes.table.assign(predicted=probes.table.query_colour)  # always correct
    counts = np.ones((len(world.concepts), len(world.palette)), dtype=int)
    strength = ca.strength_from_counts(counts, world)
    per_pair, rho = ca.cab_vs_association(scored, strength, which="pair")
    assert (per_pair.cab == 0).all() and np.isnan(rho)  # constant sides: ρ undefined, reported as NaN
    assert np.allclose(per_pair.association, 0.1) and "condition" in per_pair.columns


def test_spearman_ci() -> None:
    x = np.arange(20.0)
    rho, low, high = ca.spearman_ci(x, x ** 3, n_resamples=100)
    assert rho == pytest.approx(1.0) and low == pytest.approx(1.0) and high == pytest.approx(1.0)
    rng = np.random.default_rng(0)
    y = x + rng.normal(0, 8, 20)
    rho, low, high = ca.spearman_ci(x, y, n_resamples=300)
    assert low <= rho <= high
    with pytest.raises(ValueError, match="constant"):
        ca.spearman_ci(x, np.ones(20))


def test_spearman_ci_resamples_whole_groups() -> None:
    rng = np.random.default_rng(1)
    x = np.repeat(rng.normal(size=30), 2)  # 30 images, each contributing two identical rows
    y = x + np.repeat(rng.normal(0, 1.0, 30), 2)
    groups = np.repeat(np.arange(30), 2)
    rho, low_g, high_g = ca.spearman_ci(x, y, groups=groups, n_resamples=400)
    _, low_r, high_r = ca.spearman_ci(x, y, n_resamples=400)
    # as wide as 30 independent points, not 60: duplicated rows carry no extra information
    _, low_30, high_30 = ca.spearman_ci(x[::2], y[::2], n_resamples=400)
    assert low_g <= rho <= high_g and (high_r - low_r) < 0.85 * (high_g - low_g)
    assert (high_g - low_g) == pytest.approx(high_30 - low_30, rel=0.25)
    with pytest.raises(ValueError, match="one label per pair"):
        ca.spearman_ci(x, y, groups=groups[:-1])


def test_pair_clusters_join_the_two_questions_of_one_pair() -> None:
    per_pair = pd.DataFrame({"condition": ["natural"] * 3, "query_concept": [1, 2, 1],
                             "query_colour": ["red", "blue", "red"], "other_concept": [2, 1, 3],
                             "other_colour": ["blue", "red", "green"]})
    keys = ca.pair_clusters(per_pair)
    assert keys[0] == keys[1] != keys[2]
    by_model = ca.pair_clusters(per_pair.assign(model=["a", "b", "a"]))
    assert by_model[0] != by_model[1]


# --------------------------------------------------------------------------------------------------------
# scoring
# --------------------------------------------------------------------------------------------------------


def test_scoring_shape_and_argmax(world: World, tiny: LoadedModel) -> None:
    probes = ca.build_probes(world, "weak", 3, 0)
    images = probes.query_images()
    names = list(probes.table["query"])
    logits = ca.score_colour_statements(tiny, images, names, world.palette)
    assert logits.shape == (len(probes), len(world.palette))
    # row 0 by hand: 100 · cos(image, statement) for every colour
    from cliplab.eval.features import encode_images, encode_texts

    texts = [ca.DEFAULT_TEMPLATE.format(object=names[0], color=c) for c in world.palette]
    manual = 100 * encode_images(tiny, images[:1]) @ encode_texts(tiny, texts).T
    assert torch.allclose(logits[0], manual[0], atol=1e-4)
    scored = ca.run_probes(tiny, probes)
    assert (scored.predicted.to_numpy() == np.asarray(world.palette)[logits.argmax(1).numpy()]).all()
    assert {f"logit_{c}" for c in world.palette} <= set(scored.columns)


def test_run_probes_with_a_scorer_and_errors(world: World, tiny: LoadedModel) -> None:
    probes = ca.build_probes(world, "natural", 4, 0)
    other = probes.table.other_colour.fillna(probes.table.query_colour)

    def always_other(images, object_names, palette):  # answers the other object's colour
        return torch.tensor(np.asarray([[float(c == o) for c in palette] for o in other]))

    m = ca.cab_metrics(ca.run_probes(always_other, probes))
    assert m["cab"] == 1.0 and m["single"] == 1.0
    with pytest.raises(ValueError, match="must include every colour"):
        ca.run_probes(tiny, probes, palette=["red", "blue"])
    with pytest.raises(ValueError, match="once each"):
        ca.check_template("the {object} is red")


# --------------------------------------------------------------------------------------------------------
# the VQA head
# --------------------------------------------------------------------------------------------------------


def test_resnet_image_tokens(tiny: LoadedModel) -> None:
    x = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        pooled, tokens = ca.image_tokens(tiny.model, x, resnet_stage=3)
        assert torch.allclose(pooled, tiny.model.encode_image(x), atol=1e-5)
        width = open_clip.get_model_config("cliplab-tiny")["vision_cfg"]["width"]
        assert tokens.shape == (3, 4, width * 4 * 4)  # layer3: 2×2 map of width·4·4 channels
        _, tokens2 = ca.image_tokens(tiny.model, x, resnet_stage=2)
        assert tokens2.shape == (3, 16, width * 2 * 4)  # layer2: 4×4
    with pytest.raises(ValueError, match="resnet_stage"):
        ca.image_tokens(tiny.model, x, resnet_stage=7)


def test_vit_image_tokens(tiny_vit: LoadedModel) -> None:
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        pooled, tokens = ca.image_tokens(tiny_vit.model, x)
        assert torch.allclose(pooled, tiny_vit.model.encode_image(x), atol=1e-5)
    assert tokens.shape == (2, 16, 32) and tiny_vit.model.visual.output_tokens is False


@pytest.mark.parametrize("variant", list(ca.VARIANTS))
@pytest.mark.parametrize("tower", ["resnet", "vit"])
def test_head_forward_backward(variant: str, tower: str, tiny: LoadedModel, tiny_vit: LoadedModel) -> None:
    loaded = tiny if tower == "resnet" else tiny_vit
    torch.manual_seed(0)
    head = ca.VQAHead(copy.deepcopy(loaded.model), 10, ca.VARIANTS[variant], width=32, heads=2)
    head.train()
    tokens = loaded.tokenizer(["what color is the zorp?", "what color is the blick?"])
    logits = head(torch.randn(2, 3, 32, 32), tokens)
    assert logits.shape == (2, 10)
    logits.sum().backward()
    own = [p for n, p in head.named_parameters() if not n.startswith("clip.")]
    assert all(p.grad is not None for p in own)
    clip_grads = [p.grad for p in head.clip.parameters() if p.requires_grad]
    if ca.VARIANTS[variant].unfreeze:
        assert any(g is not None and g.abs().sum() > 0 for g in clip_grads)
    else:
        assert not clip_grads


def _toy_vqa(n: int, seed: int, palette: list[str]) -> ca.VQAData:
    """Flat-coloured images whose colour is the answer: learnable from any image features."""
    from cliplab.world.colours import COLOURS

    rng = np.random.default_rng(seed)
    answers = rng.integers(len(palette), size=n)
    images = np.stack([np.broadcast_to(np.asarray(COLOURS[palette[a]], dtype=np.uint8), (32, 32, 3)) for a in answers])
    images = np.clip(images.astype(int) + rng.integers(-20, 21, images.shape), 0, 255).astype(np.uint8)
    return ca.VQAData(images, np.arange(n), ["zorp"] * n, ["what color is the zorp?"] * n, answers, palette)


def test_short_vqa_training_beats_chance_and_is_deterministic(tiny: LoadedModel) -> None:
    palette = ["red", "green", "blue", "yellow"]
    train, test = _toy_vqa(256, 0, palette), _toy_vqa(128, 1, palette)
    config = ca.VQAConfig(steps=60, batch_size=32, lr=3e-3, warmup=5, width=32, seed=0)
    before = {k: v.clone() for k, v in tiny.model.state_dict().items()}
    first = ca.train_vqa_head(tiny, train, "layers1", config)
    assert ca.vqa_accuracy(first, test) > 0.6  # chance 0.25
    second = ca.train_vqa_head(tiny, train, "layers1", config)
    assert first.history.loss.tolist() == second.history.loss.tolist()
    assert torch.equal(first.logits(test.images[:8], test.questions[:8]),
                       second.logits(test.images[:8], test.questions[:8]))
    ca.train_vqa_head(tiny, train, "pooled_unfrozen", ca.VQAConfig(steps=3, batch_size=8, warmup=1, width=32))
    assert all(torch.equal(before[k], v) for k, v in tiny.model.state_dict().items())  # caller's model untouched


def test_vqa_data_and_sweep_on_the_world(world: World, tiny: LoadedModel) -> None:
    train = ca.vqa_data(world, 40, "train")
    test = ca.vqa_data(world, 20, "test", n_objects=(2,))
    assert set(test.n_objects) == {2} and len(test) >= 20 and set(train.n_objects) <= {1, 2}
    assert all(q == ca.VQA_TEMPLATE.format(object=o) for q, o in zip(train.questions, train.objects))
    probes = ca.build_probes(world, "natural", 4, 0)
    config = ca.VQAConfig(steps=4, batch_size=8, warmup=1, width=32)
    sweep = ca.variant_sweep(tiny, train, test, probes, ["pooled", "layers1", "layers2"], [0], config)
    assert list(sweep.variant) == ["pooled", "layers1", "layers2"]
    assert sweep.cab.between(0, 1).all() and sweep.vqa_accuracy.between(0, 1).all()
    rho = ca.cab_vqa_rank_correlation(sweep)
    assert np.isnan(rho) if sweep.cab.nunique() == 1 or sweep.vqa_accuracy.nunique() == 1 else -1 <= rho <= 1
    toy = pd.DataFrame({"variant": list("abcd"), "cab": [0.1, 0.2, 0.3, 0.4], "vqa_accuracy": [0.9, 0.8, 0.5, 0.6]})
    assert ca.cab_vqa_rank_correlation(toy) == pytest.approx(-0.8)
    assert np.isnan(ca.cab_vqa_rank_correlation(toy.assign(cab=0.5)))
    assert 0 <= ca.zero_shot_vqa_accuracy(tiny, test) <= 1


def test_vqa_input_errors(tiny: LoadedModel, world: World) -> None:
    with pytest.raises(ValueError, match="unknown variant"):
        ca.train_vqa_head(tiny, ca.vqa_data(world, 5), "layers9")
    with pytest.raises(ValueError, match="resnet_stage"):
        ca.VQAConfig(resnet_stage=0)
    with pytest.raises(ValueError, match="divisible"):
        ca.VQAConfig(width=30, heads=4)


# --------------------------------------------------------------------------------------------------------
# the real path: a folder of single-object photos
# --------------------------------------------------------------------------------------------------------

PHOTO_COLOURS = {"red": (220, 30, 30), "yellow": (240, 220, 40), "purple": (120, 40, 160)}


def write_photos(root: Path) -> Path:
    """<object>/<colour>/*.png: three objects, each in two colours, drawn as a blob on white (40×30 px)."""
    for obj, colours in {"lemon": ["yellow", "purple"], "eggplant": ["purple", "red"], "cherry": ["red", "yellow"]}.items():
        for colour in colours:
            folder = root / obj / colour
            folder.mkdir(parents=True)
            for k in range(2):
                img = np.full((30, 40, 3), 255, dtype=np.uint8)
                img[5 + k:25, 8:32 - k] = PHOTO_COLOURS[colour]
                Image.fromarray(img).save(folder / f"{k}.png")
    return root


def test_compose_pair_places_images_side_by_side() -> None:
    red = np.full((30, 40, 3), PHOTO_COLOURS["red"], dtype=np.uint8)
    blue = np.full((50, 20, 3), (0, 0, 255), dtype=np.uint8)
    pair = np.asarray(ca.compose_pair(red, blue, 32))
    assert pair.shape == (32, 32, 3)
    assert (pair[16, 2] == PHOTO_COLOURS["red"]).all() and (pair[16, 24] == (0, 0, 255)).all()
    assert (pair[0, 2] == 255).all()  # letterboxed on white, aspect kept


def test_real_photo_path(tmp_path: Path, tiny: LoadedModel) -> None:
    photos = ca.read_object_photos(write_photos(tmp_path / "photos"))
    assert len(photos) == 12 and set(photos.columns) == {"path", "object", "colour"}
    probes = ca.build_photo_probes(photos, 10, seed=0, size=32)
    two = probes.table[probes.table.kind == "two"]
    assert (two["query"] != two["other"]).all() and (two.query_colour != two.other_colour).all()
    assert all(img.size == (32, 32) for img in (probes.images[i] for i in two.image_index))
    scored = ca.run_probes(tiny, probes)
    metrics = ca.cab_by(scored, "condition")
    assert list(metrics.condition) == ["photos"] and 0 <= metrics.cab.iloc[0] <= 1
    # a CSV with a condition column: pairs stay within a condition
    csv = photos.assign(condition=np.where(photos.colour == "purple", "unnatural", "natural"),
                        path=[str(Path(p).relative_to(tmp_path)) for p in photos.path])
    csv.loc[photos.object == "cherry", "condition"] = "unnatural"
    csv.to_csv(tmp_path / "photos.csv", index=False)
    table_csv = ca.read_object_photos(tmp_path / "photos.csv")
    assert Path(table_csv.path[0]).is_file()
    probes = ca.build_photo_probes(table_csv, 12, seed=1, size=32)
    lookup = table_csv.set_index(["object", "colour"]).condition.groupby(level=[0, 1]).first()
    two = probes.table[probes.table.kind == "two"]
    assert all(lookup[(q, qc)] == lookup[(o, oc)] == cond
               for q, qc, o, oc, cond in zip(two["query"], two.query_colour, two.other, two.other_colour, two.condition))


def test_real_photo_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        ca.read_object_photos(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no images"):
        ca.read_object_photos(tmp_path / "empty")
    same = pd.DataFrame({"path": ["a.png", "b.png"], "object": ["x", "x"], "colour": ["red", "blue"]})
    with pytest.raises(ValueError, match="different objects in different colours"):
        ca.build_photo_probes(same, 2, 0)


@pytest.mark.slow
def test_notebook_real_path_runs(tmp_path: Path) -> None:
    """The notebook's real path end to end: random-init cliplab-tiny, a folder of PNGs written here."""
    from cliplab.core.runner import run_paper

    photos = write_photos(tmp_path / "photos")
    result = run_paper("concept_association_bias", smoke=True, root=REPO, out=tmp_path / "out", progress=False,
                       overrides={"model": "cliplab-tiny", "colour_images": str(photos), "n_pairs": 8})
    import json

    metrics = json.loads((result.out_dir / "metrics.json").read_text())
    scope = json.loads((result.out_dir / "scope.json").read_text())
    assert "model.real.photos.cab" in metrics and "C1.cab_natural" not in metrics
    assert {"C1", "C2", "C4"} <= set(scope["untestable"])  # no 'natural' photos, no captions, no VQA heads
    assert "natural" in scope["untestable"]["C1"] or "not competent" in scope["untestable"]["C1"]
    assert (result.out_dir / "figures" / "single_two_twostar.png").is_file()


# --------------------------------------------------------------------------------------------------------
# replicate series (what the claims are scored over) and the sweep's shortcuts
# --------------------------------------------------------------------------------------------------------


def test_frozen_features_train_the_same_head_as_encoding_every_minibatch(tiny: LoadedModel) -> None:
    from cliplab.association import vqa

    palette = ["red", "green", "blue", "yellow"]
    train = _toy_vqa(96, 0, palette)
    config = ca.VQAConfig(steps=6, batch_size=16, warmup=2, width=32, seed=3)
    features = ca.encode_frozen(tiny, train, config.resnet_stage)
    assert features.image_tokens.shape[0] == len(train.images) and features.text_tokens.shape[0] == len(train)
    for name in ("pooled", "layers1"):
        cached = ca.train_vqa_head(tiny, train, name, config, features=features)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.seed)
            head = vqa.VQAHead(copy.deepcopy(tiny.model), len(palette), ca.VARIANTS[name], config.width,
                               config.heads, config.resnet_stage)
            history = vqa._fit(head, tiny, train, config)  # encodes every minibatch again
        # the same computation up to float rounding (one big encoder batch vs one per step), which Adam can
        # amplify on near-zero gradients of this random-init model: compare what the heads answer
        assert [h["loss"] for h in history] == pytest.approx(cached.history.loss.tolist(), abs=1e-4)
        with torch.no_grad():
            x = torch.stack([tiny.preprocess(Image.fromarray(img)) for img in train.images[:16]])
            tokens = tiny.tokenizer(train.questions[:16])
            assert torch.allclose(cached.head(x, tokens), head.eval()(x, tokens), atol=1e-3)
    with pytest.raises(ValueError, match="resnet_stage"):
        ca.train_vqa_head(tiny, train, "pooled", ca.VQAConfig(steps=1, batch_size=4, warmup=0, width=32,
                                                              resnet_stage=2), features=features)


@pytest.mark.slow
def test_variant_sweep_does_not_depend_on_jobs(world: World, tiny: LoadedModel) -> None:
    train, test = ca.vqa_data(world, 30, "train"), ca.vqa_data(world, 10, "test", n_objects=(2,))
    probes = ca.build_probes(world, "natural", 3, 0)
    config = ca.VQAConfig(steps=3, batch_size=8, warmup=1, width=32)
    args = (tiny, train, test, probes, ["pooled", "pooled_unfrozen"], [0, 1], config)
    serial, parallel = ca.variant_sweep(*args, jobs=1), ca.variant_sweep(*args, jobs=2)
    assert list(zip(serial.variant, serial.seed)) == [("pooled", 0), ("pooled", 1), ("pooled_unfrozen", 0),
                                                     ("pooled_unfrozen", 1)]
    pd.testing.assert_frame_equal(serial, parallel)


def _two_rows(model: str, condition: str, n_other: int, n_right: int, n_third: int) -> list[dict[str, object]]:
    """Two-object rows answered with the other colour, the right one, or a third colour, plus one control."""
    answers = ["blue"] * n_other + ["red"] * n_right + ["green"] * n_third
    rows: list[dict[str, object]] = [{"model": model, "condition": condition, "kind": "two", "query_colour": "red",
                                      "other_colour": "blue", "predicted": a} for a in answers]
    return rows + [{"model": model, "condition": condition, "kind": "single", "query_colour": "red",
                    "other_colour": None, "predicted": "red"}]


def test_model_series_gives_one_replicate_per_model_and_leaves_others_out() -> None:
    rows = []
    for model, other in (("m0", 6), ("m1", 8), ("extra", 10)):
        rows += _two_rows(model, "natural", other, 10 - other, 0)
        rows += _two_rows(model, "weak", 5, 5, 0) + _two_rows(model, "unnatural", 4, 4, 2)
    scored = pd.DataFrame(rows)
    rng = np.random.default_rng(0)
    per_pair = pd.DataFrame({"model": np.repeat(["m0", "m1", "extra"], 6), "cab": np.tile(np.linspace(0, 1, 6), 3)})
    per_pair["association"] = per_pair.cab
    per_pair["query_association"] = rng.random(len(per_pair))
    per_pair["other_association"] = per_pair.cab
    per_pair.loc[per_pair.model == "m1", "association"] *= -1  # m1: a perfectly negative ρ
    series = ca.model_series(scored, per_pair, ["m0", "m1"])
    assert series["C1.cab_natural"] == pytest.approx([0.6, 0.8])  # (1 − Two + Two*) / 2 per model
    assert series["C2.cab_natural"] == series["C1.cab_natural"]
    assert series["C2.cab_weak"] == pytest.approx([0.5, 0.5]) and series["C1.single_natural"] == [1.0, 1.0]
    assert series["C2.third_unnatural"] == pytest.approx([0.2, 0.2])
    assert series["C2.spearman_assoc"] == pytest.approx([1.0, -1.0])  # per model, never pooled into one value
    assert series["C2.spearman_assoc_other"] == pytest.approx([1.0, 1.0]) and series["C2.spearman_defined"] == [1, 1]
    assert all(len(v) == 2 for v in series.values())
    flat = ca.model_metrics(scored, per_pair, ["m0", "extra"])
    assert flat["model.extra.natural.cab"] == pytest.approx(1.0) and "model.m1.natural.cab" not in flat
    assert flat["model.m0.spearman_assoc"] == pytest.approx(1.0)
    constant = per_pair.assign(cab=0.5)
    assert ca.model_summary(scored, constant, "m0")["spearman_defined"] == 0.0
    with pytest.raises(ValueError, match="distinct"):
        ca.model_series(scored, per_pair, ["m0", "m0"])
    with pytest.raises(ValueError, match="no scored probes"):
        ca.model_series(scored, per_pair, ["missing"])


def test_head_seed_series_gives_one_rank_correlation_per_seed() -> None:
    variants = ["pooled", "layers1", "layers2"]
    rows = []
    for seed, vqa in ((0, [0.5, 0.6, 0.7]), (1, [0.7, 0.6, 0.5]), (2, [0.6, 0.6, 0.6])):
        for v, acc, cab in zip(variants, vqa, [0.6, 0.4, 0.2]):
            rows.append({"variant": v, "seed": seed, "vqa_accuracy": acc, "cab": cab, "two": 1 - cab, "two_star": cab})
    sweep = pd.DataFrame(rows)
    series = ca.head_seed_series(sweep)
    assert series["C4.spearman_cab_vqa"] == pytest.approx([-1.0, 1.0, 0.0])  # seed 2: tied accuracy, undefined
    assert series["C4.spearman_defined"] == [1.0, 1.0, 0.0]
    assert series["C4.cab_transformer_heads"] == pytest.approx([0.3, 0.3, 0.3])
    assert series["C4.vqa_pooled"] == pytest.approx([0.5, 0.7, 0.6]) and len(series["C4.cab_layers2"]) == 3
    summary = ca.head_summary(sweep)
    assert summary["C4.n_seeds"] == 3 and summary["C4.n_variants"] == 3
    assert summary["C4.vqa_min"] == pytest.approx(0.6) and summary["C4.cab_max"] == pytest.approx(0.6)
    assert ca.transformer_variants(variants) == ["layers1", "layers2"]
    with pytest.raises(ValueError, match="lacks variants"):
        ca.head_seed_series(sweep.iloc[:-1])


def test_photo_labels_with_underscores_are_said_with_spaces(tmp_path: Path) -> None:
    assert ca.object_name("coffee_cup") == "coffee cup" and ca.object_name("lemon") == "lemon"
    root = write_photos(tmp_path / "photos")
    (root / "lemon").rename(root / "sweet_lemon")
    probes = ca.build_photo_probes(ca.read_object_photos(root), 8, seed=0, size=32)
    assert "sweet lemon" in set(probes.table["query"]) and "sweet_lemon" in set(probes.table["query_concept"])
