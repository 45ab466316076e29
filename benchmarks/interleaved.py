"""Interleaved wall-clock timing shared by the CPU benchmark scripts."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def median_seconds(fns: dict[str, Callable[[], object]], rounds: int) -> dict[str, float]:
    """Median wall time of each function over ``rounds`` rounds after one warm-up call each.

    The functions take turns within each round, so that load from other processes on the
    machine falls on all of them alike.
    """
    for fn in fns.values():
        fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}
