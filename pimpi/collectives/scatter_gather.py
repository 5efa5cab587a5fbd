"""Scatter and gather: root hands out or collects one block per rank (linear or binomial tree)."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from .buffers import (block_count, check_count, check_counts, check_fits, check_like, check_root,
                      flat, gathered_v, in_place, in_place_on_root, root_buffer)
from .call import Call, Cells, collective, same_text
from .catalog import TAGS, public, register
from .partition import ceil_log2
from .tuning import select
from .workspace import scratch

__all__ = ["scatter", "gather", "scatterv", "gatherv",
           "scatter_linear", "scatter_binomial", "gather_linear", "gather_binomial"]

TAG_SCATTER = TAGS["scatter"]
TAG_GATHER = TAGS["gather"]


def _lowbit_span(vrank: int, size: int) -> int:
    """How many vranks the subtree of `vrank` covers in a binomial tree over `size`."""
    if vrank == 0:
        return size
    return min(vrank & -vrank, size - vrank)


def _rooted(comm: Any, collective: str, block: np.ndarray, algorithm: str | None, args: tuple,
            back: list, root: int) -> Call:
    """The Call of a scatter or gather whose blocks are like `block`."""
    func = select(collective, algorithm, block.nbytes * comm.size, comm.size)
    return Call(func, (comm, *args, root), copy_back=back,
                same=(("root", root), ("block sizes (bytes)", block.nbytes),
                      ("dtypes", same_text(block.dtype.str)), ("algorithm", same_text(func.__name__))))


@public("scatter")
@collective
def scatter(comm: Any, sendbuf: np.ndarray | None, recvbuf: np.ndarray, root: int = 0, *,
            algorithm: str | None = None) -> Call:
    """Root's `sendbuf` holds p blocks of recvbuf.size items; rank r gets block r (like comm.Scatter).

    sendbuf may be None on the other ranks. recvbuf=MPI.IN_PLACE on root: root's own
    block stays where it is in sendbuf.
    """
    size, rank = comm.size, comm.rank
    root = check_root(root, size)
    back: list = []
    if in_place(recvbuf):
        send = in_place_on_root(sendbuf, "sendbuf", rank, root, back)
        recv = np.empty(block_count(send, size, "sendbuf"), send.dtype)
    else:
        recv = flat(recvbuf, "recvbuf", writable=True, copy_back=back)
        send = root_buffer(sendbuf, "sendbuf", rank == root, root, recv, recv.size * size,
                           writable=False)
    return _rooted(comm, "scatter", recv, algorithm, (send, recv), back, root)


@public("gather")
@collective
def gather(comm: Any, sendbuf: np.ndarray, recvbuf: np.ndarray | None, root: int = 0, *,
           algorithm: str | None = None) -> Call:
    """Root's `recvbuf` receives every rank's `sendbuf`, in rank order (like comm.Gather).

    recvbuf may be None on the other ranks. sendbuf=MPI.IN_PLACE on root: root's own
    block is already in place in recvbuf.
    """
    size, rank = comm.size, comm.rank
    root = check_root(root, size)
    back: list = []
    if in_place(sendbuf):
        recv = in_place_on_root(recvbuf, "recvbuf", rank, root, back)
        m = block_count(recv, size, "recvbuf")
        send = recv[root * m:(root + 1) * m].copy()
    else:
        send = flat(sendbuf, "sendbuf")
        recv = root_buffer(recvbuf, "recvbuf", rank == root, root, send, send.size * size,
                           writable=True, copy_back=back)
    return _rooted(comm, "gather", send, algorithm, (send, recv), back, root)


@register("scatter", "linear", cost=lambda n, p: (p - 1, (p - 1) / p * n))
def scatter_linear(comm: Any, sendbuf: np.ndarray | None, recvbuf: np.ndarray, root: int,
                   tag: int = TAG_SCATTER) -> None:
    """Root sends block r to rank r directly, all at once.

    Cost: p−1 messages of n/p bytes from root: (p−1)·α + (p−1)/p·n·β.
    """
    from mpi4py import MPI

    rank, size = comm.rank, comm.size
    m = recvbuf.size
    if rank != root:
        comm.Recv(recvbuf, root, tag)
        return
    reqs = [comm.Isend(sendbuf[r * m:(r + 1) * m], r, tag) for r in range(size) if r != root]
    recvbuf[:] = sendbuf[root * m:(root + 1) * m]
    MPI.Request.Waitall(reqs)


@register("scatter", "binomial", cost=lambda n, p: (ceil_log2(p), (p - 1) / p * n))
def scatter_binomial(comm: Any, sendbuf: np.ndarray | None, recvbuf: np.ndarray, root: int,
                     tag: int = TAG_SCATTER) -> None:
    """Binomial tree: each parent hands a child the blocks of the child's whole subtree.

    Blocks are handled in root-relative order (vrank), so a subtree's blocks are one
    contiguous run; root rotates its buffer once if root != 0.
    Cost: ⌈log2 p⌉ rounds, (p−1)/p·n bytes from root.
    """
    rank, size = comm.rank, comm.size
    vrank = (rank - root) % size
    m = recvbuf.size
    span = _lowbit_span(vrank, size)
    if vrank == 0:
        data = sendbuf
        if root != 0:  # rotate so that vrank j's block comes j-th
            data = scratch(0, sendbuf.size, sendbuf.dtype)
            cut = (size - root) * m
            data[:cut], data[cut:] = sendbuf[root * m:], sendbuf[:root * m]
    elif span == 1:  # a leaf: my block comes straight into recvbuf
        comm.Recv(recvbuf, (rank - (vrank & -vrank)) % size, tag)
        return
    else:
        data = scratch(0, span * m, recvbuf.dtype)
        comm.Recv(data, (rank - (vrank & -vrank)) % size, tag)
    mask = 1 << ceil_log2(span)
    while mask > 1:
        mask >>= 1
        if mask < span:
            count = min(mask, span - mask)
            comm.Send(data[mask * m:(mask + count) * m], (rank + mask) % size, tag)
    recvbuf[:] = data[:m]


@register("gather", "linear", cost=lambda n, p: (p - 1, (p - 1) / p * n))
def gather_linear(comm: Any, sendbuf: np.ndarray, recvbuf: np.ndarray | None, root: int,
                  tag: int = TAG_GATHER) -> None:
    """Every rank sends its block to root, which receives them all at once.

    Cost: p−1 messages of n/p bytes into root: (p−1)·α + (p−1)/p·n·β.
    """
    from mpi4py import MPI

    rank, size = comm.rank, comm.size
    m = sendbuf.size
    if rank != root:
        comm.Send(sendbuf, root, tag)
        return
    reqs = [comm.Irecv(recvbuf[r * m:(r + 1) * m], r, tag) for r in range(size) if r != root]
    recvbuf[root * m:(root + 1) * m] = sendbuf
    MPI.Request.Waitall(reqs)


@register("gather", "binomial", cost=lambda n, p: (ceil_log2(p), (p - 1) / p * n))
def gather_binomial(comm: Any, sendbuf: np.ndarray, recvbuf: np.ndarray | None, root: int,
                    tag: int = TAG_GATHER) -> None:
    """Binomial tree, the mirror of scatter: children send their subtree's blocks up.

    Cost: ⌈log2 p⌉ rounds, (p−1)/p·n bytes into root.
    """
    rank, size = comm.rank, comm.size
    vrank = (rank - root) % size
    m = sendbuf.size
    span = _lowbit_span(vrank, size)
    parent = (rank - (vrank & -vrank)) % size
    if span == 1 and vrank != 0:  # a leaf
        comm.Send(sendbuf, parent, tag)
        return
    if vrank == 0 and root == 0:
        data = recvbuf
    else:
        data = scratch(0, span * m, sendbuf.dtype)
    data[:m] = sendbuf
    mask = 1
    while mask < span:
        count = min(mask, span - mask)
        comm.Recv(data[mask * m:(mask + count) * m], (rank + mask) % size, tag)
        mask <<= 1
    if vrank != 0:
        comm.Send(data, parent, tag)
    elif root != 0:  # un-rotate: vrank j is rank (j + root) % p
        cut = (size - root) * m
        recvbuf[root * m:] = data[:cut]
        recvbuf[:root * m] = data[cut:]


def _v_call(comm: Any, func: Any, block: np.ndarray, args: tuple, back: list, root: int,
            mine: int, counts: list[int] | None = None) -> Call:
    """The Call of scatterv/gatherv: root states every rank's count, each rank its own
    (`mine`, its buffer's length), so a count only one side got wrong is agreed."""
    facts = tuple(enumerate(counts)) if comm.rank == root and counts is not None else ()
    return Call(func, (comm, *args, root), copy_back=back, facts=(*facts, (comm.rank, mine)),
                same=(("root", root), ("dtypes", same_text(block.dtype.str))))


# rank r's count: root's counts[r] and rank r's own buffer
_SCATTERV_CELLS = Cells(lambda p: p, lambda r, p: f"root's counts[{r}] and rank {r}'s recvbuf")
_GATHERV_CELLS = Cells(lambda p: p, lambda r, p: f"root's counts[{r}] and rank {r}'s sendbuf")


@public("scatterv")
@collective(cells=_SCATTERV_CELLS)
def scatterv(comm: Any, sendbuf: np.ndarray | None, counts: Sequence[int] | None,
             recvbuf: np.ndarray, root: int = 0, *, displs: Sequence[int] | None = None) -> Call:
    """Root sends counts[r] items starting at displs[r] of `sendbuf` to rank r (like comm.Scatterv).

    displs defaults to the exclusive prefix sum of counts. counts may be None on
    non-root ranks (recvbuf.size is then the count). recvbuf=MPI.IN_PLACE on root:
    root's own piece stays in sendbuf. Linear: p−1 messages from root.
    """
    size, rank = comm.size, comm.rank
    root = check_root(root, size)
    back: list = []
    if rank != root:
        recv = flat(recvbuf, "recvbuf", writable=True, copy_back=back)
        if counts is not None:
            counts, _ = check_counts(counts, displs, size)
            check_count(recv, counts[rank], "recvbuf")
        return _v_call(comm, _scatterv_linear, recv, (None, None, None, recv), back, root, recv.size)
    if counts is None or sendbuf is None:
        raise ValueError(f"counts and sendbuf are required on root {root}")
    counts, displs = check_counts(counts, displs, size)
    send = flat(sendbuf, "sendbuf")
    if in_place(recvbuf):
        recv = np.empty(counts[rank], send.dtype)
    else:
        recv = flat(recvbuf, "recvbuf", writable=True, copy_back=back)
    check_like(send, recv, "sendbuf", "recvbuf")
    check_count(recv, counts[rank], "recvbuf")
    check_fits(counts, displs, send, "sendbuf")
    return _v_call(comm, _scatterv_linear, recv, (send, counts, displs, recv), back, root,
                   recv.size, counts)


def _scatterv_linear(comm: Any, send: np.ndarray | None, counts: list[int] | None,
                     displs: list[int] | None, recv: np.ndarray, root: int) -> None:
    from mpi4py import MPI

    tag = TAGS["scatter"]
    if comm.rank != root:
        if recv.size:
            comm.Recv(recv, root, tag)
        return
    reqs = [comm.Isend(send[displs[r]:displs[r] + counts[r]], r, tag)
            for r in range(comm.size) if r != root and counts[r]]
    recv[:] = send[displs[root]:displs[root] + counts[root]]
    MPI.Request.Waitall(reqs)


@public("gatherv")
@collective(cells=_GATHERV_CELLS)
def gatherv(comm: Any, sendbuf: np.ndarray, recvbuf: np.ndarray | None,
            counts: Sequence[int] | None, root: int = 0, *,
            displs: Sequence[int] | None = None) -> Call:
    """Root receives counts[r] items from rank r at displs[r] of `recvbuf` (like comm.Gatherv).

    displs defaults to the exclusive prefix sum of counts. counts may be None on
    non-root ranks. sendbuf=MPI.IN_PLACE on root: root's own piece is already in
    recvbuf. Linear: p−1 messages into root.
    """
    size, rank = comm.size, comm.rank
    root = check_root(root, size)
    back: list = []
    if rank != root:
        send = flat(sendbuf, "sendbuf")
        if counts is not None:
            counts, _ = check_counts(counts, displs, size)
            check_count(send, counts[rank], "sendbuf")
        return _v_call(comm, _gatherv_linear, send, (send, None, None, None), back, root, send.size)
    if counts is None or recvbuf is None:
        raise ValueError(f"counts and recvbuf are required on root {root}")
    counts, displs = check_counts(counts, displs, size)
    send, recv = gathered_v(sendbuf, recvbuf, counts, displs, rank, back)
    return _v_call(comm, _gatherv_linear, send, (send, recv, counts, displs), back, root,
                   send.size, counts)


def _gatherv_linear(comm: Any, send: np.ndarray, recv: np.ndarray | None, counts: list[int] | None,
                    displs: list[int] | None, root: int) -> None:
    from mpi4py import MPI

    tag = TAGS["gather"]
    if comm.rank != root:
        if send.size:
            comm.Send(send, root, tag)
        return
    reqs = [comm.Irecv(recv[displs[r]:displs[r] + counts[r]], r, tag)
            for r in range(comm.size) if r != root and counts[r]]
    recv[displs[root]:displs[root] + counts[root]] = send
    MPI.Request.Waitall(reqs)
