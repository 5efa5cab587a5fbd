"""Non-blocking collectives: schedules progressed by Test/Wait give the built-in's answer."""

from __future__ import annotations

import numpy as np
import pytest

from pimpi.testing import assert_all_ranks


@pytest.mark.mpi
@pytest.mark.timeout(120)
def test_schedules_overlap_and_match_the_builtins(comm):
    """Several schedules in flight at once on one communicator, completed in reverse order."""
    from mpi4py import MPI

    from pimpi.collectives import Schedule, iallgather, iallreduce, ialltoall, ibarrier, ibcast

    p, rank = comm.size, comm.rank
    problems = []
    for n in (0, 1, 7, 1000):
        x = np.arange(n, dtype=np.float64) + rank
        root = (n + 1) % p
        buf = x.copy() if rank == root else np.zeros(n)
        summed, gathered, swapped = np.zeros(n), np.zeros(n * p), np.zeros(n * p)
        mine = np.arange(n * p, dtype=np.float64) * (rank + 1)
        requests = [ibcast(comm, buf, root), iallreduce(comm, x, summed, MPI.SUM),
                    iallgather(comm, x, gathered), ialltoall(comm, mine, swapped), ibarrier(comm)]
        requests[0].Test()  # some progress, then the program would compute here
        Schedule.Waitall(list(reversed(requests)))
        want_bcast, want_sum = (x.copy() if rank == root else np.zeros(n)), np.zeros(n)
        want_gather, want_swap = np.zeros(n * p), np.zeros(n * p)
        comm.Bcast(want_bcast, root)
        comm.Allreduce(x, want_sum, MPI.SUM)
        comm.Allgather(x, want_gather)
        comm.Alltoall(mine, want_swap)
        for name, got, want in (("ibcast", buf, want_bcast), ("iallreduce", summed, want_sum),
                                ("iallgather", gathered, want_gather), ("ialltoall", swapped, want_swap)):
            if not np.allclose(got, want):
                problems.append(f"{name} n={n}")
        inplace = x.copy()
        iallreduce(comm, MPI.IN_PLACE, inplace, MPI.MAX).Wait()
        if not np.array_equal(inplace, np.arange(n) + p - 1):
            problems.append(f"iallreduce IN_PLACE n={n}")
    assert_all_ranks(comm, not problems, ", ".join(problems))


@pytest.mark.mpi
@pytest.mark.timeout(60)
def test_a_bad_argument_on_one_rank_surfaces_from_wait_on_every_rank(comm):
    from pimpi.collectives import iallreduce

    rank, p = comm.rank, comm.size
    out = np.zeros(4 if rank != p - 1 else 5)  # the last rank's recvbuf is one item long
    try:
        iallreduce(comm, np.ones(4), out, "SUM").Wait()
        error = None
    except ValueError as exc:
        error = str(exc)
    assert_all_ranks(comm, error is not None, "no error on this rank")
    good = np.zeros(4)
    iallreduce(comm, np.ones(4), good, "SUM").Wait()
    assert_all_ranks(comm, np.array_equal(good, np.full(4, p)), f"then got {good}")
