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


@pytest.mark.mpi
@pytest.mark.timeout(120)
def test_the_dropin_comm_runs_the_nonblocking_collectives_on_pimpis_schedules(comm):
    """Ibcast, Iallreduce, Iallgather, Ialltoall, Ibarrier through Comm give the built-in's
    answers and are counted as pimpi's; a non-commutative op falls back to MPI's built-in
    on every rank; a bad buffer on one rank raises from Wait on every rank."""
    from mpi4py import MPI

    from pimpi.collectives import Comm, Schedule

    p, rank = comm.size, comm.rank
    pc = Comm(comm)
    problems = []
    for n in (0, 3, 100):
        x = np.arange(n, dtype=np.float64) + rank
        buf = x.copy() if rank == 0 else np.zeros(n)
        summed, gathered, swapped = np.zeros(n), np.zeros(n * p), np.zeros(n * p)
        mine = np.arange(n * p, dtype=np.float64) * (rank + 1)
        requests = [pc.Ibcast([buf, MPI.DOUBLE], 0), pc.Iallreduce(x, summed, MPI.SUM),
                    pc.Iallgather(x, gathered), pc.Ialltoall(mine, swapped), pc.Ibarrier()]
        Schedule.Waitall(requests)
        want = {"Ibcast": x.copy() if rank == 0 else np.zeros(n), "Iallreduce": np.zeros(n),
                "Iallgather": np.zeros(n * p), "Ialltoall": np.zeros(n * p)}
        comm.Bcast(want["Ibcast"], 0)
        comm.Allreduce(x, want["Iallreduce"], MPI.SUM)
        comm.Allgather(x, want["Iallgather"])
        comm.Alltoall(mine, want["Ialltoall"])
        for name, got in (("Ibcast", buf), ("Iallreduce", summed), ("Iallgather", gathered),
                          ("Ialltoall", swapped)):
            if not np.array_equal(got, want[name]):
                problems.append(f"{name} n={n}: got {got[:4]}")
    if any(pc.counts[name] != {"pimpi": 3, "refused": 0}
           for name in ("Ibcast", "Iallreduce", "Iallgather", "Ialltoall", "Ibarrier")):
        problems.append(f"counts {pc.counts}")
    def keep_first(inbuf, inoutbuf, _datatype):  # a op b = a: only rank order tells
        np.frombuffer(inoutbuf, "f8")[:] = np.frombuffer(inbuf, "f8")

    first = MPI.Op.Create(keep_first, commute=False)
    pair = MPI.DOUBLE.Create_contiguous(2).Commit()
    try:
        out = np.zeros(2)
        pc.Iallreduce(np.full(2, rank + 1.0), out, first).Wait()  # the ring refuses it
        if pc.counts["Iallreduce"]["refused"] != 1 or not np.array_equal(out, np.ones(2)):
            problems.append(f"non-commutative: {out}, {pc.counts['Iallreduce']}")
        buf = np.arange(2.0) if rank == 0 else np.zeros(2)
        spec = [buf, 1, pair] if rank == 0 else [buf, MPI.DOUBLE]  # a derived type on root only
        pc.Ibcast(spec, 0).Wait()
        if pc.counts["Ibcast"]["refused"] != 1 or not np.array_equal(buf, np.arange(2.0)):
            problems.append(f"derived type on root: {buf}, {pc.counts['Ibcast']}")
    finally:
        first.Free()
        pair.Free()
    try:
        pc.Iallgather(np.ones(2), np.zeros(2 * p + (rank == p - 1))).Wait()
        error = None
    except ValueError as exc:
        error = str(exc)
    if p > 1 and error is None:
        problems.append("a bad recvbuf on the last rank raised nothing here")
    again = np.zeros(p)
    pc.Iallgather(np.full(1, float(rank)), again).Wait()
    if not np.array_equal(again, np.arange(p, dtype=float)):
        problems.append(f"then Iallgather gave {again}")
    assert_all_ranks(comm, not problems, "; ".join(problems))
