"""Which numeric path this CPU takes: a hash of the output bits of the kernels the notebooks lean on.

Same code and seed give the same bits on one kind of machine, but CPUs whose BLAS / oneDNN / vectorised kernels
differ (AVX2 vs AVX-512, other MKL code paths) round differently, and training amplifies one rounding difference
into different metrics. Golden smoke metrics are therefore kept per fingerprint (``tests/golden/README.md``);
``cliplab new`` records a new paper's first golden under this machine's.
"""

from __future__ import annotations

import hashlib

import torch
import torch.nn.functional as F


def numeric_fingerprint() -> str:
    """A hash of the output bits of the kernels the notebooks lean on (GEMM, batched GEMM, convolution,
    exp, log-softmax, layer norm, GELU, reductions, the Gaussian generator), at one thread and at torch's
    default thread count, plus the torch version: machines that agree on it round the same way."""
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(67, 129, generator=g), torch.randn(129, 93, generator=g)
    images, kernel = torch.randn(4, 8, 33, 33, generator=g), torch.randn(16, 8, 3, 3, generator=g)
    outs: list[torch.Tensor] = []
    default_threads = torch.get_num_threads()
    for threads in sorted({1, default_threads}):
        torch.set_num_threads(threads)
        try:
            outs += [a @ b, torch.bmm(a.expand(3, -1, -1), b.expand(3, -1, -1)), F.conv2d(images, kernel, padding=1),
                     a.exp(), a.log_softmax(-1), F.layer_norm(a, (129,)), F.gelu(a), a.sum(0), a.norm(dim=1),
                     torch.randn(1000, generator=torch.Generator().manual_seed(1))]
        finally:
            torch.set_num_threads(default_threads)
    digest = hashlib.sha256(f"torch {torch.__version__}, {default_threads} threads".encode())
    for out in outs:
        digest.update(out.contiguous().numpy().tobytes())
    return digest.hexdigest()[:12]
