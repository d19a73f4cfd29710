"""cliplab.frequency: phrase matching, world ground truth, readers and bad rows, taggers, matched counts, Dask.

Expectations are independent of the engine: hand-written cases, a naive token-window matcher, the world's
own metadata (which concepts each caption mentions and each scene contains), and set algebra on metas.
"""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import fsspec
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from cliplab.frequency import (
    BadRows,
    ClipTagger,
    ConceptSet,
    GroundTruthTagger,
    Hits,
    PhraseMatcher,
    Tagger,
    count_captions,
    count_corpus,
    matched_counts,
    misaligned,
    misalignment_degree,
)
from cliplab.world import World, WorldConfig, read_index, true_frequencies, write_shards


def counts_of(captions: list[str], concepts: ConceptSet | list[str]) -> dict[str, int]:
    table = count_captions(captions, concepts)
    return dict(zip(table["name"], table["text_count"].tolist()))


# ----------------------------------------------------------------------------------------- text matching
def test_multiword_names_match_only_the_whole_phrase_in_order() -> None:
    captions = ["a great white shark", "white shark great", "great white", "a great shark, white",
                "Great-White SHARK!", "great white great white shark"]
    got = counts_of(captions, ["great white shark"])
    assert got == {"great white shark": 3}  # captions 0, 4, 5


def test_case_and_lemma_insensitive() -> None:
    got = counts_of(["Sharks everywhere", "one SHARK", "two mice", "a Mouse"], ["shark", "Mice", "sharks"])
    assert got == {"shark": 2, "Mice": 2, "sharks": 2}


def test_synonyms_count_once_per_caption() -> None:
    concepts = ConceptSet(["automobile", "shark"], synonyms={"automobile": ["car", "motor vehicle"]})
    captions = ["a car", "a motor vehicle and a car", "an automobile", "a motor", "a vehicle", "a shark car"]
    got = counts_of(captions, concepts)
    assert got == {"automobile": 4, "shark": 1}


def test_each_concept_counts_at_most_once_per_caption() -> None:
    got = counts_of(["shark shark shark", "sharks and a shark", "no"], ["shark"])
    assert got == {"shark": 2}


def test_overlapping_and_nested_phrases_all_count() -> None:
    concepts = ["shark", "white shark", "great white shark", "great"]
    got = counts_of(["a great white shark", "white sharks", "great"], concepts)
    assert got == {"shark": 2, "white shark": 2, "great white shark": 1, "great": 2}


def _naive_counts(captions: list[list[str]], phrases: list[tuple[str, ...]]) -> np.ndarray:
    out = np.zeros(len(phrases), dtype=np.int64)
    for words in captions:
        for c, ph in enumerate(phrases):
            n = len(ph)
            if any(tuple(words[i:i + n]) == ph for i in range(len(words) - n + 1)):
                out[c] += 1
    return out


def test_random_phrases_agree_with_a_naive_window_matcher() -> None:
    rng = np.random.default_rng(7)
    vocab = [f"w{i}" for i in range(12)]
    phrases = sorted({tuple(rng.choice(vocab, size=int(rng.integers(1, 5)))) for _ in range(60)})
    token_lists = [list(rng.choice(vocab, size=int(rng.integers(0, 15)))) for _ in range(3000)]
    captions = [" ".join(t) for t in token_lists]
    concepts = ConceptSet([" ".join(p) for p in phrases], lemmas="none")
    got = PhraseMatcher(concepts).count(captions)
    np.testing.assert_array_equal(got, _naive_counts(token_lists, phrases))


def test_chunking_does_not_change_counts() -> None:
    rng = np.random.default_rng(1)
    vocab = ["a", "b", "c", "d"]
    captions = [" ".join(rng.choice(vocab, size=int(rng.integers(1, 6)))) for _ in range(500)]
    concepts = ConceptSet(["a b", "c", "d a b"], lemmas="none")
    table = pa.table({"caption": captions})
    small = count_corpus(table, concepts, chunk_size=7, keep_hits=True)
    large = count_corpus(table, concepts, chunk_size=10_000, keep_hits=True)
    pd.testing.assert_frame_equal(small.counts, large.counts)
    assert (small.hits.matrix != large.hits.matrix).nnz == 0


# ----------------------------------------------------------------------------------------- world ground truth
@pytest.mark.parametrize("misalignment", [0.0, 0.3])
def test_text_image_matched_counts_equal_world_metadata(misalignment: float) -> None:
    world = World(WorldConfig(seed=3, misalignment=misalignment))
    n = 4000
    draws = [world.draw(i) for i in range(n)]
    frame = pd.DataFrame({"caption": [d.caption for d in draws], "index": [d.meta["index"] for d in draws]})
    concepts = ConceptSet.from_world(world)
    text = count_corpus(frame, concepts, key_column="index", keep_hits=True)
    image = GroundTruthTagger(world, concepts).tag_range(n)
    table = matched_counts(text.hits, image)
    truth = true_frequencies(world, n)
    np.testing.assert_array_equal(text.counts["text_count"], truth["text_count"])
    np.testing.assert_array_equal(table["text_count"], truth["text_count"])
    np.testing.assert_array_equal(table["image_count"], truth["image_count"])
    np.testing.assert_array_equal(table["matched_count"], truth["matched_count"])
    # misalignment from the metadata, by the card's definition
    expected = sum(not (set(d.meta["caption_concepts"]) & {o["concept"] for o in d.meta["objects"]})
                   for d in draws)
    result = misalignment_degree(text.hits, image)
    assert result.n_misaligned == expected
    assert result.degree == pytest.approx(expected / n)
    if misalignment == 0.0:
        assert expected == 0
    else:
        assert 0.15 * n < expected < 0.35 * n


def test_world_webdataset_shards_and_index(tmp_path: Path) -> None:
    world = World(WorldConfig(seed=1, misalignment=0.2))
    shards = write_shards(world, 60, tmp_path / "train", shard_size=25)
    concepts = ConceptSet.from_world(world)
    from_tars = count_corpus(sorted(str(s) for s in shards), concepts, keep_hits=True)
    from_index = count_corpus(tmp_path / "train" / "index.parquet", concepts, key_column="key", keep_hits=True)
    truth = true_frequencies(world, 60)
    np.testing.assert_array_equal(from_tars.counts["text_count"], truth["text_count"])
    np.testing.assert_array_equal(from_index.counts["text_count"], truth["text_count"])
    assert list(from_tars.hits.keys) == list(from_index.hits.keys) == [f"train-{i:010d}" for i in range(60)]
    assert from_tars.n_parts == 3 and from_tars.bad_rows.count == 0
    tagger = GroundTruthTagger(world, concepts)
    assert isinstance(tagger, Tagger)
    image = tagger.tag_index(read_index(tmp_path / "train"), key_column="key")
    table = matched_counts(from_tars.hits, image)
    np.testing.assert_array_equal(table["image_count"], truth["image_count"])
    np.testing.assert_array_equal(table["matched_count"], truth["matched_count"])


# ----------------------------------------------------------------------------------------- readers
CAPTIONS = ["a great white shark", "Sharks!", "white shark great", "a cat, a mouse", "shark; mice; cats",
            "the great white shark ate a cat", "nothing here"]
NAMES = ["shark", "great white shark", "mouse", "cat"]


def _write_all_formats(fs: fsspec.AbstractFileSystem, root: str, captions: list[str]) -> dict[str, str]:
    keys = [f"k{i:03d}" for i in range(len(captions))]
    paths = {f: f"{root}/corpus.{ext}" for f, ext in
             [("parquet", "parquet"), ("csv", "csv"), ("tsv", "tsv"), ("webdataset", "tar")]}
    with fs.open(paths["parquet"], "wb") as fh:
        pq.write_table(pa.table({"caption": captions, "id": keys}), fh, row_group_size=3)
    with fs.open(paths["csv"], "wb") as fh:
        fh.write(pd.DataFrame({"caption": captions, "id": keys}).to_csv(index=False).encode())
    with fs.open(paths["tsv"], "wb") as fh:
        fh.write(("caption\tid\n" + "".join(f"{c}\t{k}\n" for c, k in zip(captions, keys))).encode())
    with fs.open(paths["webdataset"], "wb") as fh:
        fh.write(_tar([(k, c.encode()) for k, c in zip(keys, captions)]))
    return paths


def _tar(samples: list[tuple[str, bytes | None]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for key, text in samples:
            members = [("jpg", b"\xff\xd8fake")] + ([] if text is None else [("txt", text)])
            for ext, data in members:
                info = tarfile.TarInfo(f"{key}.{ext}")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@pytest.mark.parametrize("protocol", ["memory", "file"])
def test_every_format_gives_the_same_counts(protocol: str, tmp_path: Path) -> None:
    if protocol == "memory":
        fs, root = fsspec.filesystem("memory"), f"/freq-{id(tmp_path)}"
        prefix = "memory://"
    else:
        fs, root, prefix = fsspec.filesystem("file"), str(tmp_path), "file://"
    paths = _write_all_formats(fs, root, CAPTIONS)
    expected = {"shark": 5, "great white shark": 2, "mouse": 2, "cat": 3}
    for fmt, path in paths.items():
        result = count_corpus(prefix + path, NAMES, key_column=None if fmt == "webdataset" else "id",
                              keep_hits=True)
        assert dict(zip(result.counts["name"], result.counts["text_count"])) == expected, fmt
        assert list(result.hits.keys) == [f"k{i:03d}" for i in range(len(CAPTIONS))], fmt
        assert result.bad_rows.count == 0 and result.n_captions == len(CAPTIONS)


def test_headerless_tsv_and_csv_are_read_by_field_position(tmp_path: Path) -> None:
    """CC-3M ships its captions as a header-less ``caption<TAB>url`` TSV: column=0 reads it."""
    urls = [f"http://x/{i}.jpg" for i in range(len(CAPTIONS))]
    (tmp_path / "cc.tsv").write_text("".join(f"{c}\t{u}\n" for c, u in zip(CAPTIONS, urls)))
    (tmp_path / "cc.csv").write_text("".join(f'{u},"{c}"\n' for c, u in zip(CAPTIONS, urls)))
    expected = {"shark": 5, "great white shark": 2, "mouse": 2, "cat": 3}
    for name, column, key in (("cc.tsv", 0, 1), ("cc.csv", 1, 0)):
        result = count_corpus(tmp_path / name, NAMES, column=column, key_column=key, keep_hits=True)
        assert dict(zip(result.counts["name"], result.counts["text_count"])) == expected, name
        assert result.n_captions == len(CAPTIONS)  # the first line is data, not a header
        assert list(result.hits.keys)[:2] == urls[:2]
    with pytest.raises(ValueError, match="2 fields per line"):
        count_corpus(tmp_path / "cc.tsv", NAMES, column=2)
    with pytest.raises(ValueError, match="mix a name and a position"):
        count_corpus(tmp_path / "cc.tsv", NAMES, column=0, key_column="id")
    pq.write_table(pa.table({"caption": CAPTIONS}), tmp_path / "p.parquet")
    with pytest.raises(ValueError, match="header-less CSV/TSV"):
        count_corpus(tmp_path / "p.parquet", NAMES, column=0)


def test_malformed_rows_are_counted_and_good_rows_unaffected(tmp_path: Path) -> None:
    good = CAPTIONS * 3
    clean = count_corpus(pa.table({"caption": good}), NAMES).counts
    # CSV: wrong field counts, an empty caption, invalid UTF-8 — interleaved with the good rows
    lines = [b"caption,id"]
    for i, c in enumerate(good):
        lines.append(f'"{c}",{i}'.encode())
        if i % 5 == 0:
            lines.append(b"too,many,fields,here")
        if i % 7 == 0:
            lines.append(b",missing")
    lines.append(b'"bad \xff\xfe shark",99')
    (tmp_path / "c.csv").write_bytes(b"\n".join(lines) + b"\n")
    n_bad = sum(1 for i in range(len(good)) if i % 5 == 0) + sum(1 for i in range(len(good)) if i % 7 == 0) + 1
    result = count_corpus(tmp_path / "c.csv", NAMES, key_column="id", max_examples=3)
    pd.testing.assert_frame_equal(result.counts, clean)
    assert result.n_captions == len(good)
    assert result.bad_rows.count == n_bad
    assert result.bad_rows.by_reason["invalid UTF-8"] == 1
    assert result.bad_rows.by_reason["missing caption"] == sum(1 for i in range(len(good)) if i % 7 == 0)
    assert len(result.bad_rows.examples) == 3 and "4 fields, expected 2" in str(result.bad_rows)
    # parquet with null and blank captions; webdataset with a caption-less sample
    pq.write_table(pa.table({"caption": [None, *good[:10], "   ", *good[10:]]}), tmp_path / "p.parquet")
    result = count_corpus(tmp_path / "p.parquet", NAMES)
    pd.testing.assert_frame_equal(result.counts, clean)
    assert result.bad_rows.by_reason == {"missing caption": 1, "empty caption": 1}
    samples = [(f"s{i}", c.encode()) for i, c in enumerate(good)]
    samples.insert(4, ("nocap", None))
    (tmp_path / "w.tar").write_bytes(_tar(samples))
    result = count_corpus(tmp_path / "w.tar", NAMES)
    pd.testing.assert_frame_equal(result.counts, clean)
    assert result.bad_rows.count == 1 and "nocap" in result.bad_rows.examples[0].where


def test_truncated_shard_is_reported_not_fatal(tmp_path: Path) -> None:
    data = _tar([(f"s{i}", c.encode()) for i, c in enumerate(CAPTIONS)])
    (tmp_path / "ok.tar").write_bytes(data)
    (tmp_path / "cut.tar").write_bytes(data[:2048 + 700])  # inside the third member's header/data
    ok = count_corpus(tmp_path / "ok.tar", NAMES)
    cut = count_corpus([tmp_path / "ok.tar", tmp_path / "cut.tar"], NAMES, keep_hits=True)
    assert cut.bad_rows.by_reason == {"truncated or corrupt shard": 1}
    # the cut shard's complete samples still count; the run carries on
    assert cut.n_captions == ok.n_captions + 1
    assert list(cut.hits.keys[-1:]) == ["s0"]
    # cut exactly at a member boundary: tarfile stops silently, the missing end-of-archive marker gives it away
    (tmp_path / "cut.tar").write_bytes(data[:2048])
    cut = count_corpus(tmp_path / "cut.tar", NAMES)
    assert cut.bad_rows.by_reason == {"truncated or corrupt shard": 1}
    assert "end-of-archive" in cut.bad_rows.examples[0].text


def test_bad_input_is_rejected_before_work(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="non-empty"):
        ConceptSet([])
    with pytest.raises(ValueError, match="unique"):
        ConceptSet(["a", "a"])
    with pytest.raises(ValueError, match="no words"):
        ConceptSet(["!!!"])
    with pytest.raises(ValueError, match="synonyms given"):
        ConceptSet(["a"], synonyms={"b": ["c"]})
    with pytest.raises(FileNotFoundError):
        count_corpus(tmp_path / "missing.parquet", ["a"])
    pq.write_table(pa.table({"text": ["a"]}), tmp_path / "x.parquet")
    with pytest.raises(ValueError, match="lacks columns"):
        count_corpus(tmp_path / "x.parquet", ["a"])
    (tmp_path / "x.json").write_text("{}")
    with pytest.raises(ValueError, match="format"):
        count_corpus(tmp_path / "x.json", ["a"])
    with pytest.raises(ValueError, match="scheduler"):
        count_corpus(tmp_path / "x.parquet", ["a"], column="text", scheduler="fast")


# ----------------------------------------------------------------------------------------- taggers, matched
class CountingScorer:
    """Deterministic fake scorer: score[i, c] from a seeded table indexed by the image's id."""

    def __init__(self, n_concepts: int) -> None:
        self.table = np.random.default_rng(0).random((1000, n_concepts)).astype(np.float32)
        self.calls = 0

    def __call__(self, images: np.ndarray) -> np.ndarray:
        self.calls += 1
        return self.table[np.asarray(images)]


def test_clip_tagger_rethresholds_stored_scores_without_rescoring() -> None:
    concepts = ConceptSet(["a", "b", "c", "d"])
    scorer = CountingScorer(len(concepts))
    tagger = ClipTagger(scorer, concepts, threshold=0.7, batch_size=64)
    ids = np.arange(300)
    first = tagger.tag(ids[:200])
    tagger.tag(ids[200:], keys=[f"x{i}" for i in ids[200:]])
    calls = scorer.calls
    assert calls == 6  # 200 images → 4 batches of ≤ 64, then 100 → 2
    assert first.counts().tolist() == (scorer.table[:200] > 0.7).sum(axis=0).tolist()
    for t in (0.2, 0.5, 0.9):
        hits = tagger.hits(t)
        np.testing.assert_array_equal(hits.matrix.toarray(), scorer.table[:300] > t)
    assert scorer.calls == calls + 0
    assert tagger.scores.shape == (300, 4) and list(tagger.hits().keys[:2]) == [0, 1]
    assert tagger.hits().keys[-1] == "x299"
    with pytest.raises(ValueError, match="shape"):
        ClipTagger(lambda x: np.zeros((len(x), 3)), concepts).tag(ids[:5])


def test_clip_scorer_on_a_random_tiny_model() -> None:
    torch = pytest.importorskip("torch")
    torch.set_num_threads(2)
    from cliplab.frequency import clip_scorer
    from cliplab.models import load_model

    loaded = load_model("cliplab-tiny", None, seed=0)
    concepts = ConceptSet(["blick", "zorp", "mip"])
    images = np.random.default_rng(0).integers(0, 256, (6, 32, 32, 3), dtype=np.uint8)
    probs = clip_scorer(loaded, concepts)(images)
    assert probs.shape == (6, 3)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    cosine = clip_scorer(loaded, concepts, kind="cosine")(images)
    assert np.all(np.abs(cosine) <= 1.0 + 1e-5)
    np.testing.assert_array_equal(np.argmax(probs, axis=1), np.argmax(cosine, axis=1))


def test_misalignment_degree_on_a_constructed_example() -> None:
    names = ["a", "b", "c"]
    # pairs: aligned, misaligned, no text concept, no image concept, partial overlap, misaligned
    text = Hits.from_dense(np.array([[1, 0, 0], [1, 0, 0], [0, 0, 0], [0, 1, 0], [1, 1, 0], [0, 0, 1]]), names,
                           keys=["p0", "p1", "p2", "p3", "p4", "p5"])
    image = Hits.from_dense(np.array([[1, 0, 0], [0, 1, 1], [1, 0, 0], [0, 0, 0], [0, 1, 1], [1, 1, 0]]), names,
                            keys=["p0", "p1", "p2", "p3", "p4", "p5"])
    assert misaligned(text, image).tolist() == [False, True, False, False, False, True]
    result = misalignment_degree(text, image)
    assert (result.n_misaligned, result.n_pairs, result.degree) == (2, 6, pytest.approx(2 / 6))
    assert misalignment_degree(text, image, dataset_size=100).degree == pytest.approx(0.02)
    counts = matched_counts(text, image)
    assert counts["matched_count"].tolist() == [1, 1, 0]
    # alignment is by key, not position
    shuffled = image.select(np.array([5, 4, 3, 2, 1, 0]))
    assert matched_counts(text, shuffled)["matched_count"].tolist() == [1, 1, 0]
    with pytest.raises(ValueError, match="different samples"):
        matched_counts(text, image.select(np.array([0, 1, 2])))


# ----------------------------------------------------------------------------------------- Dask
def test_dask_local_cluster_gives_identical_counts(tmp_path: Path) -> None:
    distributed = pytest.importorskip("distributed")
    world = World(WorldConfig(seed=5, misalignment=0.1))
    concepts = ConceptSet.from_world(world)
    paths = []
    for p in range(4):
        captions = [world.draw(i).caption for i in range(p * 500, (p + 1) * 500)]
        captions[p] = None  # one malformed row per file
        path = tmp_path / f"part-{p}.parquet"
        pq.write_table(pa.table({"caption": captions}), path, row_group_size=200)
        paths.append(str(path))
    local = count_corpus(paths, concepts, keep_hits=True, rows_per_part=200, chunk_size=150)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None) as cluster:
        remote = count_corpus(paths, concepts, keep_hits=True, rows_per_part=200, chunk_size=150,
                              scheduler=cluster.scheduler_address)
    assert cluster.scheduler_address.startswith("tcp://127.0.0.1:")
    pd.testing.assert_frame_equal(local.counts, remote.counts)
    assert local.n_parts == remote.n_parts == 12
    assert (local.hits.matrix != remote.hits.matrix).nnz == 0
    np.testing.assert_array_equal(local.hits.keys, remote.hits.keys)
    assert remote.bad_rows.count == local.bad_rows.count == 4
    truth = true_frequencies(world, 2000)["text_count"].to_numpy()
    assert int(np.abs(truth - local.counts["text_count"].to_numpy()).sum()) <= 4 * 3  # ≤ 3 names per dropped row


# ----------------------------------------------------------------------------------------- reference
def test_reference_pipeline_agrees_on_single_words_and_shows_unigram_defect() -> None:
    pytest.importorskip("spacy")
    pytest.importorskip("spacy_lookups_data")
    from cliplab.frequency.reference import reference_counts

    world = World(WorldConfig(seed=2))
    captions = [world.draw(i).caption for i in range(1500)] + ["two sharks", "the mice", "white shark great"]
    names = [c.name for c in world.concepts] + ["shark", "mouse", "great white shark"]
    ours = count_captions(captions, names)["text_count"].to_numpy()
    ref = reference_counts(captions, names)
    np.testing.assert_array_equal(ours[:-1], ref[:-1])  # every single-word concept agrees
    assert (ours[-1], ref[-1]) == (0, 1)  # the reference's unigram intersection counts a scrambled phrase


def test_bad_rows_report_merges_with_a_cap_on_examples() -> None:
    a, b = BadRows(max_examples=2), BadRows(max_examples=2)
    for i in range(3):
        a.add(f"a{i}", "x")
        b.add(f"b{i}", "y")
    a.merge(b)
    assert a.count == 6 and a.by_reason == {"x": 3, "y": 3} and [e.where for e in a.examples] == ["a0", "a1"]


def test_local_scheduler_starts_and_stops_its_own_cluster() -> None:
    pytest.importorskip("distributed")
    table = pa.table({"caption": CAPTIONS * 10})
    local = count_corpus(table, NAMES, scheduler="local", n_workers=1)
    pd.testing.assert_frame_equal(local.counts, count_corpus(table, NAMES).counts)
