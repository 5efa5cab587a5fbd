"""All-to-all exchanges: allgather(v) (ring, recursive doubling, Bruck), alltoall(v) (pairwise, Bruck)."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from .buffers import (block_count, check_count, check_counts, check_fits, check_like, flat,
                      gathered_v, in_place)
from .call import Call, Cells, collective, same_text
from .catalog import TAGS, public, register
from .partition import ceil_log2, fold_rank, pow2_floor, unfold_rank
from .tuning import select
from .workspace import scratch

__all__ = ["allgather", "alltoall", "allgatherv", "alltoallv", "allgather_ring",
           "allgather_recursive_doubling", "allgather_bruck", "alltoall_pairwise", "alltoall_bruck",
           "allgatherv_ring", "allgatherv_recursive_doubling", "alltoallv_pairwise"]

TAG_ALLGATHER = TAGS["allgather"]
TAG_ALLTOALL = TAGS["alltoall"]
TAG_ALLGATHERV = TAGS["allgatherv"]
TAG_ALLTOALLV = TAGS["alltoallv"]


def _exchange(comm: Any, collective: str, func: Any, args: tuple, block: np.ndarray, back: list,
              extra: tuple[tuple[str, int], ...] = ()) -> Call:
    """The Call of an exchange: what every rank must share, and copy-backs."""
    return Call(func, (comm, *args), copy_back=back,
                same=(("dtypes", same_text(block.dtype.str)), ("algorithm", same_text(func.__name__)),
                      *extra))


@public("allgather")
@collective
def allgather(comm: Any, sendbuf: np.ndarray, recvbuf: np.ndarray, *,
              algorithm: str | None = None) -> Call:
    """Every rank's `sendbuf` lands in block r of every rank's `recvbuf` (like comm.Allgather).

    sendbuf=MPI.IN_PLACE: each rank's contribution is already its block of recvbuf.
    """
    size = comm.size
    back: list = []
    recv = flat(recvbuf, "recvbuf", writable=True, copy_back=back)
    if in_place(sendbuf):
        m = block_count(recv, size, "recvbuf")
        send = recv[comm.rank * m:(comm.rank + 1) * m].copy()
    else:
        send = flat(sendbuf, "sendbuf")
    check_like(recv, send, "recvbuf", "sendbuf")
    check_count(recv, send.size * size, "recvbuf")
    func = select("allgather", algorithm, recv.nbytes, size)
    return _exchange(comm, "allgather", func, (send, recv), send, back,
                     (("block sizes (bytes)", send.nbytes),))


@public("alltoall")
@collective
def alltoall(comm: Any, sendbuf: np.ndarray, recvbuf: np.ndarray, *,
             algorithm: str | None = None) -> Call:
    """Block j of rank i's `sendbuf` goes to block i of rank j's `recvbuf` (like comm.Alltoall).

    sendbuf=MPI.IN_PLACE: the blocks to send are taken from recvbuf and replaced there.
    """
    size = comm.size
    back: list = []
    recv = flat(recvbuf, "recvbuf", writable=True, copy_back=back)
    send = recv.copy() if in_place(sendbuf) else flat(sendbuf, "sendbuf")
    check_like(recv, send, "recvbuf", "sendbuf")
    check_count(recv, send.size, "recvbuf")
    block_count(send, size, "sendbuf")
    func = select("alltoall", algorithm, send.nbytes, size)
    return _exchange(comm, "alltoall", func, (send, recv), send, back,
                     (("buffer sizes (bytes)", send.nbytes),))


@public("allgatherv")
@collective
def allgatherv(comm: Any, sendbuf: np.ndarray, recvbuf: np.ndarray, counts: Sequence[int], *,
               displs: Sequence[int] | None = None, algorithm: str | None = None) -> Call:
    """Rank r's `sendbuf` (counts[r] items) lands at displs[r] of every rank's `recvbuf`
    (like comm.Allgatherv). Every rank passes the same counts and displs.

    sendbuf=MPI.IN_PLACE: each rank's contribution is already at its place in recvbuf.
    """
    size, rank = comm.size, comm.rank
    counts, displs = check_counts(counts, displs, size)
    back: list = []
    send, recv = gathered_v(sendbuf, recvbuf, counts, displs, rank, back)
    func = select("allgatherv", algorithm, sum(counts) * send.itemsize, size)
    return _exchange(comm, "allgatherv", func, (send, recv, counts, displs), send, back,
                     (("counts and displs", same_text(repr((counts, displs)))),))


# cell i·p + j: the items rank i sends rank j, stated by both (sendcounts[j] on i, recvcounts[i] on j)
_ALLTOALLV_CELLS = Cells(lambda p: p * p, lambda cell, p: f"rank {cell // p}'s sendcounts[{cell % p}] "
                         f"and rank {cell % p}'s recvcounts[{cell // p}]")


@public("alltoallv")
@collective(cells=_ALLTOALLV_CELLS)
def alltoallv(comm: Any, sendbuf: np.ndarray, sendcounts: Sequence[int], recvbuf: np.ndarray,
              recvcounts: Sequence[int], *, sdispls: Sequence[int] | None = None,
              rdispls: Sequence[int] | None = None, algorithm: str | None = None) -> Call:
    """sendcounts[j] items at sdispls[j] of rank i's `sendbuf` go to rank j, where they land
    at rdispls[i] of `recvbuf` (like comm.Alltoallv); recvcounts[i] must match.

    sendbuf=MPI.IN_PLACE: the data is taken from recvbuf (with recvcounts and rdispls)
    and replaced there.
    """
    size = comm.size
    back: list = []
    recvcounts, rdispls = check_counts(recvcounts, rdispls, size)
    recv = flat(recvbuf, "recvbuf", writable=True, copy_back=back)
    check_fits(recvcounts, rdispls, recv, "recvbuf")
    if in_place(sendbuf):
        send, sendcounts, sdispls = recv.copy(), recvcounts, rdispls
    else:
        sendcounts, sdispls = check_counts(sendcounts, sdispls, size)
        send = flat(sendbuf, "sendbuf")
        check_fits(sendcounts, sdispls, send, "sendbuf")
    if sendcounts[comm.rank] != recvcounts[comm.rank]:
        raise ValueError(f"sendcounts[{comm.rank}] = {sendcounts[comm.rank]} but recvcounts"
                         f"[{comm.rank}] = {recvcounts[comm.rank]}: a rank's own block must fit")
    check_like(recv, send, "recvbuf", "sendbuf")
    func = select("alltoallv", algorithm, send.nbytes, size)
    call = _exchange(comm, "alltoallv", func, (send, sendcounts, sdispls, recv, recvcounts, rdispls),
                     send, back)
    me = comm.rank
    call.facts = (*((me * size + j, c) for j, c in enumerate(sendcounts)),
                  *((i * size + me, c) for i, c in enumerate(recvcounts)))
    return call


@register("allgather", "ring", cost=lambda n, p: (p - 1, (p - 1) / p * n))
def allgather_ring(comm: Any, sendbuf: np.ndarray, recvbuf: np.ndarray,
                   tag: int = TAG_ALLGATHER) -> None:
    """Ring with p equal blocks: see allgatherv_ring.

    Cost: p−1 messages of n/p bytes: (p−1)·α + (p−1)/p·n·β.
    """
    rank, size = comm.rank, comm.size
    m = sendbuf.size
    if size == 2:  # the one step, without the ring bookkeeping
        other = 1 - rank
        comm.Sendrecv(sendbuf, other, tag, recvbuf[other * m:(other + 1) * m], other, tag)
        recvbuf[rank * m:(rank + 1) * m] = sendbuf
        return
    allgatherv_ring(comm, sendbuf, recvbuf, [m] * size, [r * m for r in range(size)], tag)


def _doubling_cost(n: int, p: int) -> tuple[float, float]:
    p2 = pow2_floor(p)
    extra = 2 if p != p2 else 0
    return ceil_log2(p2) + extra, (p2 - 1) / p2 * n + (n if extra else 0)


@register("allgather", "recursive_doubling", cost=_doubling_cost)
def allgather_recursive_doubling(comm: Any, sendbuf: np.ndarray, recvbuf: np.ndarray,
                                 tag: int = TAG_ALLGATHER) -> None:
    """Recursive doubling with p equal blocks: see allgatherv_recursive_doubling.

    Cost: log2 p' rounds, (p'−1)/p'·n bytes (+2 rounds when p != p').
    """
    m, size = sendbuf.size, comm.size
    allgatherv_recursive_doubling(comm, sendbuf, recvbuf, [m] * size, [r * m for r in range(size)],
                                  tag)


@register("allgatherv", "ring", cost=lambda n, p: (p - 1, (p - 1) / p * n))
def allgatherv_ring(comm: Any, sendbuf: np.ndarray, recvbuf: np.ndarray, counts: Sequence[int],
                    displs: Sequence[int], tag: int = TAG_ALLGATHERV) -> None:
    """Ring: in step s, pass block rank−s to the right and take block rank−s−1 from the left.

    Blocks may differ in size (some empty); each crosses every link once.
    Cost: p−1 messages, (p−1)/p·n bytes for even counts.
    """
    rank, size = comm.rank, comm.size
    right, left = (rank + 1) % size, (rank - 1) % size

    def block(r: int) -> np.ndarray:
        return recvbuf[displs[r]:displs[r] + counts[r]]

    for step in range(size - 1):
        send, recv = (rank - step) % size, (rank - step - 1) % size
        comm.Sendrecv(sendbuf if step == 0 else block(send), right, tag, block(recv), left, tag)
    block(rank)[:] = sendbuf  # local copy last: nobody waits for it


@register("allgatherv", "recursive_doubling", cost=_doubling_cost)
def allgatherv_recursive_doubling(comm: Any, sendbuf: np.ndarray, recvbuf: np.ndarray,
                                  counts: Sequence[int], displs: Sequence[int],
                                  tag: int = TAG_ALLGATHERV) -> None:
    """Recursive doubling: in round k, swap everything gathered so far with rank XOR 2^k.

    Blocks are gathered in rank order in one contiguous run (recvbuf itself when displs
    are the default), so a group of blocks is one slice. Not a power of two: the first
    2·rem ranks pair up, the even one gives its block to the odd one and gets the full
    result at the end. Cost: log2 p' rounds, (p'−1)/p'·n bytes (+2 rounds when p != p').
    """
    rank, size = comm.rank, comm.size
    offsets = [0]
    for c in counts:
        offsets.append(offsets[-1] + c)
    packed = list(displs) == offsets[:-1]
    work = recvbuf[:offsets[-1]] if packed else scratch(0, offsets[-1], recvbuf.dtype)
    rem = size - pow2_floor(size)
    work[offsets[rank]:offsets[rank + 1]] = sendbuf
    newrank = fold_rank(rank, size)
    if rank < 2 * rem:
        if newrank < 0:
            comm.Send(sendbuf, rank + 1, tag)
            comm.Recv(work, rank + 1, tag)
            newrank = -1
        else:
            comm.Recv(work[offsets[rank - 1]:offsets[rank]], rank - 1, tag)

    def first(group: int) -> int:  # first real rank folded into `group`; first(p') == p
        return unfold_rank(group, size) - (1 if group < rem else 0)

    mask = 1
    while newrank >= 0 and mask < size - rem:
        base = newrank & ~(mask - 1)  # my group of folded ranks so far: [base, base + mask)
        other = base ^ mask
        partner = unfold_rank(newrank ^ mask, size)
        mine = work[offsets[first(base)]:offsets[first(base + mask)]]
        theirs = work[offsets[first(other)]:offsets[first(other + mask)]]
        comm.Sendrecv(mine, partner, tag, theirs, partner, tag)
        mask <<= 1
    if newrank >= 0 and rank < 2 * rem:
        comm.Send(work, rank - 1, tag)
    if not packed:
        for r in range(size):
            recvbuf[displs[r]:displs[r] + counts[r]] = work[offsets[r]:offsets[r + 1]]


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


@register("alltoallv", "pairwise", cost=lambda n, p: (p - 1, (p - 1) / p * n))
def alltoallv_pairwise(comm: Any, sendbuf: np.ndarray, sendcounts: Sequence[int],
                       sdispls: Sequence[int], recvbuf: np.ndarray, recvcounts: Sequence[int],
                       rdispls: Sequence[int], tag: int = TAG_ALLTOALLV) -> None:
    """Pairwise exchange: in step s, send to rank + s and receive from rank − s.

    Each pair exchanges its own counts, so uneven (and empty) blocks cost nothing extra.
    Cost: p−1 messages, (p−1)/p·n bytes for even counts.
    """
    rank, size = comm.rank, comm.size
    for step in range(1, size):
        dest, source = (rank + step) % size, (rank - step) % size
        comm.Sendrecv(sendbuf[sdispls[dest]:sdispls[dest] + sendcounts[dest]], dest, tag,
                      recvbuf[rdispls[source]:rdispls[source] + recvcounts[source]], source, tag)
    recvbuf[rdispls[rank]:rdispls[rank] + recvcounts[rank]] = \
        sendbuf[sdispls[rank]:sdispls[rank] + sendcounts[rank]]
