"""Traces under mpirun: message counts and rounds match the theory, pickling is refused."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import numpy as np
import pytest

from pimpi.collectives import cost
from pimpi.collectives.trace import ForbiddenCall, TracingComm, gather_trace, trace_collective, trace_svg
from pimpi.testing import assert_all_ranks


def _agree(comm, report, check) -> None:
    """Evaluate `check(report)` on rank 0 and share the verdict, so no rank waits alone."""
    detail = None
    if comm.rank == 0:
        try:
            check(report)
        except AssertionError as exc:
            detail = str(exc) or "assertion failed"
    detail = comm.bcast(detail, root=0)
    assert_all_ranks(comm, detail is None, detail or "")


@pytest.mark.mpi
def test_ring_allreduce_sends_2p_p_minus_1_messages(comm):
    p = comm.size
    report = trace_collective(comm, "allreduce", "ring", 4 * p + 3, "float64")

    def check(r):
        assert r.mismatch is None, r.mismatch
        assert len(r.trace.messages) == 2 * p * (p - 1)
        assert r.trace.rounds == 2 * (p - 1)
        assert r.trace.critical_path[0] == r.prediction[0] == 2 * (p - 1)

    _agree(comm, report, check)


@pytest.mark.mpi
@pytest.mark.timeout(120)
def test_two_phase_algorithms_label_their_phases_and_stay_within_their_model(comm):
    """Ring and Rabenseifner allreduce, van de Geijn bcast: reduce-scatter/scatter, then
    allgather; no library algorithm's critical path exceeds its cost() (no false warning)."""
    from pimpi.collectives import ALGORITHMS
    from pimpi.collectives.trace import model_warning

    p = comm.size
    expected = {("allreduce", "ring"): ["reduce-scatter", "allgather"],
                ("allreduce", "rabenseifner"): ["reduce-scatter", "allgather"],
                ("bcast", "scatter_allgather"): ["scatter", "allgather"]}
    for collective, algorithms in ALGORITHMS.items():
        for algorithm in algorithms:
            report = trace_collective(comm, collective, algorithm, 3 * p + 1, "float64")

            def check(r, key=(collective, algorithm)):
                assert r.mismatch is None, r.mismatch
                assert model_warning(r.trace, r.prediction) is None, (key, model_warning(r.trace, r.prediction))
                names = [name for name, _a, _b in r.trace.phases()]
                if key in expected and p > 1 and (p & (p - 1) == 0 or key[1] == "ring"):
                    assert names == expected[key], (key, names)
                elif key in expected and p > 1 and key[0] == "allreduce":  # folded first
                    assert names[0] == "fold" and names[-1] == "unfold", (key, names)

            _agree(comm, report, check)


@pytest.mark.mpi
def test_binomial_bcast_takes_ceil_log2_p_rounds_from_any_root(comm):
    p = comm.size
    for root in sorted({0, p - 1, p // 2}):
        report = trace_collective(comm, "bcast", "binomial", 100, "int32", root)

        def check(r, root=root):
            assert r.mismatch is None, r.mismatch
            assert r.trace.rounds == (p - 1).bit_length(), (root, r.trace.rounds)
            assert len(r.trace.messages) == p - 1
            assert all(m.src == root for m in r.trace.messages if m.round == 1)
            assert r.trace.critical_path == cost("bcast", "binomial", 400, p)

        _agree(comm, report, check)


@pytest.mark.mpi
def test_svg_of_a_real_run_has_one_arrow_per_message(comm):
    report = trace_collective(comm, "alltoall", "pairwise", 5, "complex128")

    def check(r):
        root = ET.fromstring(trace_svg(r.trace, r.title).split("\n", 1)[1])
        arrows = [e for e in root.iter("{http://www.w3.org/2000/svg}line") if e.get("class") == "msg"]
        assert len(arrows) == len(r.trace.messages) == comm.size * (comm.size - 1)

    _agree(comm, report, check)


@pytest.mark.mpi(min_size=2)
def test_isend_irecv_waitall_rounds_are_rebuilt_from_matching(comm):
    """Two ring shifts with Irecv/Isend/Waitall: the second shift is round 2 everywhere."""
    from mpi4py import MPI

    private = comm.Dup()
    tracer = TracingComm(private)
    rank, p = comm.rank, comm.size
    buf, got = np.full(3, rank, dtype=np.int64), np.empty(3, dtype=np.int64)
    for _ in range(2):
        reqs = [tracer.Irecv(got, source=(rank - 1) % p, tag=3), tracer.Isend(buf, dest=(rank + 1) % p, tag=3)]
        MPI.Request.Waitall(reqs)
        buf = got.copy()
    trace = gather_trace(comm, tracer.finish())
    private.Free()
    ok = bool(np.all(buf == (rank - 2) % p))
    if rank == 0:
        rounds = sorted(m.round for m in trace.messages)
        ok = ok and rounds == [1] * p + [2] * p and all(m.t_recv is not None for m in trace.messages)
    assert_all_ranks(comm, ok, "Waitall-completed receives were not traced in causal order")


@pytest.mark.mpi
def test_pickled_and_builtin_calls_are_refused_on_every_rank(comm):
    tracer = TracingComm(comm)
    seen = []
    for name, call in (("send", lambda: tracer.send(1, dest=0)), ("bcast", lambda: tracer.bcast(1)),
                       ("Allreduce", lambda: tracer.Allreduce(np.zeros(1), np.zeros(1)))):
        try:
            call()
        except ForbiddenCall as exc:
            seen.append((name, exc.kind, str(exc)))
    ok = [s[:2] for s in seen] == [("send", "pickled"), ("bcast", "pickled"), ("Allreduce", "builtin")]
    ok = ok and seen[0][2] == "pickled send() used; this exercise asks for buffer calls (Send/Recv)"
    assert_all_ranks(comm, ok, repr(seen))
    assert tracer.events == [] and tracer.size == comm.size and tracer.Get_rank() == comm.rank


@pytest.mark.mpi
@pytest.mark.timeout(120)
def test_nonblocking_schedules_are_traced_round_by_round(comm):
    """A traced iallreduce shows the ring's 2(p−1) rounds and phases; every schedule matches
    the built-in and stays within the cost() of the algorithm it follows."""
    from pimpi.collectives import NONBLOCKING
    from pimpi.collectives.trace import check_request, model_warning

    p = comm.size
    for name in NONBLOCKING:
        assert check_request(name, None, 0, p) == NONBLOCKING[name][1]
        report = trace_collective(comm, name, None, 2 * p + 1, "float64")

        def check(r, name=name):
            assert r.mismatch is None, (name, r.mismatch)
            assert model_warning(r.trace, r.prediction) is None, (name, r.trace.critical_path, r.prediction)
            if name == "iallreduce" and p > 1:
                assert r.trace.rounds == 2 * (p - 1) and len(r.trace.messages) == 2 * p * (p - 1)
                assert [n for n, _a, _b in r.trace.phases()] == ["reduce-scatter", "allgather"]

        _agree(comm, report, check)
    with pytest.raises(ValueError, match="one schedule"):
        check_request("iallreduce", "recursive_doubling", 0, p)
