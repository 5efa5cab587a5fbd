"""Ping-pong and the ping matrix under mpirun: positive latencies, results where documented."""

from __future__ import annotations

import math

import pytest

from pimpi.cluster.pingpong import pingmatrix, pingpong
from pimpi.testing import assert_all_ranks

SIZES = [8, 1024, 65536]


def _rows_ok(rows):
    return (
        rows is not None
        and [r["size"] for r in rows] == SIZES
        and all(r["loops"] == 5 for r in rows)
        and all(0 < r["latency_min"] <= r["latency"] and math.isfinite(r["latency"]) for r in rows)
        and all(r["bandwidth"] > 0 for r in rows)
    )


@pytest.mark.mpi(min_size=2)
def test_pingpong_result_on_rank_a_and_rank_0(comm):
    a, b = comm.size - 1, 0
    rows = pingpong(comm, a, b, SIZES, loops=5, skip=1)
    expected = comm.rank in (a, 0)
    ok = _rows_ok(rows) if expected else rows is None
    assert_all_ranks(comm, ok, f"rank {comm.rank} got {rows}")


@pytest.mark.mpi(min_size=3)
def test_pingpong_between_two_ranks_that_are_not_0(comm):
    rows = pingpong(comm, 1, 2, SIZES, loops=5, skip=1)
    everyone = comm.allgather(rows)
    ok = _rows_ok(rows) if comm.rank in (0, 1) else rows is None
    ok = ok and everyone[0] == everyone[1]  # rank 0 got exactly rank a's rows
    assert_all_ranks(comm, ok, f"rank {comm.rank} got {rows}")


@pytest.mark.mpi
def test_pingmatrix_measures_every_pair_once(comm):
    result = pingmatrix(comm, (8, 4096), loops=5, skip=1)
    if comm.rank != 0:
        assert_all_ranks(comm, result is None, f"got {result}")
        return
    n = comm.size  # one machine: every rank is its own entry
    lat, bw = result["latency"], result["bandwidth"]
    ok = (
        result["ranks"] == list(range(n))
        and len(result["nodes"]) == n
        and len(result["links"]) == n * (n - 1) // 2
        and all(lat[i][i] is None and bw[i][i] is None for i in range(n))
        and all(lat[i][j] > 0 and lat[i][j] == lat[j][i] and bw[i][j] > 0
                for i in range(n) for j in range(n) if i != j)
        and all(link["alpha"] is not None and link["beta"] is not None for link in result["links"])
    )
    assert_all_ranks(comm, ok, f"got {result}")
