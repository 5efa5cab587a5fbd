"""All-to-all exchanges: allgather (ring, recursive doubling, Bruck), alltoall (pairwise, Bruck)."""

from __future__ import annotations

from typing import Any

import numpy as np

from .buffers import check_count, check_like, flat
from .partition import ceil_log2, fold_rank, pow2_floor, unfold_rank
from .registry import TAGS, public, register, select
from .workspace import scratch

__all__ = ["allgather", "alltoall", "allgather_ring", "allgather_recursive_doubling",
           "allgather_bruck", "alltoall_pairwise", "alltoall_bruck"]

TAG_ALLGATHER = TAGS["allgather"]
TAG_ALLTOALL = TAGS["alltoall"]


def _pair(sendbuf: np.ndarray, recvbuf: np.ndarray, blocks: int) -> tuple[np.ndarray, np.ndarray]:
    """Flat send and recv views; recv must hold `blocks` × sendbuf's items of its dtype."""
    send = flat(sendbuf, "sendbuf")
    recv = flat(recvbuf, "recvbuf", writable=True)
    check_like(recv, send, "recvbuf", "sendbuf")
    check_count(recv, send.size * blocks, "recvbuf")
    return send, recv


@public("allgather")
def allgather(comm: Any, sendbuf: np.ndarray, recvbuf: np.ndarray, *,
              algorithm: str | None = None) -> None:
    """Every rank's `sendbuf` lands in block r of every rank's `recvbuf` (like comm.Allgather)."""
    size = comm.size
    send, recv = _pair(sendbuf, recvbuf, size)
    func = select("allgather", algorithm, recv.nbytes, size)
    func(comm, send, recv)


@public("alltoall")
def alltoall(comm: Any, sendbuf: np.ndarray, recvbuf: np.ndarray, *,
             algorithm: str | None = None) -> None:
    """Block j of rank i's `sendbuf` goes to block i of rank j's `recvbuf` (like comm.Alltoall)."""
    size = comm.size
    send, recv = _pair(sendbuf, recvbuf, 1)
    if send.size % size:
        raise ValueError(f"sendbuf has {send.size} items, not a multiple of {size} ranks")
    func = select("alltoall", algorithm, send.nbytes, size)
    func(comm, send, recv)


@register("allgather", "ring", cost=lambda n, p: (p - 1, (p - 1) / p * n))
def allgather_ring(comm: Any, sendbuf: np.ndarray, recvbuf: np.ndarray,
                   tag: int = TAG_ALLGATHER) -> None:
    """Ring: in step s, pass block rank−s to the right and take block rank−s−1 from the left.

    Cost: p−1 messages of n/p bytes: (p−1)·α + (p−1)/p·n·β.
    """
    rank, size = comm.rank, comm.size
    m = sendbuf.size
    if size == 2:  # the one step, without the ring bookkeeping
        other = 1 - rank
        comm.Sendrecv(sendbuf, other, tag, recvbuf[other * m:(other + 1) * m], other, tag)
        recvbuf[rank * m:(rank + 1) * m] = sendbuf
        return
    right, left = (rank + 1) % size, (rank - 1) % size
    for step in range(size - 1):
        send, recv = (rank - step) % size, (rank - step - 1) % size
        outgoing = sendbuf if step == 0 else recvbuf[send * m:(send + 1) * m]
        comm.Sendrecv(outgoing, right, tag, recvbuf[recv * m:(recv + 1) * m], left, tag)
    recvbuf[rank * m:(rank + 1) * m] = sendbuf  # local copy last: nobody waits for it


def _doubling_cost(n: int, p: int) -> tuple[float, float]:
    p2 = pow2_floor(p)
    extra = 2 if p != p2 else 0
    return ceil_log2(p2) + extra, (p2 - 1) / p2 * n + (n if extra else 0)


@register("allgather", "recursive_doubling", cost=_doubling_cost)
def allgather_recursive_doubling(comm: Any, sendbuf: np.ndarray, recvbuf: np.ndarray,
                                 tag: int = TAG_ALLGATHER) -> None:
    """Recursive doubling: in round k, swap everything gathered so far with rank XOR 2^k.

    Not a power of two: the first 2·rem ranks pair up, the even one gives its block to
    the odd one and gets the full result at the end.
    Cost: log2 p' rounds, (p'−1)/p'·n bytes (+2 rounds when p != p').
    """
    rank, size = comm.rank, comm.size
    m = sendbuf.size
    rem = size - pow2_floor(size)
    recvbuf[rank * m:(rank + 1) * m] = sendbuf
    newrank = fold_rank(rank, size)
    if rank < 2 * rem:
        if newrank < 0:
            comm.Send(sendbuf, rank + 1, tag)
            comm.Recv(recvbuf, rank + 1, tag)
            return
        comm.Recv(recvbuf[(rank - 1) * m:rank * m], rank - 1, tag)

    if not rem:  # a power of two: folded ranks are real ranks, block g is at g·m
        mask = 1
        while mask < size:
            base = rank & ~(mask - 1)
            other = base ^ mask
            partner = rank ^ mask
            comm.Sendrecv(recvbuf[base * m:(base + mask) * m], partner, tag,
                          recvbuf[other * m:(other + mask) * m], partner, tag)
            mask <<= 1
        return

    def first(group: int) -> int:  # first real rank folded into `group`; first(p') == p
        return unfold_rank(group, size) - (1 if group < rem else 0)

    mask = 1
    while mask < size - rem:
        base = newrank & ~(mask - 1)  # my group of folded ranks so far: [base, base + mask)
        other = base ^ mask
        partner = unfold_rank(newrank ^ mask, size)
        mine = recvbuf[first(base) * m:first(base + mask) * m]
        theirs = recvbuf[first(other) * m:first(other + mask) * m]
        comm.Sendrecv(mine, partner, tag, theirs, partner, tag)
        mask <<= 1
    if rank < 2 * rem:
        comm.Send(recvbuf, rank - 1, tag)


@register("allgather", "bruck", cost=lambda n, p: (ceil_log2(p), (p - 1) / p * n))
def allgather_bruck(comm: Any, sendbuf: np.ndarray, recvbuf: np.ndarray,
                    tag: int = TAG_ALLGATHER) -> None:
    """Bruck: in round k, send all blocks gathered so far to rank − 2^k, receive from rank + 2^k.

    Works for any p in ⌈log2 p⌉ rounds; blocks arrive rotated by rank, so one local
    rotation puts them in order at the end. Cost: ⌈log2 p⌉ messages, (p−1)/p·n bytes.
    """
    rank, size = comm.rank, comm.size
    m = sendbuf.size
    # work block j = block of rank (rank + j) % p; on rank 0 that is already the final order
    work = recvbuf if rank == 0 else scratch(0, recvbuf.size, recvbuf.dtype)
    work[:m] = sendbuf
    have = 1
    while have < size:
        count = min(have, size - have)
        comm.Sendrecv(work[:count * m], (rank - have) % size, tag,
                      work[have * m:(have + count) * m], (rank + have) % size, tag)
        have += count
    if rank == 0:
        return
    cut = (size - rank) * m
    recvbuf[rank * m:] = work[:cut]
    recvbuf[:rank * m] = work[cut:]


@register("alltoall", "pairwise", cost=lambda n, p: (p - 1, (p - 1) / p * n))
def alltoall_pairwise(comm: Any, sendbuf: np.ndarray, recvbuf: np.ndarray,
                      tag: int = TAG_ALLTOALL) -> None:
    """Pairwise exchange: in step s, send to rank + s and receive from rank − s.

    Cost: p−1 messages of n/p bytes: (p−1)·α + (p−1)/p·n·β.
    """
    rank, size = comm.rank, comm.size
    m = sendbuf.size // size
    for step in range(1, size):
        dest, source = (rank + step) % size, (rank - step) % size
        comm.Sendrecv(sendbuf[dest * m:(dest + 1) * m], dest, tag,
                      recvbuf[source * m:(source + 1) * m], source, tag)
    recvbuf[rank * m:(rank + 1) * m] = sendbuf[rank * m:(rank + 1) * m]  # local copy last


def _bruck_cost(n: int, p: int) -> tuple[float, float]:
    return ceil_log2(p), ceil_log2(p) * n / 2


@register("alltoall", "bruck", cost=_bruck_cost)
def alltoall_bruck(comm: Any, sendbuf: np.ndarray, recvbuf: np.ndarray,
                   tag: int = TAG_ALLTOALL) -> None:
    """Bruck: rotate, then in round k move every block whose index has bit k set by 2^k ranks.

    ⌈log2 p⌉ messages instead of p−1, at the price of sending about n/2 bytes each
    round: good for small blocks. Cost: ⌈log2 p⌉ messages, ⌈log2 p⌉·n/2 bytes.
    """
    rank, size = comm.rank, comm.size
    m = sendbuf.size // size
    cut = rank * m
    work = scratch(0, size * m, sendbuf.dtype)
    work[:size * m - cut], work[size * m - cut:] = sendbuf[cut:], sendbuf[:cut]
    work = work.reshape(size, m)  # row j: my block for rank + j
    half = (size + 1) // 2
    pack = scratch(1, half * m, sendbuf.dtype).reshape(half, m)
    got = scratch(2, half * m, sendbuf.dtype).reshape(half, m)
    bit = 1
    while bit < size:
        rows = [j for j in range(size) if j & bit]
        out, into = pack[:len(rows)], got[:len(rows)]
        np.take(work, rows, axis=0, out=out)
        comm.Sendrecv(out, (rank + bit) % size, tag, into, (rank - bit) % size, tag)
        work[rows] = into
        bit <<= 1
    # row j now holds the block from rank (rank − j) % p
    recv = recvbuf.reshape(size, m)
    order = [(rank - j) % size for j in range(size)]
    recv[order] = work
