"""What makes a function a benchmark: `@benchmark(text=..., mpi=...)` marks it (a leaf module).

The registry (`pimpi.bench.registry`) lists every benchmark by name in one place and
imports a member only when it runs; members import this module, never the registry.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

__all__ = ["Benchmark", "benchmark"]


@dataclass(frozen=True)
class Benchmark:
    """A benchmark: `func(comm, **options) -> results`, and `text(results) -> str` for people."""

    name: str
    func: Callable[..., Any]
    text: Callable[[Any], str]
    mpi: bool  # True: runs on every rank of COMM_WORLD; False: a driver on one process


def benchmark(*, text: Callable[[Any], str], mpi: bool = True) -> Callable:
    """Decorator: `@benchmark(text=fmt)` marks `func` as a benchmark (its name comes from the registry)."""

    def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
        func.benchmark_text = text  # type: ignore[attr-defined]
        func.benchmark_mpi = mpi  # type: ignore[attr-defined]
        return func

    return decorate
