"""`run_doctor` under mpirun: one consistent record per rank, the same report everywhere."""

from __future__ import annotations

import os
import socket

import pytest

from pimpi.cluster.doctor import run_doctor
from pimpi.testing import assert_all_ranks


@pytest.mark.mpi
def test_run_doctor_returns_one_record_per_rank_on_every_rank(comm):
    report = run_doctor(comm)
    records = report.records
    mine = records[comm.rank] if len(records) == comm.size else {}
    ok = (
        [r["rank"] for r in records] == list(range(comm.size))
        and mine.get("hostname") == socket.gethostname()
        and mine.get("cwd") == os.getcwd()
        and (mine.get("mpi_library") or "").startswith(("Open MPI", "MPICH"))
        and all(set(r["sees"]) == {r["hostname"] for r in records} for r in records)
    )
    everyone = comm.allgather((report.problems, [r["hostname"] for r in records]))
    ok = ok and all(item == everyone[0] for item in everyone)
    # On one machine all ranks share a hostname: never a resolution problem.
    ok = ok and not [p for p in report.problems if "resolve" in p or "loopback" in p]
    assert_all_ranks(comm, ok, f"problems {report.problems}, ranks {[r['rank'] for r in records]}")


@pytest.mark.mpi(min_size=2)
def test_run_doctor_with_pingmatrix_shares_the_matrix(comm):
    report = run_doctor(comm, pingmatrix=True, sizes=(8, 4096), loops=3)
    matrix = report.matrix
    n = comm.size
    ok = (
        matrix is not None
        and len(matrix["nodes"]) == n
        and all(matrix["latency"][i][j] > 0 for i in range(n) for j in range(n) if i != j)
    )
    same = comm.allgather(matrix)
    ok = ok and all(m == same[0] for m in same)
    assert_all_ranks(comm, ok, f"matrix {matrix}")
