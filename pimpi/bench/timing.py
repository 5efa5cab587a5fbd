"""Warm-up/loop counts that shrink for large messages (`loops_for`), timed loops, and min/median/max."""

from __future__ import annotations

import statistics
from typing import Any, Callable, Sequence

# Fewer repetitions for large messages: one policy for every timing loop, kept beside the
# ping-pong in pimpi.cluster (which cannot import bench).
from pimpi.cluster.pingpong import HUGE, LARGE, loops_for

__all__ = ["loops_for", "summary", "timed_loop", "LARGE", "HUGE"]

def summary(values: Sequence[float]) -> dict[str, float]:
    """{"min", "median", "max", "n"} of repeated measurements."""
    if not values:
        raise ValueError("no measurements to summarise")
    return {"min": min(values), "median": statistics.median(values), "max": max(values),
            "n": len(values)}


def timed_loop(comm: Any, call: Callable[[], Any], skip: int, loop: int) -> float:
    """Mean seconds of `call` over `loop` timed runs after `skip` warm-ups, barrier before each.

    Returns this rank's mean; callers combine ranks (OSU reports the average).
    """
    from mpi4py import MPI

    wtime = MPI.Wtime
    total = 0.0
    for i in range(skip + loop):
        comm.Barrier()
        start = wtime()
        call()
        elapsed = wtime() - start
        if i >= skip:
            total += elapsed
    return total / loop
