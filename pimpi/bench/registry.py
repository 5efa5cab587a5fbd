"""Benchmarks register here by decorator (as mpi4py.bench does); one runner wraps them all."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any, Callable

from pimpi.bench.machine import finish_state, machine_state, node_states
from pimpi.bench.schema import document, write_json

__all__ = ["Benchmark", "register", "get", "names", "run"]


@dataclass(frozen=True)
class Benchmark:
    """A benchmark: `func(comm, **options) -> results`, and `text(results) -> str` for people."""

    name: str
    func: Callable[..., Any]
    text: Callable[[Any], str]
    mpi: bool  # True: runs on every rank of COMM_WORLD; False: a driver on one process


_registry: dict[str, Benchmark] = {}


def register(name: str, *, text: Callable[[Any], str], mpi: bool = True) -> Callable:
    """Decorator: `@register("pingpong", text=fmt)` adds the function to the registry."""

    def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
        if name in _registry:
            raise ValueError(f"benchmark {name!r} registered twice")
        _registry[name] = Benchmark(name, func, text, mpi)
        return func

    return decorate


def get(name: str) -> Benchmark:
    """The registered benchmark called `name` (imports all benchmark modules first)."""
    _load()
    try:
        return _registry[name]
    except KeyError:
        raise ValueError(f"unknown benchmark {name!r}; known: {', '.join(names())}") from None


def names() -> list[str]:
    _load()
    return sorted(_registry)


def _load() -> None:
    """Import the modules that register benchmarks (cheap: MPI starts only when one runs)."""
    from pimpi.bench import compare, network, osu, predict, render_job, scaling, traffic, tune, versus  # noqa: F401


def run(name: str, *, json_path: str | None = None, hostfile: str | None = None,
        quiet: bool = False, **options: Any) -> dict[str, Any]:
    """Run benchmark `name`, attach the machine's state, print on rank 0, write JSON atomically.

    Every rank returns the whole result document.
    """
    bench = get(name)
    comm = None
    if bench.mpi:
        from pimpi.mpi import world

        comm = world()
    state = machine_state(ranks=comm.size if comm is not None else None, hostfile=hostfile)
    if comm is not None:
        state["nodes"] = node_states(comm, "before")
    results = bench.func(comm, **options) if bench.mpi else bench.func(None, hostfile=hostfile, **options)
    finish_state(state)
    if comm is not None:
        node_states(comm, "after", state["nodes"])
    doc = document(name, state, results)
    if comm is None or comm.rank == 0:
        if not quiet:
            sys.stdout.write(bench.text(results).rstrip("\n") + "\n")
            sys.stdout.flush()
        if json_path:
            write_json(json_path, doc)
    if comm is not None:
        comm.Barrier()
    return doc
