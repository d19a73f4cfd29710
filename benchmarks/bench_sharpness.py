"""Speed of cliplab.sharpness: vectorised vs looped average-case sharpness, and worst-case cost per iteration.

    .venv/bin/python benchmarks/bench_sharpness.py [--repeats 7] [--threads 1]

Average case: the same model, batches, ρ, seed and noise tensors are measured end to end three ways:
``vectorize=True`` on the MLP (an ``nn.Sequential``, so the K perturbed forwards run as one GEMM per layer,
``cliplab.sharpness.stacked_mlp``), ``vectorize=True`` on the same MLP inside a wrapper module (which sharpness runs
through the generic ``torch.func.vmap`` path, as it would any other architecture) and ``vectorize=False`` (a
loop of K ``functional_call`` forwards); the values must agree (rtol 1e-5) or the benchmark fails. Reported per
(m, K): the speed-up of the vectorised path over the loop (target ≥ 3×) and, beside it, that of the generic
vmap path; best time of ``--repeats`` runs each; the time of the K·P Gaussian draws, which all paths make
identically; and the time of the stacked forward alone; the loop's time over (noise + stacked forward) is the
most the vectorised path could gain with everything else free. Both paths are also timed with K = 1: the
difference to K gives each path's cost per further noise sample, whose ratio is the speed-up as K grows
without bound (the K = 1 time, unperturbed loss and result table included, is paid by both alike).
Worst case (APGD, adaptive, m = 128, 20 iterations): seconds per batch per iteration, against a target of
3 × one forward+backward pass of the same batch measured in the same run (the floor is ≈ 1×: every
iteration is one forward+backward; the rest is projection and bookkeeping).

One torch thread by default: on the shared 2-core machine two threads made every small op ~30 ms slower
(spinning OpenMP workers pre-empted by other jobs), which swamps the comparison.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from cliplab.sharpness.measures import SharpnessConfig, fixed_batches, sharpness, unit_noise
from cliplab.sharpness.stacked_mlp import stacked_forward, stacked_mlp_plan

sys.path.insert(0, str(Path(__file__).parent))
from common import Result, print_results  # noqa: E402

TARGET_SPEEDUP = 3.0
TARGET_ITER_OVER_FWD_BWD = 3.0


def best_time(fn: Callable[[], object], repeats: int) -> float:
    """Smallest wall time over ``repeats`` runs (after one warm-up): the least disturbed by other jobs."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def make_model(d_in: int, width: int, n_classes: int, seed: int) -> nn.Module:
    """The latent-feature MLP of the toy replications: d_in → width → width → classes, ReLU, with biases."""
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(d_in, width), nn.ReLU(), nn.Linear(width, width), nn.ReLU(),
                         nn.Linear(width, n_classes)).eval()


class Wrapped(nn.Module):
    """The benchmark MLP behind one more module level: not an ``nn.Sequential``, so sharpness vmaps it."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(x)


def stacked_forward_alone(model: nn.Module, x: torch.Tensor, k: int, seed: int) -> Callable[[], object]:
    """One batch's K perturbed forwards as the vectorised path runs them (one GEMM per layer over K stacked
    weight sets), without the noise draws, the perturbation and the loss: its floor besides the noise."""
    gen = torch.Generator().manual_seed(seed)
    stacked = {n: p.detach() + 0.01 * torch.randn((k, *p.shape), generator=gen) for n, p in model.named_parameters()}
    plan = stacked_mlp_plan(model, stacked)
    assert plan is not None, "the benchmark MLP should take the stacked path"

    def run() -> object:
        with torch.no_grad():
            return stacked_forward(plan, stacked, x)

    return run


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=1, choices=[1, 2])
    parser.add_argument("--d-in", type=int, default=32)
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    model = make_model(args.d_in, args.width, 10, args.seed)
    gen = torch.Generator().manual_seed(args.seed)
    x = torch.randn(512, args.d_in, generator=gen)
    y = torch.randint(0, 10, (512,), generator=gen)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"model: MLP {args.d_in}→{args.width}→{args.width}→10 ({n_params} parameters), N = 512, "
          f"threads = {args.threads}, best of {args.repeats}")

    wrapped = Wrapped(model).eval()
    scale = {n: p.detach().abs() for n, p in model.named_parameters()}
    results = []
    for m, k in ((32, 20), (32, 100), (128, 20), (128, 100)):
        cfg = SharpnessConfig(kind="average", norm="l2", adaptive=True, rho=0.1, m=m, n_examples=256,
                              n_samples=k, normalize_logits=True)
        loop_cfg = replace(cfg, vectorize=False)
        vec = sharpness(model, (x, y), cfg, seed=args.seed)
        for other in (sharpness(wrapped, (x, y), cfg, seed=args.seed),
                      sharpness(model, (x, y), loop_cfg, seed=args.seed)):
            np.testing.assert_allclose(vec.per_batch["perturbed_loss"], other.per_batch["perturbed_loss"], rtol=1e-5)
            np.testing.assert_array_equal(vec.per_batch["perturbed_error"], other.per_batch["perturbed_error"])
        t_vec = best_time(lambda: sharpness(model, (x, y), cfg, seed=args.seed), args.repeats)
        t_vmap = best_time(lambda: sharpness(wrapped, (x, y), cfg, seed=args.seed), args.repeats)
        t_loop = best_time(lambda: sharpness(model, (x, y), loop_cfg, seed=args.seed), args.repeats)
        n_batches = -(-cfg.n_examples // m)
        t_noise = n_batches * best_time(lambda: unit_noise(scale, cfg, torch.Generator()), args.repeats)
        t_fwd = n_batches * best_time(stacked_forward_alone(model, x[:m], k, args.seed), args.repeats)
        one = replace(cfg, n_samples=1)
        t1_vec = best_time(lambda: sharpness(model, (x, y), one, seed=args.seed), args.repeats)
        t1_loop = best_time(lambda: sharpness(model, (x, y), replace(one, vectorize=False), seed=args.seed),
                            args.repeats)
        d_vec, d_loop = (t_vec - t1_vec) / (k - 1), (t_loop - t1_loop) / (k - 1)
        print(f"average-case m={m:>3} K={k:>3}: vectorised {t_vec * 1e3:7.1f} ms, generic vmap {t_vmap * 1e3:7.1f} ms "
              f"({t_loop / t_vmap:.1f}×), loop {t_loop * 1e3:7.1f} ms, of which the noise draws all share "
              f"{t_noise * 1e3:5.1f} ms (256 points, values agree: loss sharpness {vec.loss_sharpness:.6f}); "
              f"the stacked forward alone {t_fwd * 1e3:5.1f} ms, so even with everything else free the "
              f"speed-up would be at most {t_loop / (t_noise + t_fwd):.1f}×; with K = 1 the calls take "
              f"{t1_vec * 1e3:.1f} / {t1_loop * 1e3:.1f} ms, each further sample {d_vec * 1e3:.3f} / "
              f"{d_loop * 1e3:.3f} ms, so the speed-up tends to {d_loop / d_vec:.1f}× as K grows")
        results.append(Result(f"avg-case vectorised speed-up, m={m}, K={k}", t_loop / t_vec, TARGET_SPEEDUP, "×",
                              higher_is_better=True))

    xb, yb = fixed_batches(x, y, 128, 128)[0]
    params = list(model.parameters())

    def fwd_bwd() -> None:
        torch.autograd.grad(F.cross_entropy(model(xb), yb), params)

    t_fb = best_time(fwd_bwd, args.repeats * 5)
    n_iters = 20
    for norm, rho in (("linf", 0.01), ("l2", 0.5)):
        cfg = SharpnessConfig(kind="worst", norm=norm, adaptive=True, rho=rho, m=128, n_examples=128,
                              n_iters=n_iters, normalize_logits=True)
        t = best_time(lambda: sharpness(model, (xb, yb), cfg, seed=args.seed), max(1, args.repeats // 2))
        per_iter = t / n_iters
        print(f"worst-case {norm:>4}: {per_iter * 1e3:.2f} ms per batch per iteration "
              f"(one forward+backward: {t_fb * 1e3:.2f} ms)")
        results.append(Result(f"worst-case {norm} adaptive, ms / batch / iter", per_iter * 1e3,
                              TARGET_ITER_OVER_FWD_BWD * t_fb * 1e3, "ms"))
    print_results("sharpness speed", results)


if __name__ == "__main__":
    main()
