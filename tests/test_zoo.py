"""cliplab.zoo: params validation, one tiny zoo model end to end, and its card checked independently."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import numpy as np
import open_clip
import pandas as pd
import pytest
import torch
import yaml

from cliplab.models import load_model
from cliplab.zoo import (
    CARD_JSON,
    CARD_MD,
    CONCEPTS_CSV,
    CURVE_PNG,
    ZooEntry,
    bucket_accuracy,
    frequency_bucket,
    main,
    quality_check,
    quality_line,
    read_params,
    read_zoo,
    train_zoo,
    train_zoo_model,
    training_order,
    zoo_jobs,
    zoo_model,
)
from cliplab.world import World, WorldConfig, true_frequencies

SMALL_WORLD = {"n_concepts": 24, "n_heldout": 3, "domains": ["clean", "noisy"], "max_objects": 2,
               "objects_weights": [0.7, 0.3]}


def params(**zoo_changes: Any) -> dict[str, Any]:
    zoo = {
        "eval_per_concept": 3,
        "train": {"steps": 4, "batch_size": 64, "lr": 0.002, "warmup": 1, "num_threads": 1},
        "models": [{"name": "t0", "arch": "cliplab-tiny", "corpus_size": 600, "seed": 3}],
    }
    zoo.update(zoo_changes)
    return {"world": dict(SMALL_WORLD), "zoo": zoo}


def with_model(**changes: Any) -> dict[str, Any]:
    p = params()
    p["zoo"]["models"][0].update(changes)
    return p


@pytest.mark.parametrize("bad, match", [
    ({}, "no 'zoo:' block"),
    ({"zoo": {"models": []}}, "non-empty list"),
    ({"zoo": {"models": [{"name": "a"}], "extra": 1}}, r"unknown key\(s\) \['extra'\]"),
    (with_model(arch="cliplab-huge"), "unknown arch 'cliplab-huge'"),
    (with_model(name="a/b"), "plain folder name"),
    (with_model(corpus_size=10), "smaller than batch_size"),
    (with_model(seed=-1), "seed must be an int >= 0"),
    (with_model(corpus_size=True), "corpus_size must be an int"),
    (with_model(world={"n_concepts": 1}), "bad world settings: WorldConfig: n_concepts"),
    (with_model(world={"colour": 1}), "unknown keys"),
    (with_model(train={"momentum": 0.9}), r"unknown key\(s\) \['momentum'\]"),
    (with_model(train={"lr": -1.0}), "bad train settings: lr must be > 0"),
    (with_model(train={"seed": 1}), r"unknown key\(s\) \['seed'\]"),
    ({"zoo": {"models": [{"name": "a", "arch": "cliplab-tiny", "seed": 0}]}}, r"lacks \['corpus_size'\]"),
    (params(quality_per_concept=0), "zoo.quality_per_concept must be a positive int, got 0"),
    (params(eval_per_concept=2.5), "zoo.eval_per_concept must be a positive int"),
])
def test_read_zoo_rejects_bad_params_with_clear_errors(bad: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        read_zoo(bad)


def test_read_zoo_rejects_duplicates_and_merges_train_defaults() -> None:
    p = params()
    p["zoo"]["models"].append(dict(p["zoo"]["models"][0]))
    with pytest.raises(ValueError, match="listed twice"):
        read_zoo(p)
    p = params()
    p["zoo"]["models"].append({"name": "t1", "arch": "cliplab-small", "corpus_size": 1000, "seed": 1,
                               "train": {"epochs": 2}, "world": {"zipf_exponent": 1.5}})
    first, second = read_zoo(p)
    assert first.train == {"steps": 4, "batch_size": 64, "lr": 0.002, "warmup": 1, "num_threads": 1}
    assert (first.eval_per_concept, first.quality_per_concept) == (3, 200)  # given, and the default
    assert "steps" not in second.train and second.train["epochs"] == 2
    assert second.total_steps() == 2 * (1000 // 64)  # epochs over the corpus, in whole batches
    world = second.world_config(p["world"])
    assert (world.seed, world.zipf_exponent, world.n_concepts) == (1, 1.5, 24)  # seed, override, shared block


def test_frequency_buckets_at_their_boundaries() -> None:
    assert [frequency_bucket(c) for c in (0, 1, 99, 100, 999, 1000, 10**6)] == [
        "never seen", "1-99", "1-99", "100-999", "100-999", ">=1000", ">=1000"]
    with pytest.raises(ValueError):
        frequency_bucket(-1)


def test_bucket_accuracy_pools_images_and_gives_the_wilson_interval() -> None:
    per_class = pd.DataFrame({"n": [50, 50], "correct": [48, 38], "accuracy": [0.96, 0.76]})
    got = bucket_accuracy(per_class)
    assert got["accuracy"] == pytest.approx(0.86) and got["n_concepts"] == 2 and got["n_images"] == 100
    # Wilson score interval, 86 of 100, z = 1.959964: centre (p + z²/2n)/(1 + z²/n), half-width
    # z·sqrt(p(1−p)/n + z²/4n²)/(1 + z²/n)
    z, n, p = 1.959964, 100, 0.86
    centre = (p + z**2 / (2 * n)) / (1 + z**2 / n)
    half = z * np.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / (1 + z**2 / n)
    assert got["ci95"] == pytest.approx([centre - half, centre + half], abs=1e-6)
    assert got["ci95"][1] > 0.9  # 86 % on 100 images cannot tell a model from one at 90 %


def independent_zero_shot(folder: Path, world: World, per_concept: int, domain: str) -> np.ndarray:
    """Per-concept top-1 computed with plain open_clip from the saved folder (no cliplab eval code)."""
    return per_concept_accuracy(*independent_predictions(folder, world, per_concept, domain), len(world.concepts))


def per_concept_accuracy(pred: np.ndarray, labels: np.ndarray, n_concepts: int) -> np.ndarray:
    return np.array([np.mean(pred[labels == c] == c) for c in range(n_concepts)])


def independent_predictions(folder: Path, world: World, per_concept: int, domain: str) -> tuple[np.ndarray, np.ndarray]:
    """Predicted and true concept of every eval image, with plain open_clip from the saved folder."""
    model, _, _ = open_clip.create_model_and_transforms(f"local-dir:{folder}")
    tokenizer = open_clip.get_tokenizer(f"local-dir:{folder}")
    model.eval()
    names = [c.name for c in world.concepts]
    with torch.no_grad():
        per_colour = [model.encode_text(tokenizer([f"a {col} {n}" for n in names]), normalize=True)
                      for col in world.palette]
        classes = torch.nn.functional.normalize(torch.stack(per_colour).mean(0), dim=-1)
        samples = world.eval_set(per_concept, domain=domain)
        x = torch.tensor(np.stack([s.image for s in samples])).permute(0, 3, 1, 2).float() / 255
        mean = torch.tensor(open_clip.OPENAI_DATASET_MEAN).view(1, 3, 1, 1)
        std = torch.tensor(open_clip.OPENAI_DATASET_STD).view(1, 3, 1, 1)
        pred = (model.encode_image((x - mean) / std, normalize=True) @ classes.T).argmax(1).numpy()
    return pred, np.array([s.meta["objects"][0]["concept"] for s in samples])


def test_tiny_zoo_model_trains_writes_a_complete_card_and_loads_back(tmp_path: Path) -> None:
    p = params()
    (entry,) = read_zoo(p)
    folder = train_zoo_model(entry, tmp_path, p["world"])
    assert folder == tmp_path / "t0"
    for name in (CARD_JSON, CARD_MD, CURVE_PNG, CONCEPTS_CSV):
        assert (folder / name).is_file(), name
    card = json.loads((folder / CARD_JSON).read_text())
    for key in ("name", "arch", "seed", "world", "data", "train", "throughput", "eval", "zero_shot_top1",
                "zero_shot_by_bucket"):
        assert key in card, key
    assert set(card["zero_shot_top1"]) == {"clean", "noisy"}
    assert card["throughput"]["samples_per_s"] > 0 and card["train"]["total_steps"] == 4
    assert card["world"]["seed"] == 3 and card["world"]["n_concepts"] == 24

    loaded = load_model("zoo:t0", zoo_dir=tmp_path)
    assert not loaded.model.training

    # frequencies: recomputed from scene draws alone (no rendering) must equal the card's table
    world = World(WorldConfig.from_dict({**p["world"], "seed": 3}))
    table = pd.read_csv(folder / CONCEPTS_CSV)
    truth = true_frequencies(world, 600)
    assert table["matched_count"].tolist() == truth["matched_count"].tolist()
    assert table.loc[table["heldout"], "matched_count"].eq(0).all()

    # accuracies: recomputed with plain open_clip from the checkpoint must equal card and table
    for domain in ("clean", "noisy"):
        acc = independent_zero_shot(folder, world, 3, domain)
        np.testing.assert_allclose(table[f"acc_{domain}"].to_numpy(), acc)
        assert card["zero_shot_top1"][domain] == pytest.approx(acc.mean())
        for label, bucket in card["zero_shot_by_bucket"][domain].items():
            members = table["bucket"] == label
            assert bucket["n_concepts"] == members.sum()
            assert bucket["accuracy"] == pytest.approx(acc[members.to_numpy()].mean())
            assert bucket["n_images"] == 3 * members.sum()
            low, high = bucket["ci95"]
            assert 0 <= low <= bucket["accuracy"] <= high <= 1 and high - low > 0

    # the quality bar: no concept of this 600-sample corpus is seen >= 1000 times, so it is not measured ...
    assert card["quality"]["n_concepts"] == 0 and card["quality"]["accuracy"] is None
    assert card["quality"]["met"] is None and "not measured" in (folder / CARD_MD).read_text()
    # ... and on a bucket that has concepts it equals the independent 24-way accuracy over those concepts
    pred, labels = independent_predictions(folder, world, 4, "clean")
    clean = per_concept_accuracy(pred, labels, len(world.concepts))
    for label in ("1-99", "100-999"):
        members = (table["bucket"] == label).to_numpy()
        for target in (0.0, 1.01):
            q = quality_check(loaded, world, table, 4, bucket=label, target=target)
            assert q["n_concepts"] == members.sum() > 0 and q["n_images"] == 4 * members.sum()
            assert q["accuracy"] == pytest.approx(clean[members].mean())
            assert q["met"] is (target == 0.0)
            assert q["ci95"][0] <= q["accuracy"] <= q["ci95"][1]
            assert list(q["per_concept_accuracy"].values()) == pytest.approx(clean[members].tolist())
            for c in np.flatnonzero(members):  # the most frequent wrong class, counted here from scratch
                wrong = [int(p) for p in pred[labels == c] if p != c]
                confusion = q["top_confusion"][world.concept(int(c)).name]
                if not wrong:
                    assert confusion is None
                    continue
                counts = {k: wrong.count(k) for k in set(wrong)}
                top = min(counts, key=lambda k: (-counts[k], k))
                assert confusion == {"predicted": world.concept(top).name, "share": counts[top] / 4}

    # the card line names exactly the concepts under the target on their own, each with the class it is taken for
    q = quality_check(loaded, world, table, 4, bucket="100-999", target=0.6)
    below = {n for n, acc in q["per_concept_accuracy"].items() if acc < 0.6}
    assert below  # the test model is weak: some concept of the bucket is below 0.6
    line = quality_line(q)
    listed = line.split("; concepts under 0.60 on their own: ")[1].split(", ") if below else []
    assert {part.split(" ")[0] for part in listed} == below
    for part in listed:
        confusion = q["top_confusion"][part.split(" ")[0]]
        assert confusion is None or f"(→ {confusion['predicted']} " in part

    # a second call reuses the checkpoint (same weights) and rewrites the same numbers
    before = (folder / "open_clip_model.safetensors").read_bytes()
    train_zoo_model(entry, tmp_path, p["world"])
    assert (folder / "open_clip_model.safetensors").read_bytes() == before
    assert json.loads((folder / CARD_JSON).read_text())["zero_shot_top1"] == card["zero_shot_top1"]


def test_cli_lists_the_zoo_and_refuses_unknown_models(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params()))
    assert main(["--params", str(path), "--zoo-dir", str(tmp_path / "zoo"), "list"]) == 0
    out = capsys.readouterr().out
    assert "t0" in out and "not trained" in out and "4 steps" in out
    with pytest.raises(SystemExit):
        main(["--params", str(path), "--zoo-dir", str(tmp_path / "zoo"), "train", "nope"])
    assert "unknown zoo model" in capsys.readouterr().err


def test_entry_rejects_non_entries(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="ZooEntry"):
        train_zoo_model(copy.deepcopy(params()), tmp_path)  # type: ignore[arg-type]
    assert isinstance(read_zoo(params())[0], ZooEntry)


def with_smoke(**smoke: Any) -> dict[str, Any]:
    p = params()
    p["zoo"]["models"][0]["train"] = {"lr": 0.001, "steps": 99}
    p["zoo"]["smoke"] = {"corpus_size": 128, "world": {"n_concepts": 8, "n_heldout": 1},
                         "train": {"steps": 2}, "eval_per_concept": 1, **smoke}
    return p


def test_smoke_zoo_shrinks_every_model_but_keeps_names_seeds_and_archs() -> None:
    p = with_smoke()
    (full,) = read_zoo(p)
    (smoke,) = read_zoo(p, smoke=True)
    assert (smoke.name, smoke.arch, smoke.seed) == (full.name, full.arch, full.seed)
    assert (full.corpus_size, full.total_steps(), full.train["lr"]) == (600, 99, 0.001)
    assert (smoke.corpus_size, smoke.total_steps(), smoke.eval_per_concept) == (128, 2, 1)
    assert read_zoo(with_smoke(quality_per_concept=7), smoke=True)[0].quality_per_concept == 7
    with pytest.raises(ValueError, match="zoo.smoke.quality_per_concept must be a positive int"):
        read_zoo(with_smoke(quality_per_concept=-1), smoke=True)
    assert smoke.train["lr"] == 0.001  # what the smoke block does not set stays as the model defines it
    assert smoke.world_config(p["world"]).n_concepts == 8 and full.world_config(p["world"]).n_concepts == 24
    with pytest.raises(ValueError, match="no 'zoo.smoke:' block"):
        read_zoo(params(), smoke=True)
    with pytest.raises(ValueError, match=r"zoo.smoke: unknown key\(s\) \['seed'\]"):
        read_zoo(with_smoke(seed=1), smoke=True)


def test_zoo_model_refuses_an_untrained_default_model_and_trains_smoke_ones(tmp_path: Path) -> None:
    p = with_smoke()
    with pytest.raises(FileNotFoundError, match="is not trained.*cliplab zoo train t0"):
        zoo_model("t0", params=p, zoo_dir=tmp_path / "zoo")
    with pytest.raises(ValueError, match="not a zoo model"):
        zoo_model("t9", smoke=True, params=p, zoo_dir=tmp_path / "zoo")
    m = zoo_model("t0", smoke=True, params=p, zoo_dir=tmp_path / "zoo")
    assert m.folder == tmp_path / "zoo-smoke" / "t0" and not (tmp_path / "zoo").exists()
    assert m.card["train"]["total_steps"] == 2 and len(m.concepts) == 8 and len(m.world.concepts) == 8
    assert m.world.config.seed == 3

    # params.yaml changed: the stored smoke model is stale and is retrained; a default one would be refused
    changed = with_smoke(train={"steps": 3})
    assert zoo_model("t0", smoke=True, params=changed, zoo_dir=tmp_path / "zoo").card["train"]["total_steps"] == 3
    train_zoo_model(read_zoo(p, smoke=True)[0], tmp_path / "other", p["world"])
    with pytest.raises(FileNotFoundError, match="other settings"):
        zoo_model("t0", params={**changed, "zoo": {**changed["zoo"], "models": [
            {**changed["zoo"]["models"][0], "corpus_size": 128, "world": {"n_concepts": 8, "n_heldout": 1}}]}},
                  zoo_dir=tmp_path / "other")


def test_two_jobs_train_the_same_models_as_one_after_another(tmp_path: Path) -> None:
    """jobs only changes how the zoo runs: each model's bits depend on its own num_threads, not on its neighbours."""
    p = params(models=[{"name": "t0", "arch": "cliplab-tiny", "corpus_size": 128, "seed": 3},
                       {"name": "t1", "arch": "cliplab-tiny", "corpus_size": 128, "seed": 4}], eval_per_concept=1)
    p["zoo"]["train"]["steps"] = 2
    entries = read_zoo(p)
    serial = train_zoo(entries, tmp_path / "serial", p["world"], jobs=1)
    parallel = train_zoo(entries, tmp_path / "parallel", p["world"], jobs=2)
    assert list(parallel) == ["t0", "t1"] and parallel["t1"] == tmp_path / "parallel" / "t1"
    for name in ("t0", "t1"):
        a = (serial[name] / "open_clip_model.safetensors").read_bytes()
        assert (parallel[name] / "open_clip_model.safetensors").read_bytes() == a, name
    with pytest.raises(ValueError, match="jobs"):
        train_zoo(entries, tmp_path / "x", p["world"], jobs=0)
    with pytest.raises(ValueError, match="zoo.jobs"):
        zoo_jobs(params(jobs=0))
    with pytest.raises(ValueError, match="zoo.jobs"):
        read_zoo(params(jobs="2"))  # validated with the rest of the block, before anything trains
    assert zoo_jobs(params()) == 1 and zoo_jobs(params(jobs=2)) == 2


def test_training_order_starts_the_most_expensive_model() -> None:
    entries = read_zoo(read_params())
    order = [e.name for e in training_order(entries)]
    assert sorted(order) == sorted(e.name for e in entries)
    # widest vision first; ties keep their order
    assert order == ["small-s0", "tiny-s0", "tiny-s1", "tiny-s2", "tiny-s3", "tiny-s4", "tiny-c15k-s0"]


def test_the_thread_count_is_part_of_a_models_identity(tmp_path: Path) -> None:
    p = params()
    p["zoo"]["train"]["steps"] = 2
    p["zoo"]["models"][0]["corpus_size"] = 128
    folder = train_zoo_model(read_zoo(p)[0], tmp_path, p["world"])
    before = (folder / "open_clip_model.safetensors").read_bytes()
    assert zoo_model("t0", params=p, zoo_dir=tmp_path).card["train"]["num_threads"] == 1  # as trained: accepted
    p["zoo"]["train"]["num_threads"] = 2
    with pytest.raises(FileNotFoundError, match="other settings"):
        zoo_model("t0", params=p, zoo_dir=tmp_path)
    train_zoo_model(read_zoo(p)[0], tmp_path, p["world"])  # retrains instead of reusing the 1-thread weights
    card = json.loads((folder / CARD_JSON).read_text())
    assert card["train"]["num_threads"] == 2 and card["throughput"]["num_threads"] == 2
    assert (folder / "open_clip_model.safetensors").read_bytes() != before


def test_plotting_a_training_curve_leaves_the_matplotlib_backend_alone(tmp_path: Path) -> None:
    """A notebook that trains a smoke model on the spot must still show its own figures afterwards."""
    import matplotlib
    import pandas as pd
    from cliplab.zoo import plot_training_curve

    before = matplotlib.get_backend()
    matplotlib.use("svg")  # stands in for Lab's inline backend: anything but Agg
    try:
        history = pd.DataFrame({"step": [1, 2, 3], "loss": [2.0, 1.5, 1.2], "logit_scale": [14.0, 15.0, 16.0]})
        out = plot_training_curve(history, tmp_path / "curve.png", "t")
        assert out.stat().st_size > 1000 and matplotlib.get_backend() == "svg"
    finally:
        matplotlib.use(before)
