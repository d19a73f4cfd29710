"""Speed of the procedural world: image–caption pairs per second, against the 2,000 pairs/s target.

    .venv/bin/python benchmarks/bench_world.py [--n 5000] [--domain clean] [--image-size 32] [--format png]

Prints pairs/s for scene+caption drawing only, for rendering (pixels + caption + metadata), and for
rendering + writing webdataset shards and the parquet index, each with its ratio to the target. Sprite caches
are warmed on a separate index range first, so the numbers are steady-state (the warm-up time is printed).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from cliplab.world import DOMAINS, MIXED, World, WorldConfig, write_shards

sys.path.insert(0, str(Path(__file__).parent))
from common import Result, print_results  # noqa: E402

TARGET = 2000.0


def _rate(name: str, n: int, seconds: float) -> Result:
    return Result(name, n / seconds, TARGET, "pairs/s", higher_is_better=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=5000, help="pairs per measurement")
    parser.add_argument("--domain", default="clean", choices=[*DOMAINS, MIXED])
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--format", default="png", choices=["png", "jpg"])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    world = World(WorldConfig(seed=args.seed, image_size=args.image_size))
    t = time.perf_counter()
    for _ in world.iter_samples(args.n, start=10**9, domain=args.domain):
        pass
    print(f"warm-up (sprite caches, {args.n} pairs): {time.perf_counter() - t:.2f} s")

    results = []
    t = time.perf_counter()
    for i in range(args.n):
        world.draw(i, domain=args.domain)
    results.append(_rate("scene + caption only", args.n, time.perf_counter() - t))

    t = time.perf_counter()
    for _ in world.iter_samples(args.n, domain=args.domain):
        pass
    results.append(_rate(f"rendered pairs ({args.domain}, {args.image_size}px)", args.n, time.perf_counter() - t))

    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        write_shards(world, args.n, tmp, shard_size=max(1, args.n // 4), image_format=args.format,
                     domain=args.domain)
        results.append(_rate(f"rendered + written as {args.format} shards", args.n, time.perf_counter() - t))
    print_results("procedural world throughput", results)


if __name__ == "__main__":
    main()
