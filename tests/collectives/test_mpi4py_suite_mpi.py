"""mpi4py's own collective tests (vendored from mpi4py 4.1.2, see mpi4py_suite/) run against
pimpi.collectives.Comm: every algorithm of every collective, at the harness's rank count.

The vendored modules see a stand-in for `MPI` whose COMM_WORLD and COMM_SELF are pimpi
Comms (so are their Dups). Each rank count runs one round: every collective gets its k-th
algorithm, k = ranks mod 4 (wrapping round), so over the harness's 2-5 ranks every
algorithm runs the whole suite (PIMPI_MPI4PY_ROUNDS=all runs every round at each size).
Buffers come from the array and numpy backends of mpi4py's arrayimpl (the numpy one has 17
element types); its GPU and DLPack backends are left out (no GPU here, and they test
buffer acquisition). To keep CI time modest, 1 and 2 ranks run every element type of both
backends, 3-5 ranks the numpy backend and a third of its element types each (together all).
With more than one rank the COMM_SELF classes are left out (they are the 1-rank run again).
Rank 0 prints, per collective, the calls pimpi ran and those it refused to MPI's built-in.
"""

from __future__ import annotations

import importlib
import os
import sys
import types
import unittest
from pathlib import Path

import pytest

from pimpi.testing import assert_all_ranks

SUITE = Path(__file__).resolve().parent / "mpi4py_suite"
MODULES = ("test_cco_buf", "test_cco_vec", "test_msgzero", "test_op")
BACKENDS = ("ArrayArray", "ArrayNumPy")


def _modules(size: int):
    """The vendored test modules, their arrays cut down for `size` ranks (see above)."""
    if str(SUITE) not in sys.path:
        sys.path.insert(0, str(SUITE))
    arrayimpl = importlib.import_module("arrayimpl")
    keep = BACKENDS if size <= 2 else ("ArrayNumPy",)
    arrayimpl.ArrayBackends[:] = [b for b in arrayimpl.ArrayBackends if b.__name__ in keep]
    if size > 2:
        for backend in arrayimpl.ArrayBackends:
            backend.TypeMap = {code: t for i, (code, t) in enumerate(backend.TypeMap.items())
                               if i % 3 == size % 3}
    return [importlib.import_module(name) for name in MODULES]


class _MPI(types.ModuleType):
    """`MPI` as the vendored tests see it: pimpi Comms for COMM_WORLD and COMM_SELF."""

    def __init__(self, real, world, self_comm):
        super().__init__("MPI")
        self._real, self.COMM_WORLD, self.COMM_SELF = real, world, self_comm

    def __getattr__(self, name):
        return getattr(self._real, name)


def _install(modules, algorithms, counts, refusals):
    """Point every vendored module and test class at pimpi Comms; return how to undo it."""
    from mpi4py import MPI

    from pimpi.collectives import Comm

    world, self_comm = Comm(MPI.COMM_WORLD, algorithms), Comm(MPI.COMM_SELF, algorithms)
    for comm in (world, self_comm):
        comm.counts, comm.refusals = counts, refusals
    stand_in = _MPI(MPI, world, self_comm)
    undo = []
    for module in modules:
        undo.append((module, "MPI", module.MPI))
        module.MPI = stand_in
        for obj in vars(module).values():
            if isinstance(obj, type) and issubclass(obj, unittest.TestCase) and "COMM" in vars(obj):
                real = vars(obj)["COMM"]
                if isinstance(real, MPI.Comm):
                    undo.append((obj, "COMM", real))
                    obj.COMM = world if real == MPI.COMM_WORLD else self_comm
    return undo


def _on_self(test: unittest.TestCase) -> bool:
    from mpi4py import MPI

    comm = getattr(type(test), "COMM", None)
    return "Self" in type(test).__name__ or (comm is not None and comm == MPI.COMM_SELF)


def _run_round(modules, algorithms, counts, refusals, size: int) -> unittest.TestResult:
    undo = _install(modules, algorithms, counts, refusals)
    try:
        loaded = unittest.TestSuite(unittest.defaultTestLoader.loadTestsFromModule(m) for m in modules)
        suite = unittest.TestSuite(t for group in loaded for sub in group for t in sub
                                   if size == 1 or not _on_self(t))
        result = unittest.TestResult()
        suite.run(result)
    finally:
        for owner, name, value in reversed(undo):
            setattr(owner, name, value)
    return result


@pytest.mark.mpi
@pytest.mark.timeout(900)
def test_mpi4py_collective_suite_on_every_algorithm(comm, capsys):
    from pimpi.collectives import ALGORITHMS

    modules = _modules(comm.size)
    counts: dict[str, dict[str, int]] = {}
    refusals: dict[str, int] = {}
    rounds = max(len(a) for a in ALGORITHMS.values())
    chosen = range(rounds) if os.environ.get("PIMPI_MPI4PY_ROUNDS") == "all" else [comm.size % rounds]
    problems, ran = [], 0
    for k in chosen:
        algorithms = {c: a[k % len(a)] for c, a in ALGORITHMS.items()}
        result = _run_round(modules, algorithms, counts, refusals, comm.size)
        ran += result.testsRun
        for test, trace in result.failures + result.errors:
            problems.append(f"round {k} {test.id()}: {trace.strip().splitlines()[-1]}")
        comm.Barrier()
    total = {name: {key: comm.allreduce(value) for key, value in entry.items()}
             for name, entry in sorted(counts.items())}
    if comm.rank == 0:
        lines = [f"mpi4py {__import__('mpi4py').__version__} collective suite on pimpi, "
                 f"{comm.size} ranks, round {'/'.join(map(str, chosen))} of {rounds}, {ran} tests run: "
                 "calls (all ranks)"]
        for name, entry in total.items():
            lines.append(f"  {name:<22} pimpi {entry['pimpi']:>7}   refused {entry['refused']:>5}")
        for reason, n in sorted(refusals.items(), key=lambda item: -item[1]):
            lines.append(f"  refused on rank 0: {n} x {reason}")
        with capsys.disabled():
            print("\n" + "\n".join(lines))
    assert_all_ranks(comm, not problems, "; ".join(problems[:5]))
    assert sum(e["pimpi"] for e in total.values()) > 0
