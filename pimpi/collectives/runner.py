"""Run an unmodified mpi4py script with MPI.COMM_WORLD's collectives on pimpi's algorithms."""

from __future__ import annotations

import runpy
import sys
from typing import Any

from .registry import ALGORITHMS

__all__ = ["parse_algorithms", "run_script"]


def parse_algorithms(choices: tuple[str, ...] | list[str]) -> dict[str, str]:
    """'ring' (every collective that has a ring) or 'allreduce=ring' -> {collective: algorithm}.

    ValueError naming a choice that matches nothing.
    """
    chosen: dict[str, str] = {}
    for choice in choices:
        collective, _, algorithm = choice.rpartition("=")
        if collective:
            if collective not in ALGORITHMS:
                raise ValueError(f"--algorithm {choice}: unknown collective {collective!r}; "
                                 f"choose from {', '.join(ALGORITHMS)}")
            if algorithm not in ALGORITHMS[collective]:
                raise ValueError(f"--algorithm {choice}: {collective} has "
                                 f"{', '.join(ALGORITHMS[collective])}")
            chosen[collective] = algorithm
            continue
        matches = [c for c, names in ALGORITHMS.items() if algorithm in names]
        if not matches:
            known = sorted({name for names in ALGORITHMS.values() for name in names})
            raise ValueError(f"--algorithm {choice}: no collective has it; choose from {', '.join(known)}")
        chosen.update({c: algorithm for c in matches if c not in chosen})
    return chosen


def run_script(script: str, args: list[str], algorithms: dict[str, str], trace: bool = False) -> Any:
    """Run `script` as __main__ with MPI.COMM_WORLD replaced by a pimpi Comm; return that Comm.

    Every rank calls this. The script sees sys.argv = [script, *args].
    """
    from mpi4py import MPI

    from .comm import Comm

    world = Comm(MPI.COMM_WORLD, algorithms, trace=trace)
    real, saved_argv = MPI.COMM_WORLD, sys.argv
    MPI.COMM_WORLD = world
    sys.argv = [script, *args]
    try:
        runpy.run_path(script, run_name="__main__")
    finally:
        MPI.COMM_WORLD, sys.argv = real, saved_argv
    return world
