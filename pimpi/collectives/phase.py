"""Named phases of an algorithm ("reduce-scatter", "allgather"), for the pictures of its trace.

A leaf module beside `call`: the algorithms mark their phases on every call, so marking
must not load the trace package; a TracingComm records the mark, any other comm ignores it.
"""

from __future__ import annotations

from typing import Any

__all__ = ["phase"]


def phase(comm: Any, name: str) -> None:
    """Mark that the algorithm on `comm` starts phase `name` (e.g. "reduce-scatter"):
    a comm with a `pimpi_phase` method (TracingComm) records it; any other comm ignores it."""
    mark = getattr(comm, "pimpi_phase", None)
    if mark is not None:
        mark(name)
