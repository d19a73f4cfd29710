"""How close the zoo's training runs to this machine's limit, and how much work the zoo asks of it.

    .venv/bin/python benchmarks/bench_limits.py [--params params.yaml] [--steps 30] [--zoo-dir zoo]

Measures, in one run on this CPU: the fp32 GEMM peak (square ``torch.mm``, 1 and 2 threads); for each zoo
architecture the training FLOPs per sample (torch's FLOP counter over one forward + backward + the CLIP loss,
split by tower; optimiser updates are elementwise and not counted) and its achieved GFLOP/s at the zoo's batch
size and thread count, against ≥ 50 % of the one-thread peak (issue 26). Then the whole zoo's training FLOPs
(steps × batch × FLOPs per sample, summed over models) against one third of the zoo's when issue 26 was filed
(four models of 900 steps × 256: three cliplab-tiny and one cliplab-small, their FLOPs per sample measured
here), and every trained zoo model's quality bar from its card (≥ 0.90 on concepts seen ≥ 1,000 times).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import open_clip
import torch
from torch.utils.flop_counter import FlopCounterMode

from cliplab.models.training import create_model, measure_throughput
from cliplab.zoo import read_params, read_zoo

sys.path.insert(0, str(Path(__file__).parent))
from common import REPO, Result, print_results  # noqa: E402

PEAK_FRACTION_TARGET = 0.5
BASELINE_ZOO = {"cliplab-tiny": 3, "cliplab-small": 1}  # the default zoo when issue 26 was filed
BASELINE_SAMPLES = 900 * 256  # steps × batch per model then
FLOPS_FRACTION_TARGET = 1 / 3
QUALITY_TARGET = 0.90


def gemm_peak(threads: int, n: int = 1024, repeats: int = 20) -> float:
    """Median GFLOP/s of an n×n fp32 matrix product on ``threads`` threads."""
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        a, b = torch.randn(n, n), torch.randn(n, n)
        out = torch.empty(n, n)
        for _ in range(3):
            torch.mm(a, b, out=out)
        times = []
        for _ in range(repeats):
            tic = time.perf_counter()
            torch.mm(a, b, out=out)
            times.append(time.perf_counter() - tic)
    finally:
        torch.set_num_threads(previous)
    return 2 * n**3 / float(np.median(times)) / 1e9


def training_flops(arch: str, batch_size: int = 64) -> dict[str, float]:
    """FLOPs per training sample of ``arch``: total and per tower (forward + backward + loss)."""
    model, _, tokenizer = create_model(arch, 0)
    size = model.visual.image_size
    size = tuple(size) if isinstance(size, (tuple, list)) else (size, size)
    images = torch.randn(batch_size, 3, *size)
    tokens = tokenizer([f"a photo of thing {i}" for i in range(batch_size)])
    loss_fn = open_clip.ClipLoss()
    with FlopCounterMode(display=False) as counter:
        image_features, text_features, scale = model(images, tokens)[:3]
        loss_fn(image_features, text_features, scale).backward()
    per_module = {name: sum(ops.values()) for name, ops in counter.get_flop_counts().items()}
    total = counter.get_total_flops()
    image = sum(v for k, v in per_module.items() if k.count(".") == 1 and k.endswith(".visual"))
    return {"total": total / batch_size, "image_tower": image / batch_size}


def zoo_quality(zoo_dir: Path, names: list[str]) -> dict[str, dict]:
    """Each trained model's quality block from its card (models not trained yet are left out)."""
    cards = {n: zoo_dir / n / "card.json" for n in names}
    return {n: json.loads(p.read_text())["quality"] for n, p in cards.items() if p.is_file()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--params", default=None, help="params.yaml with zoo: (default: the project's)")
    parser.add_argument("--steps", type=int, default=30, help="timed training steps per architecture")
    parser.add_argument("--zoo-dir", default=str(REPO / "zoo"), help="trained zoo whose cards hold quality bars")
    args = parser.parse_args(argv)

    entries = read_zoo(read_params(args.params))
    results: list[Result] = []
    peaks = {t: gemm_peak(t) for t in (1, 2)}
    for t, peak in peaks.items():
        print(f"fp32 GEMM peak, {t} thread(s): {peak:.1f} GFLOP/s", flush=True)
        results.append(Result(f"fp32 GEMM peak, {t} thread(s)", peak, 0.0, "GFLOP/s", how="reported"))

    archs = sorted({e.arch for e in entries} | set(BASELINE_ZOO))
    flops = {a: training_flops(a) for a in archs}
    for arch in sorted({e.arch for e in entries}):
        config = next(e.train_config() for e in entries if e.arch == arch)
        rate = measure_throughput(arch, batch_size=config.batch_size, steps=args.steps,
                                  num_threads=config.num_threads)
        achieved = rate * flops[arch]["total"] / 1e9
        share = flops[arch]["image_tower"] / flops[arch]["total"]
        print(f"{arch}: {flops[arch]['total'] / 1e6:.1f} MFLOP per training sample ({share:.0%} image tower), "
              f"{rate:.0f} samples/s at batch {config.batch_size} on {config.num_threads} thread(s) "
              f"= {achieved:.1f} GFLOP/s", flush=True)
        results.append(Result(f"{arch} achieved / {config.num_threads}-thread GEMM peak", achieved / peaks[
            config.num_threads], PEAK_FRACTION_TARGET, "", True))

    total = sum(e.total_steps() * e.train_config().batch_size * flops[e.arch]["total"] for e in entries)
    baseline = sum(n * BASELINE_SAMPLES * flops[a]["total"] for a, n in BASELINE_ZOO.items())
    print(f"whole zoo: {len(entries)} models, {total / 1e12:.1f} TFLOP of training; at issue 26's filing "
          f"{sum(BASELINE_ZOO.values())} models, {baseline / 1e12:.1f} TFLOP")
    results.append(Result("whole zoo training FLOPs (TFLOP)", total / 1e12, FLOPS_FRACTION_TARGET * baseline / 1e12,
                          "TF"))

    quality = zoo_quality(Path(args.zoo_dir), [e.name for e in entries])
    for name, q in quality.items():
        lo, hi = q["ci95"]
        print(f"{name}: quality bar {q['accuracy']:.3f} [{lo:.3f}, {hi:.3f}] on {q['n_images']} images")
        results.append(Result(f"{name} quality bar (card)", q["accuracy"], QUALITY_TARGET, "", True))
    missing = [e.name for e in entries if e.name not in quality]
    if missing:
        print(f"not trained in {args.zoo_dir}, so no quality bar: {', '.join(missing)}")
    print_results("the zoo against this machine's limit", results)


if __name__ == "__main__":
    main()
