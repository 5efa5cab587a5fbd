"""Every algorithm of every collective against the built-in MPI collective, at the harness's size."""

from __future__ import annotations

import functools

import numpy as np
import pytest

from pimpi.collectives import ALGORITHMS, ORDERED, get, workspace
from pimpi.testing import assert_all_ranks

workspace.SMALL = 1024  # so the long cases below also run through the pooled scratch buffers

DTYPES = (np.int32, np.int64, np.float32, np.float64, np.complex128)
PAIRS = [(c, a) for c, algos in ALGORITHMS.items() for a in (*algos, None)]


def _lengths(p: int) -> list[int]:
    """0, 1, p−1, 7, a length not divisible by p (3001 % p == 1 for p <= 5), a few thousand."""
    return sorted({0, 1, max(p - 1, 0), 7, 3 * p + 1, 3001})


def _data(n: int, dtype, rank: int, salt: int = 0, small: bool = False) -> np.ndarray:
    rng = np.random.default_rng(1000 * salt + rank)
    if np.issubdtype(dtype, np.integer):
        return rng.integers(-2 if small else -1000, 3 if small else 1000, n).astype(dtype)
    values = rng.uniform(0.5, 1.5, n) if small else rng.uniform(-10, 10, n)
    if np.issubdtype(dtype, np.complexfloating):
        values = values + 1j * (rng.uniform(0.5, 1.5, n) if small else rng.uniform(-10, 10, n))
    return values.astype(dtype)


def _same(got: np.ndarray, want: np.ndarray, exact: bool) -> bool:
    if exact or np.issubdtype(want.dtype, np.integer):
        return np.array_equal(got, want)
    rtol = 1e-4 if want.dtype in (np.float32, np.complex64) else 1e-10
    return np.allclose(got, want, rtol=rtol, atol=rtol)


def _ops(MPI):
    """(name, op passed to pimpi, built-in op or None, exact?, dtypes it applies to)."""
    ints = (np.int32, np.int64)
    real = (np.int32, np.int64, np.float32, np.float64)
    return [
        ("SUM", MPI.SUM, MPI.SUM, False, DTYPES),
        ("MAX", MPI.MAX, MPI.MAX, True, real),
        ("PROD", MPI.PROD, MPI.PROD, False, DTYPES),
        ("MIN", MPI.MIN, MPI.MIN, True, real),
        ("BAND", MPI.BAND, MPI.BAND, True, ints),
        ("ufunc add", np.add, MPI.SUM, False, DTYPES),
        ("LOR", MPI.LOR, MPI.LOR, True, ints),
        ("BOR", MPI.BOR, MPI.BOR, True, ints),
        ("LAND", MPI.LAND, MPI.LAND, True, ints),
        ("ufunc maximum", np.maximum, MPI.MAX, True, real),
    ]


def _cases(p: int, roots: bool = True):
    """(root, length, dtype, index): every root, every length, dtypes rotating."""
    index = 0
    for root in range(p) if roots else [0]:
        for length in _lengths(p):
            yield root, length, DTYPES[index % len(DTYPES)], index
            index += 1


def _reduction_cases(MPI, p: int, roots: bool = True):
    ops = _ops(MPI)
    for root, length, dtype, index in _cases(p, roots):
        fitting = [op for op in ops if dtype in op[4]]
        yield root, length, dtype, index, fitting[index % len(fitting)]


def _check(errors: list[str], ok: bool, what: str) -> None:
    if not ok and len(errors) < 5:
        errors.append(what)


def _bcast(comm, MPI, algorithm):
    errors: list[str] = []
    run = get("bcast", algorithm)
    for root, n, dtype, i in _cases(comm.size):
        mine = _data(n, dtype, comm.rank, i)
        ref = mine.copy()
        comm.Bcast(ref, root)
        run(comm, mine, root)
        _check(errors, np.array_equal(mine, ref), f"root={root} n={n} {dtype.__name__}")
    return errors


def _reduce(comm, MPI, algorithm):
    errors: list[str] = []
    run = get("reduce", algorithm)
    for root, n, dtype, i, (name, op, ref_op, exact, _) in _reduction_cases(MPI, comm.size):
        send = _data(n, dtype, comm.rank, i, small=name == "PROD")
        want = np.empty_like(send) if comm.rank == root else None
        got = np.empty_like(send) if comm.rank == root else None
        comm.Reduce(send, want, ref_op, root)
        run(comm, send, got, op, root)
        ok = comm.rank != root or _same(got, want, exact)
        _check(errors, ok, f"root={root} n={n} {dtype.__name__} {name}")
    return errors


def _allreduce_like(collective):
    def check(comm, MPI, algorithm):
        errors: list[str] = []
        run = get(collective, algorithm)
        builtin = {"allreduce": comm.Allreduce, "scan": comm.Scan, "exscan": comm.Exscan}[collective]
        for _, n, dtype, i, (name, op, ref_op, exact, _) in _reduction_cases(MPI, comm.size, False):
            send = _data(n, dtype, comm.rank, i, small=name == "PROD")
            want, got = np.zeros_like(send), np.zeros_like(send)
            builtin(send, want, ref_op)
            run(comm, send, got, op)
            ok = (collective == "exscan" and comm.rank == 0) or _same(got, want, exact)
            _check(errors, ok, f"n={n} {dtype.__name__} {name}")
        return errors

    return check


def _reduce_scatter_block(comm, MPI, algorithm):
    errors: list[str] = []
    run = get("reduce_scatter_block", algorithm)
    for _, m, dtype, i, (name, op, ref_op, exact, _) in _reduction_cases(MPI, comm.size, False):
        send = _data(m * comm.size, dtype, comm.rank, i, small=name == "PROD")
        want, got = np.zeros(m, dtype), np.zeros(m, dtype)
        comm.Reduce_scatter_block(send, want, ref_op)
        run(comm, send, got, op)
        _check(errors, _same(got, want, exact), f"m={m} {dtype.__name__} {name}")
    return errors


def _scatter(comm, MPI, algorithm):
    errors: list[str] = []
    run = get("scatter", algorithm)
    for root, m, dtype, i in _cases(comm.size):
        send = _data(m * comm.size, dtype, comm.rank, i) if comm.rank == root else None
        want, got = np.zeros(m, dtype), np.zeros(m, dtype)
        comm.Scatter(send, want, root)
        run(comm, send, got, root)
        _check(errors, np.array_equal(got, want), f"root={root} m={m} {dtype.__name__}")
    return errors


def _gather(comm, MPI, algorithm):
    errors: list[str] = []
    run = get("gather", algorithm)
    for root, m, dtype, i in _cases(comm.size):
        send = _data(m, dtype, comm.rank, i)
        want = np.zeros(m * comm.size, dtype) if comm.rank == root else None
        got = np.zeros(m * comm.size, dtype) if comm.rank == root else None
        comm.Gather(send, want, root)
        run(comm, send, got, root)
        ok = comm.rank != root or np.array_equal(got, want)
        _check(errors, ok, f"root={root} m={m} {dtype.__name__}")
    return errors


def _all_to_all_like(collective):
    def check(comm, MPI, algorithm):
        errors: list[str] = []
        run = get(collective, algorithm)
        p = comm.size
        for _, m, dtype, i in _cases(p, roots=False):
            if collective == "allgather":
                send, want, got = _data(m, dtype, comm.rank, i), np.zeros(m * p, dtype), np.zeros(m * p, dtype)
                comm.Allgather(send, want)
            else:
                send, want, got = _data(m * p, dtype, comm.rank, i), np.zeros(m * p, dtype), np.zeros(m * p, dtype)
                comm.Alltoall(send, want)
            run(comm, send, got)
            _check(errors, np.array_equal(got, want), f"m={m} {dtype.__name__}")
        return errors

    return check


def _barrier(comm, MPI, algorithm):
    """Nobody leaves before the last rank arrives: the last one sets a flag first."""
    errors: list[str] = []
    run = get("barrier", algorithm)
    for _ in range(3):
        run(comm)
    # rank p−1 sends a message after its barrier; rank 0 checks it has not arrived before
    if comm.size > 1:
        late = comm.size - 1
        if comm.rank == late:
            import time

            time.sleep(0.2)
        arrived = np.zeros(1, np.int32)
        if comm.rank == 0:
            status = comm.Iprobe(late, 999)
            _check(errors, not status, "message seen before barrier")
        if comm.rank == late:
            comm.Send(np.ones(1, np.int32), 0, 999)
        run(comm)
        if comm.rank == 0:
            comm.Recv(arrived, late, 999)
    return errors


def _v_like(collective):
    """allgatherv, alltoallv, reduce_scatter: uneven counts with zeros (cases.prepare), vs the built-in."""
    def check(comm, MPI, algorithm):
        from pimpi.collectives.cases import Case, compare, prepare

        errors: list[str] = []
        run = get(collective, algorithm)
        for _, m, dtype, _i in _cases(comm.size, roots=False):
            name = np.dtype(dtype).name
            prepared = prepare(comm, Case(collective, comm.size, 0, m, name))
            run(comm, *prepared.args, **prepared.kwargs)
            problem = compare(prepared, None)
            _check(errors, problem is None, f"m={m} {name}: {problem}")
        return errors

    return check


CHECKS = {
    "bcast": _bcast,
    "reduce": _reduce,
    "allreduce": _allreduce_like("allreduce"),
    "scan": _allreduce_like("scan"),
    "exscan": _allreduce_like("exscan"),
    "reduce_scatter_block": _reduce_scatter_block,
    "scatter": _scatter,
    "gather": _gather,
    "allgather": _all_to_all_like("allgather"),
    "alltoall": _all_to_all_like("alltoall"),
    "barrier": _barrier,
    "allgatherv": _v_like("allgatherv"),
    "alltoallv": _v_like("alltoallv"),
    "reduce_scatter": _v_like("reduce_scatter"),
}


@pytest.mark.mpi
@pytest.mark.parametrize("collective,algorithm", PAIRS, ids=[f"{c}-{a}" for c, a in PAIRS])
def test_matches_builtin(comm, collective, algorithm):
    from mpi4py import MPI

    errors = CHECKS[collective](comm, MPI, algorithm)
    assert_all_ranks(comm, not errors, f"{collective}[{algorithm}] wrong for " + "; ".join(errors))


def _copysign_reference(comm, send, upto: int) -> np.ndarray:
    """x0 op x1 op ... op x_upto for op = copysign, computed serially in rank order."""
    everyone = comm.allgather(send)
    return functools.reduce(lambda a, b: np.copysign(a, b), everyone[: upto + 1])


@pytest.mark.mpi
@pytest.mark.parametrize("collective", sorted(ORDERED))
def test_non_commutative_op_keeps_rank_order(comm, collective):
    """copysign(a, b) is associative but not commutative: only rank order gives the right sign."""
    errors: list[str] = []
    p = comm.size
    for algorithm in (*ORDERED[collective], None):
        run = get(collective, algorithm)
        for root in range(p) if collective == "reduce" else [0]:
            n = 3 * p + 1
            blocks = p if collective.startswith("reduce_scatter") else 1
            send = np.random.default_rng(comm.rank + 7).uniform(-5, 5, n * blocks)
            if collective == "reduce":
                got = np.zeros(n) if comm.rank == root else None
                run(comm, send, got, np.copysign, root)
                ok = comm.rank != root or np.array_equal(got, _copysign_reference(comm, send, p - 1))
                if comm.rank != root:
                    _copysign_reference(comm, send, p - 1)
            elif collective.startswith("reduce_scatter"):
                got = np.zeros(n)
                if collective == "reduce_scatter":
                    run(comm, send, got, [n] * p, np.copysign)
                else:
                    run(comm, send, got, np.copysign)
                want = _copysign_reference(comm, send, p - 1)[comm.rank * n:(comm.rank + 1) * n]
                ok = np.array_equal(got, want)
            else:
                got = np.zeros(n)
                run(comm, send, got, np.copysign)
                upto = {"allreduce": p - 1, "scan": comm.rank, "exscan": comm.rank - 1}[collective]
                want = _copysign_reference(comm, send, max(upto, 0))
                ok = upto < 0 or np.array_equal(got, want)
            _check(errors, ok, f"{algorithm} root={root}")
    assert_all_ranks(comm, not errors, "; ".join(errors))


@pytest.mark.mpi
def test_scatterv_gatherv_uneven_counts(comm):
    """Uneven counts with zeros, default and explicit displacements, every root, vs Scatterv/Gatherv."""
    from mpi4py import MPI

    from pimpi.collectives import gatherv, scatterv

    errors: list[str] = []
    p, rank = comm.size, comm.rank
    for root in range(p):
        patterns = ([(r * 3 + root) % 4 for r in range(p)], [0] * p, [5 if r == root else 0 for r in range(p)])
        for counts in patterns:
            for gaps in (False, True):
                displs = [sum(counts[:r]) + (r if gaps else 0) for r in range(p)]
                size = sum(counts) + (p if gaps else 0)
                kw = {"displs": displs} if gaps else {}
                full = np.arange(size, dtype=np.float64) * (root + 1) if rank == root else None
                mine, want = np.zeros(counts[rank]), np.zeros(counts[rank])
                comm.Scatterv([full, counts, displs, MPI.DOUBLE] if rank == root else None, want, root)
                scatterv(comm, full, counts if rank == root else None, mine, root, **kw)
                what = f"root={root} counts={counts} gaps={gaps}"
                _check(errors, np.array_equal(mine, want), "scatterv " + what)
                back = np.full(size, -1.0) if rank == root else None
                ref = np.full(size, -1.0) if rank == root else None
                comm.Gatherv(mine, [ref, counts, displs, MPI.DOUBLE] if rank == root else None, root)
                gatherv(comm, mine, back, counts, root, **kw)
                _check(errors, rank != root or np.array_equal(back, ref), "gatherv " + what)
    assert_all_ranks(comm, not errors, "; ".join(errors))


@pytest.mark.mpi
def test_mpi_ops_map_to_ufuncs(comm):
    """mpi4py's predefined ops resolve to the matching ufunc and count as commutative."""
    from mpi4py import MPI

    from pimpi.collectives import resolve_op

    pairs = [(MPI.SUM, np.add), (MPI.PROD, np.multiply), (MPI.MAX, np.maximum), (MPI.MIN, np.minimum),
             (MPI.LAND, np.logical_and), (MPI.LOR, np.logical_or), (MPI.BAND, np.bitwise_and),
             (MPI.BOR, np.bitwise_or)]
    ok = all(resolve_op(mpi).ufunc is uf and resolve_op(mpi).commutative for mpi, uf in pairs)
    try:
        resolve_op(MPI.MAXLOC)
        ok = False
    except ValueError as exc:
        ok = ok and "MPI op" in str(exc)
    assert_all_ranks(comm, ok, "op mapping wrong")
