"""MPI semantics beyond the plain call: errors every rank agrees on, MPI.IN_PLACE, user ops, strides."""

from __future__ import annotations

import numpy as np
import pytest

import pimpi.collectives as library
from pimpi.collectives import ALGORITHMS
from pimpi.collectives.cases import ROOTED, Case, compare, prepare
from pimpi.testing import assert_all_ranks

NO_ALGORITHM = ("scatterv", "gatherv")  # one algorithm, no algorithm= keyword
COLLECTIVES = (*ALGORITHMS, *NO_ALGORITHM)
# which positional argument this rank really uses (scatter's sendbuf is ignored off root)
USED = {"scatter": 1, "scatterv": 2}


def _pairs():
    for collective in COLLECTIVES:
        for algorithm in ALGORITHMS.get(collective, (None,)):
            yield collective, algorithm


PAIRS = list(_pairs())


def _corruptions(collective: str, p: int):
    """(name, how to spoil this rank's (args, kwargs)) for the arguments `collective` takes."""
    out = []
    alone = collective == "bcast" and p == 1  # one rank: any buffer is its own broadcast
    if collective != "barrier" and not alone:
        def dtype(args, kwargs, i=USED.get(collective, 0)):
            args[i] = args[i].astype(np.float32)

        out.append(("dtype", dtype))
    if collective not in ("barrier", "alltoallv") and not alone:  # a longer alltoallv buffer is legal
        def size(args, kwargs, i=USED.get(collective, 0)):
            args[i] = np.append(args[i], args[i][:1] if args[i].size else np.zeros(1, args[i].dtype))

        out.append(("size", size))
    if collective not in NO_ALGORITHM:
        out.append(("algorithm", lambda args, kwargs: kwargs.update(algorithm="nosuch")))
    if collective in ROOTED:
        out.append(("root", lambda args, kwargs: kwargs.update(root=p)))
    if collective in ("reduce", "gather", "scatter") and p > 1:
        def in_place(args, kwargs, i=1 if collective == "scatter" else 0):
            from mpi4py import MPI

            args[i] = MPI.IN_PLACE

        out.append(("IN_PLACE off root", in_place))
    return out


def _call(comm, collective, algorithm, case, spoil=None):
    """Run `collective` on `case`; `spoil` changes the last rank's arguments. (error, problem)."""
    prepared = prepare(comm, case)
    args, kwargs = list(prepared.args), dict(prepared.kwargs)
    if algorithm is not None:
        kwargs["algorithm"] = algorithm
    if spoil is not None and comm.rank == comm.size - 1:
        spoil(args, kwargs)
    try:
        getattr(library, collective)(comm, *args, **kwargs)
    except (TypeError, ValueError) as exc:
        return f"{type(exc).__name__}: {exc}", None
    return None, compare(prepared, None)


@pytest.mark.mpi
@pytest.mark.timeout(300)
@pytest.mark.parametrize("collective,algorithm", PAIRS, ids=[f"{c}-{a}" for c, a in PAIRS])
def test_bad_arguments_on_one_rank_fail_on_every_rank_and_leave_the_comm_usable(comm, collective,
                                                                                algorithm):
    """The last rank alone passes a bad argument: every rank raises, none hangs, and the next
    correct call on the same communicator gives MPI's answer."""
    problems: list[str] = []
    p = comm.size
    case = Case(collective, p, 0, 5, "float64")
    for name, spoil in _corruptions(collective, p):
        error, _ = _call(comm, collective, algorithm, case, spoil)
        errors = comm.allgather(error)
        if not all(errors):
            problems.append(f"{name}: raised on ranks {[r for r, e in enumerate(errors) if e]} only")
        elif comm.rank == 0 and name != "algorithm" and "rank" not in errors[0] and p > 1 \
                and "ranks passed different" not in errors[0]:
            problems.append(f"{name}: rank 0's message does not say which rank: {errors[0]}")
        error, problem = _call(comm, collective, algorithm, case)
        if error or problem:
            problems.append(f"after {name}: {error or problem}")
    assert_all_ranks(comm, not problems, f"{collective}[{algorithm}]: " + "; ".join(problems[:3]))


IN_PLACE_CASES = ("reduce", "gather", "scatter", "scatterv", "gatherv", "allreduce", "allgather",
                  "allgatherv", "alltoall", "alltoallv", "reduce_scatter_block", "reduce_scatter",
                  "scan", "exscan")


def _in_place(comm, collective, args, kwargs, root):
    """MPI.IN_PLACE where MPI allows it for `collective`, with MPI's meaning; returns the
    buffer the result must be read from."""
    from mpi4py import MPI

    rank, p = comm.rank, comm.size
    if collective in ("reduce", "gather", "gatherv"):
        if rank != root:
            return args[1]
        send, recv = args[0], args[1]
        if collective == "gather":
            m = send.size
            recv[root * m:(root + 1) * m] = send
        elif collective == "gatherv":
            counts = args[2]
            start = sum(counts[:root])
            recv[start:start + counts[root]] = send
        else:
            recv[:] = send
        args[0] = MPI.IN_PLACE
        return recv
    if collective in ("scatter", "scatterv"):
        i = 1 if collective == "scatter" else 2
        if rank != root:
            return args[i]
        recv = args[i]
        args[i] = MPI.IN_PLACE
        send, m = args[0], recv.size

        def root_result(_recv=recv):
            start = root * m if collective == "scatter" else sum(args[1][:root])
            return send[start:start + m]

        return root_result
    send, recv = args[0], args[1] if collective != "alltoallv" else args[2]
    if collective == "allgather":
        m = send.size
        recv[rank * m:(rank + 1) * m] = send
        args[0] = MPI.IN_PLACE
        return recv
    if collective == "allgatherv":
        counts, displs = args[2], kwargs["displs"]
        recv[displs[rank]:displs[rank] + counts[rank]] = send
        args[0] = MPI.IN_PLACE
        return recv
    if collective in ("reduce_scatter_block", "reduce_scatter"):
        whole = send.copy()
        args[1] = whole
        args[0] = MPI.IN_PLACE
        return lambda: whole[:recv.size]
    if collective == "alltoallv":
        return None  # needs matching send and receive layouts: tested below
    recv[:] = send
    args[0] = MPI.IN_PLACE
    return recv


@pytest.mark.mpi
@pytest.mark.timeout(300)
@pytest.mark.parametrize("collective", IN_PLACE_CASES)
def test_in_place_where_mpi_allows_it(comm, collective):
    """MPI.IN_PLACE (on the root only for rooted collectives) gives MPI's answer, every algorithm."""
    problems: list[str] = []
    p = comm.size
    for algorithm in ALGORITHMS.get(collective, (None,)):
        for root in sorted({0, p - 1}) if collective in ROOTED else [0]:
            case = Case(collective, p, root, 4, "int64")
            prepared = prepare(comm, case)
            args, kwargs = list(prepared.args), dict(prepared.kwargs)
            if algorithm is not None:
                kwargs["algorithm"] = algorithm
            result = _in_place(comm, collective, args, kwargs, root)
            if result is None:
                continue
            getattr(library, collective)(comm, *args, **kwargs)
            got = result() if callable(result) else result
            if prepared.expected is not None and not np.array_equal(got, prepared.expected):
                problems.append(f"{algorithm} root={root}: got {got} expected {prepared.expected}")
    assert_all_ranks(comm, not problems, f"{collective}: " + "; ".join(problems[:3]))


@pytest.mark.mpi
@pytest.mark.timeout(120)
def test_alltoallv_in_place_uses_recvbuf_layout(comm):
    from mpi4py import MPI

    from pimpi.collectives import alltoallv

    p, rank = comm.size, comm.rank
    counts = [(rank + j) % 3 + 1 for j in range(p)]  # symmetric: counts[j] on rank i == on rank j
    buf = np.concatenate([np.full(c, 100 * rank + j) for j, c in enumerate(counts)]).astype(np.int64)
    want = np.empty_like(buf)
    comm.Alltoallv([buf, counts], [want, counts])
    alltoallv(comm, MPI.IN_PLACE, None, buf, counts)
    assert_all_ranks(comm, np.array_equal(buf, want), f"got {buf} expected {want}")


@pytest.mark.mpi
@pytest.mark.timeout(300)
@pytest.mark.parametrize("collective", ("reduce", "allreduce", "reduce_scatter_block",
                                        "reduce_scatter", "scan", "exscan"))
def test_user_defined_ops_commutative_and_not(comm, collective):
    """MPI.Op.Create ops: commutative ones on every algorithm, non-commutative on ordered ones,
    each against MPI's built-in with the same op."""
    from mpi4py import MPI

    from pimpi.collectives import ORDERED

    def first_nonzero(inbuf, inoutbuf, datatype):  # a op b = a if a != 0 else b: not commutative
        a = np.frombuffer(inbuf, np.float64)
        b = np.frombuffer(inoutbuf, np.float64)
        b[:] = np.where(a != 0, a, b)

    def add(inbuf, inoutbuf, datatype):
        b = np.frombuffer(inoutbuf, np.float64)
        b += np.frombuffer(inbuf, np.float64)

    problems: list[str] = []
    p, rank = comm.size, comm.rank
    for fn, commute in ((add, True), (first_nonzero, False)):
        op = MPI.Op.Create(fn, commute=commute)
        algorithms = ALGORITHMS[collective] if commute else ORDERED[collective]
        for algorithm in algorithms:
            n = 2 * p + 1
            blocks = p if collective.startswith("reduce_scatter") else 1
            send = np.where(np.arange(n * blocks) % (rank + 2) == 0, 0.0, rank + 1.0)
            m = n if blocks > 1 else n
            out, want = np.zeros(m), np.zeros(m)
            extra = ([n] * p,) if collective == "reduce_scatter" else ()
            builtin = {"reduce": lambda s, r: comm.Reduce(s, r, op, 0),
                       "allreduce": lambda s, r: comm.Allreduce(s, r, op),
                       "reduce_scatter_block": lambda s, r: comm.Reduce_scatter_block(s, r, op),
                       "reduce_scatter": lambda s, r: comm.Reduce_scatter(s, r, [n] * p, op),
                       "scan": lambda s, r: comm.Scan(s, r, op),
                       "exscan": lambda s, r: comm.Exscan(s, r, op)}[collective]
            builtin(send, want)
            if collective == "reduce":
                getattr(library, collective)(comm, send, out, op, 0, algorithm=algorithm)
            else:
                getattr(library, collective)(comm, send, out, *extra, op, algorithm=algorithm)
            skip = (collective == "reduce" and rank != 0) or (collective == "exscan" and rank == 0)
            if not skip and not np.array_equal(out, want):
                problems.append(f"{fn.__name__} {algorithm}: got {out} expected {want}")
        op.Free()
    assert_all_ranks(comm, not problems, f"{collective}: " + "; ".join(problems[:3]))


@pytest.mark.mpi
@pytest.mark.timeout(120)
def test_strided_numpy_views_send_and_receive(comm):
    """Non-contiguous views work as send and receive buffers; the gaps are left untouched."""
    from pimpi.collectives import allgather, allreduce, bcast

    p, rank = comm.size, comm.rank
    problems = []
    base = np.arange(12.0) + rank
    out = np.full(24, -1.0)
    allreduce(comm, base[::2], out[1::4], "SUM")
    if not np.array_equal(out[1::4], sum(np.arange(12.0)[::2] + r for r in range(p))) or \
            np.any(out[0::4] != -1):
        problems.append(f"allreduce: {out}")
    grid = np.full((p, 6), -1, np.int64)
    allgather(comm, np.array([rank, 10 * rank, 100 * rank]), grid[:, ::2])  # row r: rank r's block
    want = np.array([[r, 10 * r, 100 * r] for r in range(p)])
    if not np.array_equal(grid[:, ::2], want) or np.any(grid[:, 1::2] != -1):
        problems.append(f"allgather rows: {grid}")
    col = np.full((4, 3), -1, np.int32)
    if rank == 0:
        col[:, 1] = [1, 2, 3, 4]
    bcast(comm, col[:, 1], 0)
    if not np.array_equal(col[:, 1], [1, 2, 3, 4]) or np.any(col[:, [0, 2]] != -1):
        problems.append(f"bcast column: {col}")
    assert_all_ranks(comm, not problems, "; ".join(problems))
