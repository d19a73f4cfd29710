"""Speed of the concept-counting engine (cliplab.frequency) against a paper-style spaCy pipeline.

    .venv/bin/python benchmarks/bench_frequency.py [--captions 4000000] [--files 8] [--concepts 4000]
                                                   [--reference 20000] [--seed 0]

One run, side by side, on a synthetic corpus (world concept names + generated words + multi-word phrases +
real English nouns with irregular plurals, Zipf-distributed, templated captions) written as parquet files:

- reference throughput: spaCy ``blank("en")`` + lookup lemmatiser → inverted index → unigram-intersection
  queries for every concept (``cliplab.frequency.reference``), on ``--reference`` captions;
- engine throughput in-process (one process, one core) from parquet, and on a Dask LocalCluster with 1 and
  2 single-threaded workers (cluster start-up and a warm-up of every worker excluded, scheduling and
  reading included; the faster of two runs);
- agreement with the reference on single-word concepts (same captions);
- peak RSS of an in-process count over a quarter of the files and over all of them (fresh processes), which
  must not grow with corpus size.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from cliplab.frequency import ConceptSet, count_captions, count_corpus

sys.path.insert(0, str(Path(__file__).parent))
from common import Result, print_results  # noqa: E402

COLOURS = ("red", "orange", "yellow", "green", "blue", "purple", "pink", "brown", "black", "grey")
TEMPLATES = ("{}", "a photo of {}", "a picture of {}", "an image of {}", "a rendering of {}", "a scene with {}",
             "{} on a table", "close-up of {}.")
ENGLISH = {  # singular → plural, irregular ones included, to exercise lemmatisation
    "shark": "sharks", "mouse": "mice", "goose": "geese", "child": "children", "dog": "dogs", "cat": "cats",
    "leaf": "leaves", "knife": "knives", "person": "people", "tooth": "teeth", "foot": "feet", "box": "boxes",
    "bus": "buses", "city": "cities", "wolf": "wolves", "fish": "fish", "sheep": "sheep", "man": "men",
    "woman": "women", "glass": "glasses", "cactus": "cacti", "bird": "birds", "truck": "trucks",
    "house": "houses", "tree": "trees", "boat": "boats", "horse": "horses", "chair": "chairs",
}


def build_concepts(n: int, seed: int) -> list[str]:
    """≥ n concept names: a world's names, generated two-syllable words, English nouns, 2–3-word phrases."""
    from cliplab.world import World, WorldConfig  # imported here: it pulls in torch, which the children must not
    from cliplab.world.concepts import syllable_inventory

    rng = np.random.default_rng(seed)
    world = World(WorldConfig(seed=seed))
    names = [c.name for c in world.concepts] + list(ENGLISH)
    syllables = syllable_inventory()
    seen = set(names) | set(COLOURS)
    while len(names) < int(n * 0.85):
        word = "".join(rng.choice(syllables, size=2))
        if word not in seen:
            seen.add(word)
            names.append(word)
    singles = list(names)
    while len(names) < n:
        k = int(rng.integers(2, 4))
        phrase = " ".join(rng.choice(singles[: len(singles) // 2], size=k))
        if phrase not in seen:
            seen.add(phrase)
            names.append(phrase)
    return names


def caption_pool(names: list[str], n: int, seed: int) -> list[str]:
    """n distinct-ish captions mentioning 1–3 concepts (Zipf over a shuffled concept order)."""
    rng = np.random.default_rng(seed + 1)
    order = rng.permutation(len(names))
    p = 1.0 / np.arange(1, len(names) + 1) ** 1.05
    p /= p.sum()
    picks = order[rng.choice(len(names), size=(n, 3), p=p)]
    n_obj = rng.choice([1, 2, 3], size=n, p=[0.6, 0.3, 0.1])
    colour = rng.integers(0, len(COLOURS) + 3, size=(n, 3))
    plural = rng.random((n, 3)) < 0.3
    template = rng.integers(0, len(TEMPLATES), size=n)
    out = []
    for i in range(n):
        parts = []
        for j in range(n_obj[i]):
            name = names[picks[i, j]]
            if name in ENGLISH and plural[i, j]:
                parts.append(f"two {ENGLISH[name]}")
                continue
            c = colour[i, j]
            parts.append(f"a {COLOURS[c]} {name}" if c < len(COLOURS) else f"a {name}")
        out.append(TEMPLATES[template[i]].format(" and ".join(parts)))
    return out


def write_corpus(pool: list[str], n: int, n_files: int, out: Path, seed: int) -> list[str]:
    """n captions sampled from the pool, as n_files parquet files of 100k-row groups."""
    rng = np.random.default_rng(seed + 2)
    arr = pa.array(pool, type=pa.string())
    paths = []
    per = n // n_files
    for f in range(n_files):
        path = out / f"captions-{f:03d}.parquet"
        pq.write_table(pa.table({"caption": arr.take(rng.integers(0, len(pool), per))}), path,
                       row_group_size=100_000)
        paths.append(str(path))
    return paths


def _peak_rss_mib() -> float:
    """This process's peak resident set (VmHWM). Not ru_maxrss: that survives exec, so a child started from
    a large parent would report the parent's size."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status (peak RSS needs Linux)")


def _in_process_child(paths: list[str], names: list[str]) -> None:
    """Run in a fresh process: count in-process, print seconds, captions and peak RSS as JSON."""
    concepts = ConceptSet(names)
    start = time.perf_counter()
    result = count_corpus(paths, concepts)
    seconds = time.perf_counter() - start
    peak = _peak_rss_mib()
    print(json.dumps({"seconds": seconds, "n": result.n_captions, "rss_mib": peak,
                      "counts": result.counts["text_count"].tolist()}))


def in_process(paths: list[str], names_file: Path) -> dict:
    cmd = [sys.executable, __file__, "--child", str(names_file), *paths]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode:
        raise RuntimeError(proc.stderr[-2000:])
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--captions", type=int, default=4_000_000, help="corpus size (captions)")
    parser.add_argument("--files", type=int, default=8, help="parquet files (Dask tasks)")
    parser.add_argument("--concepts", type=int, default=4000, help="concept phrases (≥ 4000 for the target)")
    parser.add_argument("--reference", type=int, default=20_000, help="captions for the spaCy reference")
    parser.add_argument("--pool", type=int, default=200_000, help="distinct captions the corpus samples from")
    parser.add_argument("--seed", type=int, default=0)
    args, _ = parser.parse_known_args(argv)  # run.py passes every benchmark the same extra arguments

    t0 = time.perf_counter()
    print(f"load average before the run: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    names = build_concepts(args.concepts, args.seed)
    concepts = ConceptSet(names)
    pool = caption_pool(names, args.pool, args.seed)
    print(f"{len(names)} concepts ({sum(' ' in n for n in names)} multi-word), longest {concepts.max_length} "
          f"words; pool of {len(pool):,} captions, e.g. {pool[:2]}")

    # reference vs engine on the same captions
    from cliplab.frequency.reference import ReferenceIndex
    sample = pool[: args.reference]
    index = ReferenceIndex()
    t = time.perf_counter()
    index.add(sample)
    ref_counts = index.counts(names)
    ref_rate = len(sample) / (time.perf_counter() - t)
    ours = count_captions(sample, concepts)["text_count"].to_numpy()
    single = np.array([" " not in n for n in names])
    agree = float(np.mean(ours[single] == ref_counts[single]))
    differ = [(n, int(a), int(b)) for n, a, b, s in zip(names, ours, ref_counts, single) if s and a != b]
    print(f"reference: {ref_rate:,.0f} captions/s on {len(sample):,}; single-word disagreements: {differ[:5]}")

    with tempfile.TemporaryDirectory(prefix="bench-frequency-") as tmp:
        paths = write_corpus(pool, args.captions, args.files, Path(tmp), args.seed)
        names_file = Path(tmp) / "names.json"
        names_file.write_text(json.dumps(names))
        size = sum(Path(p).stat().st_size for p in paths) / 2**20
        print(f"corpus: {args.captions:,} captions in {len(paths)} parquet files ({size:.0f} MiB), "
              f"set-up {time.perf_counter() - t0:.1f} s")

        quarter = in_process(paths[: max(1, len(paths) // 4)], names_file)
        full = in_process(paths, names_file)
        engine_rate = full["n"] / full["seconds"]
        print(f"in-process: {engine_rate:,.0f} captions/s; peak RSS {quarter['rss_mib']:.0f} MiB at "
              f"{quarter['n']:,} captions, {full['rss_mib']:.0f} MiB at {full['n']:,}")

        from distributed import LocalCluster
        rates = {}
        dask_counts = None
        for workers in (1, 2):
            with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                              dashboard_address=None, silence_logs=logging.ERROR) as cluster:
                # warm-up in many small tasks, so that every worker (not just the first) has imported the
                # engine and opened a file before the timed runs
                count_corpus(paths[:1], concepts, scheduler=cluster.scheduler_address, rows_per_part=25_000)
                runs = [count_corpus(paths, concepts, scheduler=cluster.scheduler_address, rows_per_part=500_000)
                        for _ in range(2)]
                result = min(runs, key=lambda r: r.seconds)  # the run least disturbed by other jobs
                rates[workers] = result.n_captions / result.seconds
                dask_counts = result.counts["text_count"].tolist()
            # CPU / wall of the tasks: below 1 means the workers waited for a core (other load on the machine)
            share = result.part_cpu_seconds / result.part_seconds
            print(f"dask {workers} worker(s): {rates[workers]:,.0f} captions/s over {result.n_parts} tasks; "
                  f"task CPU/wall {share:.2f}; load average {os.getloadavg()[0]:.2f}")
        assert dask_counts == full["counts"], "Dask and in-process counts differ"

    best = max(engine_rate, rates[2])
    print(f"total benchmark time {time.perf_counter() - t0:.0f} s")
    print_results(f"concept frequency engine ({len(names)} concepts, {args.captions:,} captions)", [
        Result("engine / reference throughput (1 core each)", engine_rate / ref_rate, 20.0, "×", True),
        Result("engine in-process (1 process)", engine_rate * 60 / 1e6, 10.0, "M/min", True),
        Result("engine Dask 2 workers", rates[2] * 60 / 1e6, 10.0, "M/min", True),
        Result("engine best of the two", best * 60 / 1e6, 10.0, "M/min", True),
        Result("Dask 2 workers / 1 worker", rates[2] / rates[1], 1.6, "×", True),
        Result("single-word agreement with reference", 100 * agree, 99.0, "%", True),
        Result("peak RSS all files / a quarter of them", full["rss_mib"] / quarter["rss_mib"], 1.10, "×"),
    ])


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        _in_process_child(sys.argv[3:], json.loads(Path(sys.argv[2]).read_text()))
    else:
        main()
