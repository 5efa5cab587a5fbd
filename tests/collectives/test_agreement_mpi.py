"""The agreement before a collective: a hash of what must match, named when it differs, and
the trusted fast path (check=False) that skips it."""

from __future__ import annotations

import numpy as np
import pytest

import pimpi.collectives as library
from pimpi.collectives import ALGORITHMS
from pimpi.collectives.call import Differ, detail, name_difference, verdict, vote
from pimpi.collectives.cases import Case, compare, prepare
from pimpi.testing import assert_all_ranks

NO_ALGORITHM = ("scatterv", "gatherv")


def test_a_vote_tells_a_difference_and_the_detail_names_it():
    """Serial: the MAX of two ranks' votes shows a difference exactly when values differ."""
    same_a = (("root", 0), ("buffer sizes (bytes)", 40))
    same_b = (("root", 1), ("buffer sizes (bytes)", 40))
    assert verdict(np.maximum(vote(0, None, same_a), vote(1, None, same_a)), same_a) is False
    with pytest.raises(Differ):
        verdict(np.maximum(vote(0, None, same_a), vote(1, None, same_b)), same_a)
    details = np.maximum(detail(same_a), detail(same_b))
    assert "different root" in str(name_difference(details, same_a))
    assert verdict(np.maximum(vote(0, None, same_a), vote(1, None, same_a, refuse=True)), same_a)


@pytest.mark.mpi
@pytest.mark.timeout(120)
def test_a_different_root_on_one_rank_is_named_on_every_rank(comm):
    """The hash round finds the difference, the detail round names it; the comm stays usable."""
    from pimpi.collectives import bcast, ibcast

    p = comm.size
    if p == 1:
        pytest.skip("one rank cannot pass a different root")
    root = 1 if comm.rank == p - 1 else 0
    for run in (lambda b: bcast(comm, b, root), lambda b: ibcast(comm, b, root).Wait()):
        try:
            run(np.zeros(3))
            error = None
        except ValueError as exc:
            error = str(exc)
        assert_all_ranks(comm, error is not None and "different root" in error, f"got {error!r}")
    buf = np.arange(3.0) if comm.rank == 0 else np.zeros(3)
    bcast(comm, buf, 0)
    assert_all_ranks(comm, np.array_equal(buf, np.arange(3.0)), f"then got {buf}")


def _pairs():
    for collective in (*ALGORITHMS, *NO_ALGORITHM):
        for algorithm in ALGORITHMS.get(collective, (None,)):
            yield collective, algorithm


PAIRS = list(_pairs())


@pytest.mark.mpi
@pytest.mark.timeout(300)
def test_the_trusted_fast_path_gives_mpis_answers(comm):
    """check=False runs every collective and algorithm without the agreement: same answers."""
    problems = []
    for collective, algorithm in PAIRS:
        for length in (0, 5):
            case = Case(collective, comm.size, comm.size - 1, length, "float64")
            prepared = prepare(comm, case)
            kwargs = dict(prepared.kwargs, check=False)
            if algorithm is not None:
                kwargs["algorithm"] = algorithm
            getattr(library, collective)(comm, *prepared.args, **kwargs)
            problem = compare(prepared, None)
            if problem:
                problems.append(f"{collective}[{algorithm}] n={length}: {problem}")
    assert_all_ranks(comm, not problems, "; ".join(problems[:3]))


@pytest.mark.mpi
@pytest.mark.timeout(60)
def test_the_trusted_fast_path_still_checks_this_ranks_arguments(comm):
    """An error every rank makes is raised on every rank without any message."""
    from pimpi.collectives import allreduce

    with pytest.raises(TypeError, match="recvbuf has dtype float32"):
        allreduce(comm, np.ones(3), np.zeros(3, np.float32), check=False)
    out = np.zeros(3)
    allreduce(comm, np.ones(3), out, check=False)
    assert_all_ranks(comm, np.array_equal(out, np.full(3, comm.size)), f"got {out}")


@pytest.mark.mpi
@pytest.mark.timeout(60)
def test_a_trusted_dropin_comm_runs_pimpi_and_names_what_it_cannot_run(comm):
    from mpi4py import MPI

    from pimpi.collectives import Comm

    trusted = Comm(comm, check=False)
    x = np.arange(4, dtype=np.int32) + comm.rank
    out = np.zeros(4, np.int32)
    trusted.Allreduce([x, MPI.INT], [out, MPI.INT], op=MPI.SUM)
    want = np.zeros(4, np.int32)
    comm.Allreduce(x, want, op=MPI.SUM)
    assert_all_ranks(comm, np.array_equal(out, want) and trusted.counts["Allreduce"]["pimpi"] == 1,
                     f"got {out}, counts {trusted.counts}")
    pair = np.zeros(2, dtype=[("v", "f8"), ("i", "i4")])
    with pytest.raises(TypeError, match="pimpi cannot run this call"):
        trusted.Allreduce(MPI.IN_PLACE, [pair, MPI.DOUBLE_INT], op=MPI.MAXLOC)
    assert trusted.Dup().check is False


def _v_calls(comm, spoil: bool):
    """(name, call) of scatterv, gatherv and alltoallv where, with `spoil`, only the last
    rank's own count is off: it alone knows, yet every rank must raise before a message moves."""
    from pimpi.collectives import alltoallv, gatherv, scatterv

    p, rank, last = comm.size, comm.rank, comm.size - 1
    counts = [2] * p
    mine = 0 if spoil and rank == last else 2  # zero: root's message would be left unreceived
    root_send = np.arange(2.0 * p)
    yield "scatterv", lambda: scatterv(comm, root_send if rank == 0 else None,
                                       counts if rank == 0 else None, np.zeros(mine), 0)
    yield "gatherv", lambda: gatherv(comm, np.full(mine, float(rank)),
                                     np.zeros(2 * p) if rank == 0 else None,
                                     counts if rank == 0 else None, 0)
    recvcounts = list(counts)
    if spoil and rank == last:
        recvcounts[0] = 1  # rank 0 sends it 2 items
    yield "alltoallv", lambda: alltoallv(comm, np.full(2 * p, float(rank)), counts,
                                         np.zeros(2 * p), recvcounts)


@pytest.mark.mpi
@pytest.mark.timeout(120)
def test_a_count_only_one_rank_gets_wrong_in_a_v_collective_is_agreed(comm):
    """scatterv/gatherv: root's counts[r] against rank r's buffer; alltoallv: rank i's
    sendcounts[j] against rank j's recvcounts[i]. Every rank raises naming both sides,
    and the same calls then run right on the same communicator."""
    if comm.size == 1:
        pytest.skip("one rank states every count itself")
    last = comm.size - 1
    problems = []
    for (name, bad), (_, good) in zip(_v_calls(comm, True), _v_calls(comm, False)):
        try:
            bad()
            error = None
        except ValueError as exc:
            error = str(exc)
        side = f"rank {last}'s" if name != "alltoallv" else f"rank {last}'s recvcounts[0]"
        if error is None or side not in error or "disagree" not in error:
            problems.append(f"{name}: {error!r}")
        good()
    assert_all_ranks(comm, not problems, "; ".join(problems))
