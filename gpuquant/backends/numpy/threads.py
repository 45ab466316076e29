"""The NumPy backend's worker threads: large outputs are split into row blocks, one per CPU this
process may run on (its affinity mask, as ``taskset`` or a container's cpuset narrow it).

NumPy's loops and the native int8 core (native.py) release the GIL, so the blocks run in
parallel. A process forked from one that used the pool starts a pool of its own (the forked
copy has no threads behind it).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np

THREADS = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


@functools.lru_cache(maxsize=1)
def _pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(THREADS, thread_name_prefix="gpuquant-cpu")


os.register_at_fork(after_in_child=_pool.cache_clear)


def for_row_blocks(rows: int, block: Callable[[int, int], None], parallel: bool) -> None:
    """``block(start, stop)`` over ``[0, rows)``: THREADS contiguous blocks when ``parallel``
    (and THREADS > 1), else one call."""
    if not parallel or THREADS == 1 or rows < 2:
        block(0, rows)
        return
    edges = np.linspace(0, rows, min(THREADS, rows) + 1).astype(int)
    list(_pool().map(lambda i: block(edges[i], edges[i + 1]), range(len(edges) - 1)))
