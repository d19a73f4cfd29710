"""Speed of the model zoo: training samples/s per model size, and the whole zoo's time against 10 minutes.

    .venv/bin/python benchmarks/bench_zoo.py [--params params.yaml] [--steps 200] [--threads 2] [--full]

By default the whole-zoo time is a PROJECTION: each architecture trains ``--steps`` steps on random images at
its zoo batch size (median step time), each entry's corpus is timed by rendering a slice of it, and the zoo's
time is sum over entries of (steps x batch / samples per s + corpus_size / rendered per s). Evaluation and
card writing are not in the projection. ``--full`` instead trains every zoo model for real into a temporary
folder (or ``--zoo-dir``) and reports the measured wall time, evaluation included.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from cliplab.models.training import measure_throughput
from cliplab.models.zoo import read_params, read_zoo, train_zoo_model
from cliplab.world import World

sys.path.insert(0, str(Path(__file__).parent))
from common import Result, print_results  # noqa: E402

TARGET_S = 600.0
RENDER_PROBE = 2000


def render_rate(world: World, n: int = RENDER_PROBE) -> float:
    """Rendered training pairs/s of a world (after warming the sprite cache on another index range)."""
    for _ in world.iter_samples(200, start=10**9):
        pass
    tic = time.perf_counter()
    for _ in world.iter_samples(n):
        pass
    return n / (time.perf_counter() - tic)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--params", default=None, help="params.yaml with world: and zoo: (default: the project's)")
    parser.add_argument("--steps", type=int, default=200, help="timed steps per architecture (projection)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--full", action="store_true", help="train the whole zoo for real and time it")
    parser.add_argument("--zoo-dir", default=None, help="with --full: where to train (default: a temp folder)")
    args = parser.parse_args(argv)

    params = read_params(args.params)
    entries = read_zoo(params)
    world_params = params.get("world") or {}
    results: list[Result] = []
    if args.full:
        with tempfile.TemporaryDirectory() as tmp:
            zoo_dir = Path(args.zoo_dir or tmp)
            tic = time.perf_counter()
            for entry in entries:
                t = time.perf_counter()
                train_zoo_model(entry, zoo_dir, world_params, num_threads=args.threads)
                print(f"{entry.name}: {time.perf_counter() - t:.1f} s", flush=True)
            total = time.perf_counter() - tic
        results.append(Result(f"whole zoo, {len(entries)} models, MEASURED (train+render+eval)", total, TARGET_S, "s"))
        print_results("model zoo training time (measured)", results)
        return

    rates: dict[tuple[str, int], float] = {}
    for arch, batch in sorted({(e.arch, e.train_config().batch_size) for e in entries}):
        rate = measure_throughput(arch, batch_size=batch, steps=args.steps, num_threads=args.threads)
        rates[(arch, batch)] = rate
        print(f"{arch} @ batch {batch}: {rate:.0f} samples/s ({args.threads} threads, {args.steps} steps)", flush=True)
        results.append(Result(f"{arch} training throughput (batch {batch})", rate, 1.0, "samples/s",
                              higher_is_better=True))
    render_rates: dict[str, float] = {}
    projected = 0.0
    for e in entries:
        world_key = repr(sorted(e.world_config(world_params).to_dict().items()))
        if world_key not in render_rates:
            render_rates[world_key] = render_rate(World(e.world_config(world_params)))
        batch = e.train_config().batch_size
        seconds = e.total_steps() * batch / rates[(e.arch, batch)] + e.corpus_size / render_rates[world_key]
        print(f"{e.name}: {e.total_steps()} steps x {batch} on {e.arch} + render {e.corpus_size} -> {seconds:.0f} s")
        projected += seconds
    results.append(Result(f"whole zoo, {len(entries)} models, PROJECTED (train+render)", projected, TARGET_S, "s"))
    print("(throughput targets are informational: 1 sample/s; the zoo target is the 10-minute budget)")
    print_results("model zoo training (projection from measured step times)", results)


if __name__ == "__main__":
    main()
