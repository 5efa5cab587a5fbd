"""Broadcast: root's buffer to every rank, four ways (linear, binomial tree, van de Geijn, pipeline)."""

from __future__ import annotations

from typing import Any

import numpy as np

from .buffers import check_root, flat
from .call import Call, collective, same_text
from .catalog import TAGS, public, register
from .partition import block_counts, ceil_log2
from .phase import phase
from .tuning import select

__all__ = ["bcast", "bcast_linear", "bcast_binomial", "bcast_scatter_allgather", "bcast_pipeline",
           "PIPELINE_SEGMENT"]

TAG = TAGS["bcast"]
PIPELINE_SEGMENT = 1 << 17  # bytes per pipeline segment: big enough to amortise α


@public("bcast")
@collective
def bcast(comm: Any, buf: np.ndarray, root: int = 0, *, algorithm: str | None = None) -> Call:
    """Copy `buf` from `root` into `buf` on every rank (like comm.Bcast)."""
    size = comm.size
    root = check_root(root, size)
    back: list = []
    data = flat(buf, "buf", writable=comm.rank != root, copy_back=back)
    func = select("bcast", algorithm, data.nbytes, size)
    return Call(func if size > 1 else None, (comm, data, root), copy_back=back,
                same=(("root", root), ("buffer sizes (bytes)", data.nbytes),
                      ("algorithm", same_text(func.__name__))))


@register("bcast", "linear", cost=lambda n, p: (p - 1, (p - 1) * n))
def bcast_linear(comm: Any, buf: np.ndarray, root: int, tag: int = TAG) -> None:
    """Root sends the whole buffer to each rank in turn.

    Cost: p−1 messages of n bytes, all from root: (p−1)·α + (p−1)·n·β.
    """
    from mpi4py import MPI

    rank, size = comm.rank, comm.size
    if rank == root:
        reqs = [comm.Isend(buf, dest, tag) for dest in range(size) if dest != root]
        MPI.Request.Waitall(reqs)
    else:
        comm.Recv(buf, root, tag)


@register("bcast", "binomial", cost=lambda n, p: (ceil_log2(p), ceil_log2(p) * n))
def bcast_binomial(comm: Any, buf: np.ndarray, root: int, tag: int = TAG) -> None:
    """Binomial tree: every rank that has the data forwards it, doubling the holders each round.

    Ranks are numbered relative to root (vrank). vrank v receives from v − lowbit(v),
    then sends to v + m for each m below its lowest set bit.
    Cost: ⌈log2 p⌉ rounds of n bytes: ⌈log2 p⌉·(α + n·β).
    """
    rank, size = comm.rank, comm.size
    vrank = (rank - root) % size
    mask = 1
    while mask < size:  # receive from the parent: clear the lowest set bit
        if vrank & mask:
            comm.Recv(buf, (rank - mask) % size, tag)
            break
        mask <<= 1
    mask >>= 1
    while mask > 0:  # send to the children, farthest first
        if vrank + mask < size:
            comm.Send(buf, (rank + mask) % size, tag)
        mask >>= 1


def _scatter_cost(n: int, p: int) -> tuple[float, float]:
    return ceil_log2(p) + p - 1, 2 * (p - 1) / p * n


@register("bcast", "scatter_allgather", cost=_scatter_cost)
def bcast_scatter_allgather(comm: Any, buf: np.ndarray, root: int, tag: int = TAG) -> None:
    """van de Geijn: binomial scatter of p blocks, then a ring allgather of the blocks.

    Good for large n: each rank sends about 2n bytes in total instead of n·log2 p.
    Cost: ⌈log2 p⌉ + p − 1 messages, 2·(p−1)/p·n bytes.
    """
    rank, size = comm.rank, comm.size
    vrank = (rank - root) % size
    counts, displs = block_counts(buf.size, size)  # block j belongs to vrank j
    displs.append(buf.size)

    def blocks(first: int, stop: int) -> np.ndarray:  # vrank blocks [first, stop) as one view
        return buf[displs[first]:displs[min(stop, size)]]

    # Binomial scatter: vrank v receives blocks [v, v + lowbit(v)) from its parent.
    phase(comm, "scatter")
    mask = 1
    while mask < size:
        if vrank & mask:
            comm.Recv(blocks(vrank, vrank + mask), (rank - mask) % size, tag)
            break
        mask <<= 1
    mask >>= 1
    while mask > 0:
        if vrank + mask < size:
            comm.Send(blocks(vrank + mask, vrank + 2 * mask), (rank + mask) % size, tag)
        mask >>= 1
    # Ring allgather: pass the block received last round to the right neighbour.
    phase(comm, "allgather")
    right, left = (rank + 1) % size, (rank - 1) % size
    for step in range(size - 1):
        send = (vrank - step) % size
        recv = (vrank - step - 1) % size
        comm.Sendrecv(blocks(send, send + 1), right, tag, blocks(recv, recv + 1), left, tag)


def _pipeline_cost(n: int, p: int) -> tuple[float, float]:
    segments = max(1, -(-n // PIPELINE_SEGMENT))
    steps = p - 2 + segments
    return steps, steps * n / segments


@register("bcast", "pipeline", cost=_pipeline_cost)
def bcast_pipeline(comm: Any, buf: np.ndarray, root: int, tag: int = TAG,
                   segment: int = PIPELINE_SEGMENT) -> None:
    """Chain root → root+1 → ... in segments, so all links carry data at once.

    With k segments of s = n/k bytes: p−2+k steps of s bytes, T ≈ (p−2+k)·(α + s·β),
    close to n·β for large n whatever p is.
    """
    from mpi4py import MPI

    rank, size = comm.rank, comm.size
    vrank = (rank - root) % size
    step = max(1, segment // max(1, buf.itemsize))
    bounds = list(range(0, buf.size, step)) or [0]
    segs = [buf[start:start + step] for start in bounds]
    left, right = (rank - 1) % size, (rank + 1) % size
    last = vrank == size - 1
    sends = []
    if vrank == 0:
        sends = [comm.Isend(seg, right, tag) for seg in segs]
    else:
        recv = comm.Irecv(segs[0], left, tag)
        for i, seg in enumerate(segs):
            recv.Wait()
            if i + 1 < len(segs):  # post the next receive before forwarding this one
                recv = comm.Irecv(segs[i + 1], left, tag)
            if not last:
                sends.append(comm.Isend(seg, right, tag))
    MPI.Request.Waitall(sends)
