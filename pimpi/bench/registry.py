"""Every benchmark by name, in one place; one runner wraps them all.

Members mark their function with `@benchmark` (pimpi.bench.benchmark) and never import this
module: the registry imports a member only when its benchmark is asked for, so listing the
names (`--help`) loads nothing.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

from pimpi.bench.benchmark import Benchmark

__all__ = ["Benchmark", "BENCHMARKS", "get", "names", "run"]


# name -> "module:function" of every benchmark.
BENCHMARKS = {
    "collectives": "pimpi.bench.osu:collectives",
    "compare": "pimpi.bench.compare:compare",
    "pingmatrix": "pimpi.bench.network:pingmatrix_bench",
    "pingpong": "pimpi.bench.network:pingpong_bench",
    "predict": "pimpi.bench.predict:predict",
    "render-job": "pimpi.bench.render_job:render_job",
    "scaling": "pimpi.bench.scaling:scaling",
    "traffic": "pimpi.bench.traffic:traffic",
    "tune": "pimpi.bench.tune:tune",
    "versus": "pimpi.bench.versus:versus",
}


def get(name: str) -> Benchmark:
    """The benchmark called `name` (its module imported now)."""
    if name not in BENCHMARKS:
        raise ValueError(f"unknown benchmark {name!r}; known: {', '.join(names())}")
    module, _, attr = BENCHMARKS[name].partition(":")
    func = getattr(importlib.import_module(module), attr)
    return Benchmark(name, func, func.benchmark_text, func.benchmark_mpi)


def names() -> list[str]:
    """Every benchmark's name, sorted."""
    return sorted(BENCHMARKS)


def run(name: str, *, json_path: str | None = None, hostfile: str | None = None,
        quiet: bool = False, **options: Any) -> dict[str, Any]:
    """Run benchmark `name`, attach the machine's state, print on rank 0, write JSON atomically.

    Every rank returns the whole result document.
    """
    from pimpi.bench.machine import finish_state, machine_state, node_states
    from pimpi.bench.schema import document, write_json

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
