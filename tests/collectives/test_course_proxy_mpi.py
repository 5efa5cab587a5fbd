"""The course exercises' recording communicator under mpirun: made communicators are recorded, rules hold."""

from __future__ import annotations

import numpy as np
import pytest

from pimpi.collectives.exercises.course import RuleBroken, Rules, Work, wrap
from pimpi.collectives.trace import TracingComm
from pimpi.testing import assert_all_ranks


def _run(comm, rules, func, *args):
    """`func` wrapped with `rules` on a fresh TracingComm: (result or the RuleBroken text, events)."""
    private = comm.Dup()
    tracer = TracingComm(private)
    try:
        result = wrap(rules, func)(tracer, *args)
    except RuleBroken as exc:
        result = exc.advice()
    events = tracer.finish()
    private.Free()
    return result, events


@pytest.mark.mpi
def test_messages_on_a_split_communicator_are_logged_with_world_ranks(comm):
    def ring_in_halves(c):
        half = c.Split(color=c.Get_rank() % 2, key=-c.Get_rank())  # reversed order inside each half
        me, n = half.Get_rank(), half.Get_size()
        got = np.zeros(1)
        half.Sendrecv(np.array([float(c.Get_rank())]), dest=(me + 1) % n, recvbuf=got, source=(me - 1) % n)
        half.Free()
        return got[0]

    result, events = _run(comm, Rules(), ring_in_halves)
    rank, size = comm.Get_rank(), comm.Get_size()
    mine = sorted((r for r in range(size) if r % 2 == rank % 2), reverse=True)  # the half, in its order
    me = mine.index(rank)
    right, left = mine[(me + 1) % len(mine)], mine[(me - 1) % len(mine)]
    sends = [e.peer for e in events if e.kind == "S"]
    recvs = [e.peer for e in events if e.kind == "R"]
    ok = result == left and sends == [right] and recvs == [left]
    assert_all_ranks(comm, ok, f"rank {rank}: got {result}, sends {sends}, receives {recvs}; "
                               f"expected from {left}, to {right}")


@pytest.mark.mpi
def test_collectives_allowed_only_on_made_communicators(comm):
    rules = Rules(allowed=("Allreduce",), allowed_on="new")

    def on_world(c):
        out = np.zeros(1)
        c.Allreduce(np.ones(1), out)
        return out[0]

    def on_dup(c):
        d = c.Dup()
        out = np.zeros(1)
        d.Allreduce(np.ones(1), out)
        d.Free()
        return out[0]

    def bcast(c):
        d = c.Dup()
        try:
            d.Bcast(np.ones(1))
        finally:
            d.Free()

    refused, _ = _run(comm, rules, on_world)
    summed, _ = _run(comm, rules, on_dup)
    other, _ = _run(comm, rules, bcast)
    ok = (isinstance(refused, str) and "on the communicator it was given" in refused
          and summed == comm.Get_size()
          and "uses built-in comm.Bcast; this exercise allows only Allreduce" in other)
    assert_all_ranks(comm, ok, f"{refused!r} {summed!r} {other!r}")


@pytest.mark.mpi
def test_cartesian_grid_and_window_accept_the_proxy(comm):
    from mpi4py import MPI

    def grid_and_window(c):
        cart = c.Create_cart([c.Get_size()], periods=[True], reorder=False)
        source, dest = cart.Shift(0, 1)
        kind = isinstance(cart, MPI.Cartcomm)
        cart.Free()
        out = np.zeros(1)
        win = MPI.Win.Create(out, disp_unit=out.itemsize, comm=c)
        win.Fence()
        win.Put(np.array([float(c.Get_rank())]), dest)
        win.Fence()
        win.Free()
        return kind, source, out[0]

    required = Rules(required=(), max_sends=0)
    (kind, source, got), events = _run(comm, required, grid_and_window)
    ok = kind and source == (comm.Get_rank() - 1) % comm.Get_size() and got == source and events == []
    assert_all_ranks(comm, ok, f"rank {comm.Get_rank()}: {kind} {source} {got} {events}")


@pytest.mark.mpi
def test_work_knows_whether_a_nonblocking_collective_is_in_flight(comm):
    rules = Rules(allowed=("Iallreduce",))

    def overlapped(c, work):
        out = np.zeros(1)
        req = c.Iallreduce(np.ones(1), out)
        work()
        req.Wait()
        return out[0]

    def serial(c, work):
        out = np.zeros(1)
        c.Iallreduce(np.ones(1), out).Wait()
        work()
        return out[0]

    good, _ = _run(comm, rules, overlapped, Work(lambda: None))
    late, _ = _run(comm, rules, serial, Work(lambda: None))
    ok = good == comm.Get_size() and "while no non-blocking collective was in flight" in str(late)
    assert_all_ranks(comm, ok, f"{good!r} {late!r}")
