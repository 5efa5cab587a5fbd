"""The named phases of an algorithm's rounds (a ring allreduce is a reduce-scatter, then an allgather)."""

from __future__ import annotations

__all__ = ["Phase", "phases"]

Phase = tuple[str, int, int]  # (name, first round, last round), rounds counted from 1


def phases(collective: str, algorithm: str | None, ranks: int) -> list[Phase]:
    """The phases a trace of `algorithm` on `ranks` ranks falls into; [] when it has one."""
    if ranks < 2:
        return []
    if (collective, algorithm) == ("allreduce", "ring"):
        return [("reduce-scatter", 1, ranks - 1), ("allgather", ranks, 2 * (ranks - 1))]
    return []
