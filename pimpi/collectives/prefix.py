"""Prefix reductions: scan (inclusive) and exscan (exclusive), by recursive doubling or a chain."""

from __future__ import annotations

from typing import Any

import numpy as np

from .buffers import check_count, check_like, flat, in_place
from .call import Call, collective, same_text
from .catalog import TAGS, public, register
from .ops import Op, resolve_op
from .partition import ceil_log2
from .tuning import select
from .workspace import scratch

__all__ = ["scan", "exscan", "scan_recursive_doubling", "scan_linear",
           "exscan_recursive_doubling", "exscan_linear"]

TAG_SCAN = TAGS["scan"]
TAG_EXSCAN = TAGS["exscan"]


def _call(comm: Any, collective: str, sendbuf: Any, recvbuf: np.ndarray, op: Any,
          algorithm: str | None) -> Call:
    """Checked arguments; sendbuf MPI.IN_PLACE takes the input from recvbuf."""
    back: list = []
    recv = flat(recvbuf, "recvbuf", writable=True, copy_back=back)
    send = recv.copy() if in_place(sendbuf) else flat(sendbuf, "sendbuf")
    check_like(recv, send, "recvbuf", "sendbuf")
    check_count(recv, send.size, "recvbuf")
    op = resolve_op(op)
    op.check_dtype(send.dtype)
    func = select(collective, algorithm, send.nbytes, comm.size, op)
    return Call(func, (comm, send, recv, op), copy_back=back,
                same=(("buffer sizes (bytes)", send.nbytes), ("dtypes", same_text(send.dtype.str)),
                      ("ops", same_text(op.name)), ("algorithm", same_text(func.__name__))))


@public("scan")
@collective
def scan(comm: Any, sendbuf: np.ndarray, recvbuf: np.ndarray, op: Any = "SUM", *,
         algorithm: str | None = None) -> Call:
    """Rank r gets x0 op x1 op ... op xr in `recvbuf` (like comm.Scan); op defaults to SUM.

    sendbuf=MPI.IN_PLACE: the input is taken from recvbuf.
    """
    return _call(comm, "scan", sendbuf, recvbuf, op, algorithm)


@public("exscan")
@collective
def exscan(comm: Any, sendbuf: np.ndarray, recvbuf: np.ndarray, op: Any = "SUM", *,
           algorithm: str | None = None) -> Call:
    """Rank r > 0 gets x0 op ... op x(r−1) in `recvbuf` (like comm.Exscan); rank 0's is left as is.

    sendbuf=MPI.IN_PLACE: the input is taken from recvbuf.
    """
    return _call(comm, "exscan", sendbuf, recvbuf, op, algorithm)


def _doubling(comm: Any, sendbuf: np.ndarray, recvbuf: np.ndarray, op: Op, tag: int,
              inclusive: bool) -> None:
    """Round k: swap `partial` (the op of my 2^k-aligned group so far) with rank XOR 2^k.

    A partner below me adds its partial to my result, on the left; one above only
    grows my partial, on the right. So everything stays in rank order.
    """
    rank, size = comm.rank, comm.size
    tmp = scratch(0, sendbuf.size, sendbuf.dtype)
    store = scratch(1, sendbuf.size, sendbuf.dtype)
    partial = sendbuf  # read from sendbuf until the first combine writes `store`
    result = sendbuf if inclusive else None  # exscan: nothing until the first lower partner
    mask = 1
    while mask < size:
        partner = rank ^ mask
        if partner < size:
            comm.Sendrecv(partial, partner, tag, tmp, partner, tag)
            last = mask << 1 >= size  # no round after this one needs `partial`
            if partner < rank:
                if result is None:
                    recvbuf[:] = tmp
                else:
                    op.ufunc(tmp, result, out=recvbuf)
                result = recvbuf
                if not last:
                    op.ufunc(tmp, partial, out=store)
            elif not last:
                op.ufunc(partial, tmp, out=store)
            partial = store
        mask <<= 1
    if result is sendbuf:  # no lower partner ever (rank 0 or p == 1)
        recvbuf[:] = sendbuf


def _chain(comm: Any, sendbuf: np.ndarray, recvbuf: np.ndarray, op: Op, tag: int,
           inclusive: bool) -> None:
    """Rank r waits for the prefix of ranks < r from r−1, adds its own, passes it on to r+1."""
    rank, size = comm.rank, comm.size
    if inclusive:
        if rank > 0:
            comm.Recv(recvbuf, rank - 1, tag)
            op.ufunc(recvbuf, sendbuf, out=recvbuf)
        else:
            recvbuf[:] = sendbuf
        if rank + 1 < size:
            comm.Send(recvbuf, rank + 1, tag)
        return
    if rank == 0:
        if size > 1:
            comm.Send(sendbuf, 1, tag)
        return
    comm.Recv(recvbuf, rank - 1, tag)
    if rank + 1 < size:
        running = scratch(0, sendbuf.size, sendbuf.dtype)
        op.ufunc(recvbuf, sendbuf, out=running)
        comm.Send(running, rank + 1, tag)


def _log_cost(n: int, p: int) -> tuple[float, float]:
    return ceil_log2(p), ceil_log2(p) * n


@register("scan", "recursive_doubling", cost=_log_cost)
def scan_recursive_doubling(comm: Any, sendbuf: np.ndarray, recvbuf: np.ndarray, op: Op,
                            tag: int = TAG_SCAN) -> None:
    """Recursive doubling: ⌈log2 p⌉ rounds, each swapping n bytes with rank XOR 2^k.

    Cost: ⌈log2 p⌉·(α + n·β).
    """
    _doubling(comm, sendbuf, recvbuf, op, tag, inclusive=True)


@register("scan", "linear", cost=lambda n, p: (p - 1, (p - 1) * n))
def scan_linear(comm: Any, sendbuf: np.ndarray, recvbuf: np.ndarray, op: Op,
                tag: int = TAG_SCAN) -> None:
    """Chain: rank r receives the prefix from r−1 and sends its own to r+1.

    Cost on the critical path: (p−1)·(α + n·β).
    """
    _chain(comm, sendbuf, recvbuf, op, tag, inclusive=True)


@register("exscan", "recursive_doubling", cost=_log_cost)
def exscan_recursive_doubling(comm: Any, sendbuf: np.ndarray, recvbuf: np.ndarray, op: Op,
                              tag: int = TAG_EXSCAN) -> None:
    """Recursive doubling, as scan, but my own value never enters my result.

    Cost: ⌈log2 p⌉·(α + n·β).
    """
    _doubling(comm, sendbuf, recvbuf, op, tag, inclusive=False)


@register("exscan", "linear", cost=lambda n, p: (p - 1, (p - 1) * n))
def exscan_linear(comm: Any, sendbuf: np.ndarray, recvbuf: np.ndarray, op: Op,
                  tag: int = TAG_EXSCAN) -> None:
    """Chain: rank r receives the exclusive prefix from r−1 and sends prefix op mine to r+1.

    Cost on the critical path: (p−1)·(α + n·β).
    """
    _chain(comm, sendbuf, recvbuf, op, tag, inclusive=False)
