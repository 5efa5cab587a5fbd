"""Message sizes, warm-up/loop counts that shrink for large messages (`loops_for`), and min/median/max."""

from __future__ import annotations

import re
import statistics
from typing import Any, Callable, Sequence

# Fewer repetitions for large messages: one policy for every timing loop, kept beside the
# ping-pong in pimpi.cluster (which cannot import bench).
from pimpi.cluster.pingpong import HUGE, LARGE, loops_for

__all__ = ["parse_size", "parse_sizes", "parse_list", "loops_for", "summary", "timed_loop", "LARGE", "HUGE"]

_UNITS = {"": 1, "b": 1, "k": 1 << 10, "kb": 1 << 10, "kib": 1 << 10, "m": 1 << 20,
          "mb": 1 << 20, "mib": 1 << 20, "g": 1 << 30, "gb": 1 << 30, "gib": 1 << 30}


def parse_size(text: str) -> int:
    """'64K' -> 65536, '16M' -> 16777216, '100' -> 100 (binary units)."""
    match = re.fullmatch(r"\s*(\d+)\s*([a-zA-Z]*)\s*", str(text))
    if not match or match.group(2).lower() not in _UNITS:
        raise ValueError(f"not a size: {text!r} (use e.g. 1, 64K, 4M)")
    return int(match.group(1)) * _UNITS[match.group(2).lower()]


def parse_sizes(text: str) -> list[int]:
    """'1:16M' -> powers of two from 1 to 16 MiB; '1K,64K' -> those sizes."""
    sizes: list[int] = []
    for part in str(text).split(","):
        if not part.strip():
            continue
        if ":" in part:
            low, high = (parse_size(p) for p in part.split(":", 1))
            if low < 1 or high < low:
                raise ValueError(f"bad size range {part!r}: need 1 <= low <= high")
            size = 1 << (low - 1).bit_length()
            while size <= high:
                sizes.append(size)
                size <<= 1
        else:
            sizes.append(parse_size(part))
    if not sizes:
        raise ValueError(f"no sizes in {text!r}")
    return sorted(set(sizes))


def parse_list(text: str, kind: Callable[[str], Any] = str) -> list[Any]:
    """'1,2,4' -> [1, 2, 4] with `kind` applied to each item."""
    items = [p.strip() for p in str(text).split(",") if p.strip()]
    if not items:
        raise ValueError(f"empty list: {text!r}")
    try:
        return [kind(p) for p in items]
    except ValueError:
        raise ValueError(f"bad item in list {text!r}") from None


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
