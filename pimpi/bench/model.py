"""Scaling arithmetic and cost models: speedup, efficiency, Amdahl's law, Hockney α–β, schedules."""

from __future__ import annotations

import heapq
from typing import Iterable, Sequence

__all__ = [
    "speedup", "efficiency", "amdahl_speedup", "fit_amdahl", "hockney_time",
    "makespan", "render_time",
]


def speedup(base_seconds: float, seconds: float) -> float:
    """How many times faster than the base: base / time."""
    if seconds <= 0 or base_seconds <= 0:
        raise ValueError(f"times must be positive, got base={base_seconds!r} time={seconds!r}")
    return base_seconds / seconds


def efficiency(speedup_value: float, ranks: int) -> float:
    """Parallel efficiency: speedup / ranks (1.0 is perfect)."""
    if ranks < 1:
        raise ValueError(f"ranks must be at least 1, got {ranks!r}")
    return speedup_value / ranks


def amdahl_speedup(serial_fraction: float, ranks: int) -> float:
    """Amdahl's law: 1 / (f + (1 - f) / p)."""
    if not 0.0 <= serial_fraction <= 1.0:
        raise ValueError(f"serial fraction must be in [0, 1], got {serial_fraction!r}")
    return 1.0 / (serial_fraction + (1.0 - serial_fraction) / ranks)


def fit_amdahl(ranks: Sequence[int], speedups: Sequence[float]) -> float | None:
    """Least-squares serial fraction f from measured speedups (None without any p > 1).

    Amdahl: T(p)/T(1) = f + (1 - f)/p, i.e. y - x = f (1 - x) with x = 1/p, y = 1/S(p).
    """
    if len(ranks) != len(speedups):
        raise ValueError(f"{len(ranks)} rank counts but {len(speedups)} speedups")
    num = den = 0.0
    for p, s in zip(ranks, speedups):
        if p < 1 or s <= 0:
            raise ValueError(f"bad point: ranks={p!r} speedup={s!r}")
        x, y = 1.0 / p, 1.0 / s
        num += (1.0 - x) * (y - x)
        den += (1.0 - x) ** 2
    if den == 0.0:
        return None
    return min(1.0, max(0.0, num / den))


def hockney_time(alpha: float, beta: float, nbytes: float, messages: float = 1.0) -> float:
    """Hockney's model: messages · α + bytes · β (β in seconds per byte)."""
    if alpha < 0 or beta < 0:
        raise ValueError(f"α and β must be >= 0, got α={alpha!r} β={beta!r}")
    return messages * alpha + nbytes * beta


def makespan(costs: Iterable[float], workers: int, schedule: str = "dynamic") -> float:
    """Finish time of `costs` (seconds per frame) on `workers` equal workers, as pimpi renders.

    dynamic: longest frame first to the first free worker (task pull);
    static: every frame split by interleaved rows over all workers (even shares);
    block: contiguous blocks of frames, one block per worker.
    """
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers!r}")
    costs = list(costs)
    if schedule == "static":
        return sum(costs) / workers
    if schedule == "block":
        base, extra = divmod(len(costs), workers)
        loads, start = [], 0
        for w in range(workers):
            end = start + base + (1 if w < extra else 0)
            loads.append(sum(costs[start:end]))
            start = end
        return max(loads)
    if schedule != "dynamic":
        raise ValueError(f"unknown schedule {schedule!r} (use dynamic, static or block)")
    free = [0.0] * workers
    for cost in sorted(costs, reverse=True):
        heapq.heappush(free, heapq.heappop(free) + cost)
    return max(free)


def render_time(frame_seconds: Sequence[float], frame_bytes: int, *, nodes: int,
                cores_per_node: int, alpha: float, beta: float,
                schedule: str = "dynamic") -> dict[str, float]:
    """Predicted render time on nodes × cores_per_node ranks, one rank per core.

    Compute is the schedule's makespan; every frame rendered off node 0 crosses the
    network once to rank 0, whose link serialises them (α + bytes·β each) while the
    others keep computing; the last frame's transfer cannot overlap anything.
    """
    if nodes < 1 or cores_per_node < 1:
        raise ValueError(f"need nodes >= 1 and cores >= 1, got {nodes!r}, {cores_per_node!r}")
    ranks = nodes * cores_per_node
    compute = makespan(frame_seconds, ranks, schedule)
    remote_frames = len(frame_seconds) * (nodes - 1) / nodes
    per_frame = hockney_time(alpha, beta, frame_bytes) if nodes > 1 else 0.0
    network = remote_frames * per_frame
    total = max(compute, network) + per_frame
    return {"ranks": ranks, "compute_s": compute, "network_s": network, "total_s": total,
            "bound": "network" if network > compute else "compute"}

