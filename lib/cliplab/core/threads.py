"""Thread settings for small-tensor work on shared CPUs."""

from __future__ import annotations

import contextlib
from typing import Iterator

import torch
from threadpoolctl import threadpool_limits


@contextlib.contextmanager
def single_threaded() -> Iterator[None]:
    """Run torch and BLAS on one thread for the block, restoring the previous settings afterwards.

    Many small matrix products (batched MLPs, LDA fits, sharpness on tiny models) gain nothing from a second
    thread; on a shared 2-core machine it mostly waits (measured ~100x slower for the shortcut sweeps).
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with threadpool_limits(1):
            yield
    finally:
        torch.set_num_threads(previous)
