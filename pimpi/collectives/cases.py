"""Test cases for collectives: each rank's inputs, the built-in's answer, and a verdict."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Callable

import numpy as np

__all__ = ["Case", "KINDS", "OPS", "REDUCING", "mpi_op", "BLOCK_KINDS", "Prepared", "prepare", "cost_nbytes",
           "compare", "abbreviate", "uneven_counts", "register"]

# Collectives whose --size is one rank's block (a rank sends/receives `length` items per peer).
BLOCK_KINDS = ("scatter", "gather", "allgather", "alltoall", "reduce_scatter_block", "allgatherv",
               "alltoallv", "reduce_scatter")
KINDS = ("bcast", "reduce", "allreduce", "scatter", "gather", "scatterv", "gatherv", "allgather",
         "alltoall", "reduce_scatter_block", "scan", "exscan", "barrier", "allgatherv", "alltoallv",
         "reduce_scatter", "ring_pass", "dot_product", "pi")


@dataclass(frozen=True)
class Case:
    """One run of one function: which call, on how many ranks, root, length and dtype."""

    kind: str
    ranks: int
    root: int = 0
    length: int = 0
    dtype: str = "float64"
    op: str = "SUM"  # the reduction op of reducing kinds: a name in OPS

    def describe(self) -> str:
        """'with 5 ranks, root 2, 7 elements, int32' (root only where it matters)."""
        parts = [f"with {self.ranks} rank{'s' if self.ranks != 1 else ''}"]
        if self.kind in ROOTED:
            parts.append(f"root {self.root}")
        unit = UNITS.get(self.kind, "elements")
        if self.kind != "barrier":
            parts.append(f"{self.length} {unit}")
        if self.kind not in ("pi", "barrier") and self.kind not in NO_DTYPE:
            parts.append(self.dtype)
        if self.op != "SUM":
            parts.append(f"op {self.op}")
        return ", ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# Ops a reducing case may use: MPI's own, and FIRST (a ∘ b = a), a user op that is
# associative but not commutative, so only an algorithm that combines in rank order passes.
OPS = ("SUM", "PROD", "MAX", "MIN", "FIRST")
REDUCING = ("reduce", "allreduce", "scan", "exscan", "reduce_scatter", "reduce_scatter_block")

ROOTED = ["bcast", "reduce", "scatter", "gather", "scatterv", "gatherv", "ring_pass",
          "dot_product", "pi"]  # a list: register() adds kinds defined elsewhere
UNITS = {"pi": "intervals"}  # what a case's length counts, when not elements
NO_DTYPE: set[str] = set()  # kinds whose dtype is fixed (not worth naming in a case)


@dataclass
class Prepared:
    """What to pass to the function on this rank, and how to read and judge its result."""

    args: tuple
    kwargs: dict[str, Any]
    result: Callable[[Any], Any]  # return value -> what to compare
    expected: Any  # None: nothing to check on this rank
    exact: bool = True


def uneven_counts(length: int, p: int) -> list[int]:
    """Per-rank counts around `length` that differ and include zeros (when p > 1)."""
    if p == 1:
        return [length]
    return [0 if r % 3 == 1 else length + (r * 5) % 4 for r in range(p)]


def cost_nbytes(kind: str, length: int, itemsize: int, p: int) -> int:
    """The nbytes that registry.cost() expects for a run of `length` elements per block."""
    if kind in BLOCK_KINDS:
        return p * length * itemsize
    return length * itemsize


SALT = 0  # shifts every input; the grader draws it fresh per run (see set_salt)


def set_salt(value: int) -> None:
    """Shift the inputs of every case by `value` (0..999), so a run's inputs cannot be rebuilt
    without knowing it; the answers are computed from the same inputs."""
    global SALT
    SALT = int(value) % 1000


def _values(rank: int, n: int, dtype: np.dtype, small: bool) -> np.ndarray:
    """Distinct values per rank and position (small ones for reductions, so sums stay exact)."""
    i = np.arange(n, dtype=np.int64)
    base = ((i * 3 + rank * 5 + SALT) % 17 - 8) if small else (rank * (n + 1) + i + 1 + SALT)
    out = base.astype(dtype)
    if dtype.kind == "c":
        out = out + 1j * ((i + 2 * rank) % 5 if small else (i % 7 - rank)).astype(dtype)
    return out


def _builtin(name: str) -> Any:
    from mpi4py import MPI

    return getattr(MPI, name)


_USER_OPS: dict[str, Any] = {}


def _first(inbuf: Any, inoutbuf: Any, datatype: Any) -> None:
    """FIRST: inoutbuf = inbuf ∘ inoutbuf = inbuf (the left operand wins)."""
    memoryview(inoutbuf).cast("B")[:] = memoryview(inbuf).cast("B")


def mpi_op(name: str) -> Any:
    """The MPI.Op called `name` (one of OPS); ValueError naming a bad one."""
    if name not in OPS:
        raise ValueError(f"unknown op {name!r}; choose from {', '.join(OPS)}")
    if name != "FIRST":
        return _builtin(name)
    if name not in _USER_OPS:
        from mpi4py import MPI

        _USER_OPS[name] = MPI.Op.Create(_first, commute=False)
    return _USER_OPS[name]


def prepare(comm: Any, case: Case) -> Prepared:
    """Build this rank's inputs for `case` and its expected output, from MPI's built-ins on `comm`.

    Every rank must call this together (it runs the built-in collective).
    """
    return _PREPARE[case.kind](comm, case, comm.Get_rank(), comm.Get_size(), np.dtype(case.dtype))


def _zeros(n: int, dtype: np.dtype) -> np.ndarray:
    return np.zeros(n, dtype)


def _ret(buf: np.ndarray) -> Callable[[Any], Any]:
    return lambda _ret_value: buf


def _bcast(comm, case, rank, p, dt):
    data = _values(case.root, case.length, dt, False)
    buf = data.copy() if rank == case.root else _zeros(case.length, dt)
    exp = data.copy() if rank == case.root else _zeros(case.length, dt)
    comm.Bcast(exp, root=case.root)
    return Prepared((buf,), {"root": case.root}, _ret(buf), exp)


def _simple(comm, name: str, case: Case, send: np.ndarray, out_len: int, dt: np.dtype, *,
            rooted: bool = False, reduces: bool = False, check: bool = True) -> Prepared:
    """Arguments (send, recv) for the function, and MPI's built-in `name` for the answer."""
    recv, exp = _zeros(out_len, dt), _zeros(out_len, dt)
    kwargs: dict[str, Any] = {"op": mpi_op(case.op)} if reduces else {}
    if rooted:
        kwargs["root"] = case.root
    getattr(comm, name)(send, exp, **kwargs)
    mine: dict[str, Any] = {"root": case.root} if rooted else {}
    if reduces and case.op != "SUM":  # SUM stays the default argument a learner may rely on
        mine["op"] = kwargs["op"]
    return Prepared((send.copy(), recv), mine, _ret(recv), exp if check else None)


def _reduce(comm, case, rank, p, dt):
    return _simple(comm, "Reduce", case, _values(rank, case.length, dt, True), case.length, dt,
                   rooted=True, reduces=True, check=rank == case.root)


def _allreduce(comm, case, rank, p, dt):
    return _simple(comm, "Allreduce", case, _values(rank, case.length, dt, True), case.length, dt,
                   reduces=True)


def _scatter(comm, case, rank, p, dt):
    n = case.length
    send = _values(case.root, p * n, dt, False) if rank == case.root else _zeros(p * n, dt)
    return _simple(comm, "Scatter", case, send, n, dt, rooted=True)


def _gather(comm, case, rank, p, dt):
    return _simple(comm, "Gather", case, _values(rank, case.length, dt, False), p * case.length, dt,
                   rooted=True, check=rank == case.root)


def _displs(counts: list[int]) -> list[int]:
    return [int(x) for x in np.concatenate(([0], np.cumsum(counts)[:-1]))]


def _scatterv(comm, case, rank, p, dt):
    counts = uneven_counts(case.length, p)
    total = sum(counts)
    send = _values(case.root, total, dt, False) if rank == case.root else _zeros(total, dt)
    recv = _zeros(counts[rank], dt)
    exp = _zeros(counts[rank], dt)
    comm.Scatterv([send, counts, _displs(counts), _mpi_type(dt)], exp, root=case.root)
    return Prepared((send.copy(), list(counts), recv), {"root": case.root}, _ret(recv), exp)


def _gatherv(comm, case, rank, p, dt):
    counts = uneven_counts(case.length, p)
    send = _values(rank, counts[rank], dt, False)
    recv = _zeros(sum(counts), dt)
    exp = _zeros(sum(counts), dt)
    comm.Gatherv(send, [exp, counts, _displs(counts), _mpi_type(dt)], root=case.root)
    return Prepared((send.copy(), recv, list(counts)), {"root": case.root}, _ret(recv),
                    exp if rank == case.root else None)


def _mpi_type(dt: np.dtype) -> Any:
    from mpi4py.util.dtlib import from_numpy_dtype

    return from_numpy_dtype(dt)


def _allgather(comm, case, rank, p, dt):
    n = case.length
    return _simple(comm, "Allgather", case, _values(rank, n, dt, False), p * n, dt)


def _alltoall(comm, case, rank, p, dt):
    n = case.length
    return _simple(comm, "Alltoall", case, _values(rank, p * n, dt, False), p * n, dt)


def _allgatherv(comm, case, rank, p, dt):
    counts = uneven_counts(case.length, p)
    displs = [d + r for r, d in enumerate(_displs(counts))]  # a gap before each block
    size = sum(counts) + p
    send = _values(rank, counts[rank], dt, False)
    recv, exp = _zeros(size, dt), _zeros(size, dt)
    comm.Allgatherv(send, [exp, counts, displs, _mpi_type(dt)])
    return Prepared((send.copy(), recv, counts), {"displs": displs}, _ret(recv), exp)


def _alltoallv(comm, case, rank, p, dt):
    sendcounts = [(case.length + rank + 2 * j) % (case.length + 3) for j in range(p)]
    recvcounts = [(case.length + j + 2 * rank) % (case.length + 3) for j in range(p)]
    send = _values(rank, sum(sendcounts), dt, False)
    recv, exp = _zeros(sum(recvcounts), dt), _zeros(sum(recvcounts), dt)
    comm.Alltoallv([send, sendcounts, _displs(sendcounts), _mpi_type(dt)],
                   [exp, recvcounts, _displs(recvcounts), _mpi_type(dt)])
    return Prepared((send.copy(), sendcounts, recv, recvcounts), {}, _ret(recv), exp)


def _reduce_scatter(comm, case, rank, p, dt):
    counts = uneven_counts(case.length, p)
    send = _values(rank, sum(counts), dt, True)
    recv, exp = _zeros(counts[rank], dt), _zeros(counts[rank], dt)
    comm.Reduce_scatter(send, exp, counts, _builtin("SUM"))
    return Prepared((send.copy(), recv, counts), {}, _ret(recv), exp)


def _reduce_scatter_block(comm, case, rank, p, dt):
    n = case.length
    return _simple(comm, "Reduce_scatter_block", case, _values(rank, p * n, dt, True), n, dt,
                   reduces=True)


def _scan(comm, case, rank, p, dt, exclusive: bool = False):
    # MPI leaves rank 0's exscan result undefined: nothing to check there
    return _simple(comm, "Exscan" if exclusive else "Scan", case, _values(rank, case.length, dt, True),
                   case.length, dt, reduces=True, check=not (exclusive and rank == 0))


def _exscan(comm, case, rank, p, dt):
    return _scan(comm, case, rank, p, dt, exclusive=True)


def _barrier(comm, case, rank, p, dt):
    return Prepared((), {}, lambda _r: True, True)


def _ring_pass(comm, case, rank, p, dt):
    token = _values(case.root, case.length, dt, False)
    buf = token.copy() if rank == case.root else _zeros(case.length, dt)
    if rank == case.root:  # every other rank has added its rank number on the way round
        exp = token + dt.type(sum(range(p)) - case.root)
    else:
        visited = [(case.root + k) % p for k in range(1, (rank - case.root) % p + 1)]
        exp = token + dt.type(sum(visited))
    return Prepared((buf,), {"root": case.root}, _ret(buf), exp.astype(dt))


def _split(n: int, p: int, rank: int) -> slice:
    """Rank's slice of n items in uneven parts (some empty when p > 2)."""
    weights = [0 if (r % 3 == 1 and p > 1) else r % 4 + 1 for r in range(p)]
    counts = [n * w // sum(weights) for w in weights]
    counts[-1 if weights[-1] else 0] += n - sum(counts)
    start = sum(counts[:rank])
    return slice(start, start + counts[rank])


def _dot_product(comm, case, rank, p, dt):
    n = case.length
    x = _values(0, n, dt, True)
    y = _values(1, n, dt, True)
    part = _split(n, p, rank)
    exp = np.array(np.dot(x, y))  # exact: small integer-valued entries
    return Prepared((x[part].copy(), y[part].copy()), {"root": case.root}, _scalar,
                    exp if rank == case.root else None)


def _pi(comm, case, rank, p, dt):
    n = case.length
    h = 1.0 / n
    mid = (np.arange(n) + 0.5) * h
    exp = np.array(np.sum(4.0 / (1.0 + mid * mid)) * h)
    return Prepared((n,), {"root": case.root}, _scalar, exp if rank == case.root else None,
                    exact=False)


def _scalar(value: Any) -> Any:
    try:
        return np.asarray(value).reshape(-1)[0] if np.asarray(value).size == 1 else np.asarray(value)
    except Exception:  # noqa: BLE001 - anything odd is shown as it is
        return value


_PREPARE = {name: globals()[f"_{name}"] for name in KINDS}


def register(kind: str, build: Callable[..., Prepared], rooted: bool = False, unit: str = "elements",
             dtype_shown: bool = True) -> None:
    """Add a case kind defined in another module (the course exercises' kinds, for one).

    `build(comm, case, rank, size, dtype)` returns the Prepared inputs and expected output.
    """
    _PREPARE[kind] = build
    if rooted and kind not in ROOTED:
        ROOTED.append(kind)
    if unit != "elements":
        UNITS[kind] = unit
    if not dtype_shown:
        NO_DTYPE.add(kind)


def abbreviate(value: Any, limit: int = 6) -> str:
    """Short text for an array: '[1 2 3 ... 98 99 100] (100 items)'."""
    if value is None:
        return "None"
    arr = np.asarray(value)
    if arr.ndim == 0:
        return repr(arr.item())
    text = np.array2string(arr.reshape(-1), threshold=limit, edgeitems=3, max_line_width=10**6)
    return text + (f" ({arr.size} items)" if arr.size > limit else "")


def compare(prepared: Prepared, returned: Any) -> str | None:
    """None when this rank's result matches; otherwise 'got [...] expected [...]'."""
    if prepared.expected is None:
        return None
    exp = np.asarray(prepared.expected)
    try:
        got = prepared.result(returned)
    except Exception as exc:  # noqa: BLE001 - reported, not raised
        return f"result unreadable: {exc}"
    if got is None:
        return f"returned None, expected {abbreviate(exp)}"
    arr = np.asarray(got)
    if arr.shape != exp.shape and not (arr.size == exp.size == 1):
        return f"got shape {arr.shape} expected shape {exp.shape}"
    try:
        ok = (np.array_equal(arr.reshape(exp.shape), exp) if prepared.exact
              else bool(np.allclose(arr.reshape(exp.shape), exp, rtol=1e-10, atol=1e-12)))
    except (TypeError, ValueError) as exc:
        return f"got {abbreviate(arr)} which cannot be compared: {exc}"
    if ok:
        return None
    detail = f"got {abbreviate(arr)} expected {abbreviate(exp)}"
    if exp.ndim == 1 and arr.size == exp.size and exp.size > 1:
        first = int(np.flatnonzero(arr.reshape(exp.shape) != exp)[0])
        detail += f" (first difference at index {first})"
    return detail
