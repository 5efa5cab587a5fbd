"""Reductions: reduce, allreduce and reduce_scatter_block, from trees, rings and recursive halving.

Ordered algorithms combine partial results as (lower ranks) op (higher ranks),
so they also give the right answer for non-commutative ops; the ring and
pairwise ones need a commutative op (registry.ORDERED lists which is which).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from .buffers import (block_count, check_count, check_counts, check_like, check_root, flat,
                      in_place, in_place_on_root, root_buffer)
from .call import Call, collective, same_text
from .catalog import TAGS, public, register
from .ops import Op, resolve_op
from .partition import block_counts, ceil_log2, fold_rank, pow2_floor, unfold_rank
from .phase import phase
from .tuning import select_reduction
from .workspace import scratch

__all__ = [
    "reduce", "allreduce", "reduce_scatter_block", "reduce_scatter",
    "reduce_linear", "reduce_binomial", "reduce_rabenseifner",
    "allreduce_reduce_bcast", "allreduce_recursive_doubling", "allreduce_ring",
    "allreduce_rabenseifner",
    "reduce_scatter_recursive_halving", "reduce_scatter_ring", "reduce_scatter_pairwise",
    "reduce_scatter_v_recursive_halving", "reduce_scatter_v_ring", "reduce_scatter_v_pairwise",
]

TAG_REDUCE = TAGS["reduce"]
TAG_ALLREDUCE = TAGS["allreduce"]
TAG_RSB = TAGS["reduce_scatter_block"]
TAG_RS = TAGS["reduce_scatter"]


def _mismatch(op: Any, sendbuf: np.ndarray, recvbuf: np.ndarray) -> None:
    """Raise for recvbuf's dtype, after any error in `op` itself (the order users see)."""
    resolve_op(op).check_dtype(sendbuf.dtype)
    check_like(recvbuf, sendbuf, "recvbuf", "sendbuf")


# --------------------------------------------------------------------------- public API

def _reduction(comm: Any, collective: str, send: np.ndarray, recv: np.ndarray | None, op: Any,
               algorithm: str | None, back: list, before: tuple = (), root: int | None = None) -> Call:
    """The Call of a reduction: op and algorithm resolved, and what every rank must share."""
    if recv is not None and recv.dtype != send.dtype:
        _mismatch(op, send, recv)
    op, func = select_reduction(collective, algorithm, send.nbytes, comm.size, op, send.dtype)
    same = (("root", -1 if root is None else root), ("buffer sizes (bytes)", send.nbytes), ("dtypes", same_text(send.dtype.str)),
            ("ops", same_text(op.name)), ("algorithm", same_text(func.__name__)))
    after = () if root is None else (root,)
    return Call(func, (comm, send, recv, *before, op, *after), same=same, copy_back=back)


@public("reduce")
@collective
def reduce(comm: Any, sendbuf: np.ndarray, recvbuf: np.ndarray | None, op: Any = "SUM",
           root: int = 0, *, algorithm: str | None = None) -> Call:
    """Combine every rank's `sendbuf` with `op` into `recvbuf` on `root` (like comm.Reduce).

    recvbuf may be None on the other ranks; on root it must match sendbuf.
    sendbuf=MPI.IN_PLACE on root only: root's input is taken from recvbuf.
    """
    size, rank = comm.size, comm.rank
    root = check_root(root, size)
    back: list = []
    if in_place(sendbuf):
        recv = in_place_on_root(recvbuf, "recvbuf", rank, root, back)
        send = recv.copy()
    else:
        send = flat(sendbuf, "sendbuf")
        recv = root_buffer(recvbuf, "recvbuf", rank == root, root, send, send.size, writable=True,
                           copy_back=back)
    return _reduction(comm, "reduce", send, recv, op, algorithm, back, root=root)


@public("allreduce")
@collective
def allreduce(comm: Any, sendbuf: np.ndarray, recvbuf: np.ndarray, op: Any = "SUM", *,
              algorithm: str | None = None) -> Call:
    """Combine every rank's `sendbuf` with `op` into `recvbuf` on all ranks (like comm.Allreduce).

    sendbuf=MPI.IN_PLACE: the input is taken from recvbuf.
    """
    back: list = []
    recv = flat(recvbuf, "recvbuf", writable=True, copy_back=back)
    send = recv.copy() if in_place(sendbuf) else flat(sendbuf, "sendbuf")
    if recv.size != send.size:
        check_count(recv, send.size, "recvbuf")
    return _reduction(comm, "allreduce", send, recv, op, algorithm, back)


@public("reduce_scatter_block")
@collective
def reduce_scatter_block(comm: Any, sendbuf: np.ndarray, recvbuf: np.ndarray,
                         op: Any = "SUM", *, algorithm: str | None = None) -> Call:
    """Reduce p blocks of m items elementwise; rank r gets block r (like comm.Reduce_scatter_block).

    sendbuf=MPI.IN_PLACE: recvbuf holds all p blocks of input; the result is its first block.
    """
    size = comm.size
    back: list = []
    recv = flat(recvbuf, "recvbuf", writable=True, copy_back=back)
    if in_place(sendbuf):
        send = recv.copy()
        recv = recv[:block_count(send, size, "recvbuf")]
    else:
        send = flat(sendbuf, "sendbuf")
    check_count(send, recv.size * size, "sendbuf")
    return _reduction(comm, "reduce_scatter_block", send, recv, op, algorithm, back)


@public("reduce_scatter")
@collective
def reduce_scatter(comm: Any, sendbuf: np.ndarray, recvbuf: np.ndarray, counts: Sequence[int],
                   op: Any = "SUM", *, algorithm: str | None = None) -> Call:
    """Reduce sum(counts) items elementwise; rank r gets the counts[r] items after the first
    counts[0] + ... + counts[r−1] (like comm.Reduce_scatter). Every rank passes the same counts.

    sendbuf=MPI.IN_PLACE: recvbuf holds the whole input; the result is its first counts[rank] items.
    """
    size, rank = comm.size, comm.rank
    counts, _ = check_counts(counts, None, size)
    back: list = []
    recv = flat(recvbuf, "recvbuf", writable=True, copy_back=back)
    if in_place(sendbuf):
        send = recv.copy()
        check_count(send, sum(counts), "recvbuf")
        recv = recv[:counts[rank]]
    else:
        send = flat(sendbuf, "sendbuf")
        check_count(send, sum(counts), "sendbuf")
        check_count(recv, counts[rank], "recvbuf")
    call = _reduction(comm, "reduce_scatter", send, recv, op, algorithm, back, (counts,))
    call.same = (*call.same[1:], ("counts", same_text(repr(counts))))
    return call


# --------------------------------------------------------------------------- shared steps

def _fold_in(comm: Any, src: np.ndarray, acc: np.ndarray, tmp: np.ndarray, op: Op,
             tag: int) -> tuple[int, np.ndarray]:
    """Power-of-two fold: among the first 2·rem ranks, each even rank sends its data to
    the odd one above it, which combines (even) op (odd) into `acc`.

    Returns the folded rank (-1: sits out) and the buffer now holding my data.
    """
    rank, size = comm.rank, comm.size
    newrank = fold_rank(rank, size)
    if rank < 2 * (size - pow2_floor(size)):
        if newrank < 0:
            comm.Send(src, rank + 1, tag)
        else:
            incoming = tmp[:src.size]
            comm.Recv(incoming, rank - 1, tag)
            op.ufunc(incoming, src, out=acc)
            return newrank, acc
    return newrank, src


def _halve(comm: Any, src: np.ndarray, acc: np.ndarray, tmp: np.ndarray, op: Op, newrank: int,
           bounds: list[int], tag: int) -> tuple[int, int, list[tuple[int, int, int]]]:
    """Recursive halving over p2 = len(bounds)−1 slots (slot s is acc[bounds[s]:bounds[s+1]]).

    Round k pairs folded ranks differing in bit k (mask 1, 2, 4, ...): each keeps one
    half of its current slot range, sends the other half and adds the partner's half.
    Each partial result covers an aligned, contiguous group of ranks, so combining
    (lower group) op (upper group) keeps rank order. Ends owning slot bitreverse(newrank).
    The first round reads `src` (sendbuf: no up-front copy), later ones `acc`.
    Returns the kept range (lo, hi) and the rounds (mask, give_lo, give_hi) to undo it.
    """
    size = comm.size
    p2 = len(bounds) - 1
    lo, hi, mask = 0, p2, 1
    rounds = []
    if p2 == 1 and src is not acc:
        acc[:] = src
    while mask < p2:
        partner = unfold_rank(newrank ^ mask, size)
        mid = (lo + hi) // 2
        upper = newrank & mask
        keep, give = ((mid, hi), (lo, mid)) if upper else ((lo, mid), (mid, hi))
        kept = slice(bounds[keep[0]], bounds[keep[1]])
        incoming = tmp[:kept.stop - kept.start]
        comm.Sendrecv(src[bounds[give[0]]:bounds[give[1]]], partner, tag, incoming, partner, tag)
        if upper:
            op.ufunc(incoming, src[kept], out=acc[kept])
        else:
            op.ufunc(src[kept], incoming, out=acc[kept])
        rounds.append((mask, give[0], give[1]))
        lo, hi = keep
        src = acc
        mask <<= 1
    return lo, hi, rounds


# --------------------------------------------------------------------------- reduce

@register("reduce", "linear", cost=lambda n, p: (p - 1, (p - 1) * n))
def reduce_linear(comm: Any, sendbuf: np.ndarray, recvbuf: np.ndarray | None, op: Op,
                  root: int, tag: int = TAG_REDUCE) -> None:
    """Every rank sends to root; root combines them in rank order.

    Cost: p−1 messages of n bytes into root: (p−1)·(α + n·β) + (p−1)·n·γ.
    """
    rank, size = comm.rank, comm.size
    if rank != root:
        comm.Send(sendbuf, root, tag)
        return
    tmp = scratch(0, sendbuf.size, sendbuf.dtype)
    for source in range(size):
        if source == root:
            part = sendbuf
        else:
            comm.Recv(tmp, source, tag)
            part = tmp
        if source == 0:
            recvbuf[:] = part
        else:
            op.ufunc(recvbuf, part, out=recvbuf)


@register("reduce", "binomial", cost=lambda n, p: (ceil_log2(p), ceil_log2(p) * n))
def reduce_binomial(comm: Any, sendbuf: np.ndarray, recvbuf: np.ndarray | None, op: Op,
                    root: int, tag: int = TAG_REDUCE) -> None:
    """Binomial tree: in round k, vrank v with bit k set sends its partial to v − 2^k and stops.

    For a commutative op vranks are relative to root; otherwise the tree is rooted at
    rank 0 (so partials stay in rank order) and rank 0 sends the result to root.
    Cost: ⌈log2 p⌉ rounds of n bytes: ⌈log2 p⌉·(α + n·β + n·γ).
    """
    rank, size = comm.rank, comm.size
    top = root if op.commutative else 0
    vrank = (rank - top) % size
    acc = None  # my partial result, once I have received something
    mask = 1
    while mask < size:
        if vrank & mask:  # hand my partial to the parent, and I am done
            comm.Send(sendbuf if acc is None else acc, (rank - mask) % size, tag)
            break
        if vrank + mask < size:
            child = (rank + mask) % size
            if acc is None:  # first child: receive straight into the result buffer
                acc = recvbuf if recvbuf is not None else scratch(1, sendbuf.size, sendbuf.dtype)
                comm.Recv(acc, child, tag)
                op.ufunc(sendbuf, acc, out=acc)  # my ranks are below the child's
            else:
                tmp = scratch(0, sendbuf.size, sendbuf.dtype)
                comm.Recv(tmp, child, tag)
                op.ufunc(acc, tmp, out=acc)
        mask <<= 1
    if vrank == 0 and acc is None:  # p == 1
        acc = recvbuf
        acc[:] = sendbuf
    if top != root:
        if rank == top:
            comm.Send(acc, root, tag)
        elif rank == root:
            comm.Recv(recvbuf, top, tag)


def _rabenseifner_cost(n: int, p: int) -> tuple[float, float]:
    # p not a power of two: the fold, and the result's hop to a root that sat out of the
    # power-of-two part (root 0 always does): two more messages of n bytes at worst
    p2 = pow2_floor(p)
    extra = 2 if p != p2 else 0
    return 2 * ceil_log2(p2) + extra, 2 * (p2 - 1) / p2 * n + extra * n


@register("reduce", "rabenseifner", cost=_rabenseifner_cost)
def reduce_rabenseifner(comm: Any, sendbuf: np.ndarray, recvbuf: np.ndarray | None, op: Op,
                        root: int, tag: int = TAG_REDUCE) -> None:
    """Rabenseifner: reduce-scatter by recursive halving, then a binomial gather to root.

    Each rank sends about 2n bytes in total instead of n·log2 p: best for large n.
    Cost: 2·log2 p' rounds, 2·(p'−1)/p'·n bytes, p' = largest power of two <= p,
    plus up to two rounds of n bytes when p is not a power of two (fold, hop to root).
    """
    rank, size = comm.rank, comm.size
    n = sendbuf.size
    acc = recvbuf if rank == root else scratch(1, n, sendbuf.dtype)
    tmp = scratch(0, n, sendbuf.dtype)
    if size != pow2_floor(size):
        phase(comm, "fold")
    newrank, mine = _fold_in(comm, sendbuf, acc, tmp, op, tag)
    fold_root = fold_rank(root, size)
    top = fold_root if fold_root >= 0 else fold_rank(root + 1, size)
    if newrank >= 0:
        p2 = pow2_floor(size)
        _, displs = block_counts(n, p2)
        bounds = displs + [n]
        phase(comm, "reduce-scatter")
        lo, hi, rounds = _halve(comm, mine, acc, tmp, op, newrank, bounds, tag)
        phase(comm, "gather")
        for mask, give_lo, give_hi in reversed(rounds):  # binomial gather towards `top`
            distance = newrank ^ top
            if distance >= 2 * mask:
                break  # already sent
            partner = unfold_rank(newrank ^ mask, size)
            if distance & mask:
                comm.Send(acc[bounds[lo]:bounds[hi]], partner, tag)
                break
            comm.Recv(acc[bounds[give_lo]:bounds[give_hi]], partner, tag)
            lo, hi = min(lo, give_lo), max(hi, give_hi)
    if fold_root < 0:  # root sat out of the power-of-two part
        phase(comm, "to root")
        if rank == root + 1:
            comm.Send(acc, root, tag)
        elif rank == root:
            comm.Recv(recvbuf, root + 1, tag)


# --------------------------------------------------------------------------- allreduce

def _reduce_bcast_cost(n: int, p: int) -> tuple[float, float]:
    return 2 * ceil_log2(p), 2 * ceil_log2(p) * n


@register("allreduce", "reduce_bcast", cost=_reduce_bcast_cost)
def allreduce_reduce_bcast(comm: Any, sendbuf: np.ndarray, recvbuf: np.ndarray, op: Op,
                           tag: int = TAG_ALLREDUCE) -> None:
    """Binomial reduce to rank 0, then binomial broadcast from rank 0.

    Cost: 2·⌈log2 p⌉ rounds of n bytes.
    """
    from .broadcast import bcast_binomial

    phase(comm, "reduce")
    reduce_binomial(comm, sendbuf, recvbuf, op, 0, tag)
    phase(comm, "bcast")
    bcast_binomial(comm, recvbuf, 0, tag)


def _doubling_cost(n: int, p: int) -> tuple[float, float]:
    p2 = pow2_floor(p)
    extra = 2 if p != p2 else 0
    return ceil_log2(p2) + extra, (ceil_log2(p2) + extra) * n


@register("allreduce", "recursive_doubling", cost=_doubling_cost)
def allreduce_recursive_doubling(comm: Any, sendbuf: np.ndarray, recvbuf: np.ndarray, op: Op,
                                 tag: int = TAG_ALLREDUCE) -> None:
    """Recursive doubling: in round k, exchange the whole vector with rank XOR 2^k and combine.

    Not a power of two: fold the first 2·rem ranks in pairs first, hand them the
    result at the end. Cost: log2 p' rounds of n bytes (+2 when p != p').
    """
    rank, size = comm.rank, comm.size
    if size == 2:  # the one exchange, without the general bookkeeping
        partner = 1 - rank
        comm.Sendrecv(sendbuf, partner, tag, recvbuf, partner, tag)
        if rank:
            op.ufunc(recvbuf, sendbuf, out=recvbuf)
        else:
            op.ufunc(sendbuf, recvbuf, out=recvbuf)
        return
    tmp = None  # scratch, only needed from the second exchange on
    p2 = pow2_floor(size)
    rem = size - p2
    newrank = fold_rank(rank, size) if rem else rank
    mine = sendbuf  # my partial result; lives in recvbuf after the first combine
    if rank < 2 * rem:  # fold: the even rank hands its data to the odd one
        phase(comm, "fold")
        if newrank < 0:
            comm.Send(sendbuf, rank + 1, tag)
            comm.Recv(recvbuf, rank + 1, tag)
            return
        comm.Recv(recvbuf, rank - 1, tag)
        op.ufunc(recvbuf, sendbuf, out=recvbuf)
        mine = recvbuf
    if rem:
        phase(comm, "recursive doubling")
    mask = 1
    while mask < p2:
        partner = newrank ^ mask
        real = unfold_rank(partner, size) if rem else partner
        # the first exchange can land in recvbuf directly; later ones need tmp
        if mine is sendbuf:
            incoming = recvbuf
        else:
            if tmp is None:
                tmp = scratch(0, sendbuf.size, sendbuf.dtype)
            incoming = tmp
        comm.Sendrecv(mine, real, tag, incoming, real, tag)
        if partner < newrank:
            op.ufunc(incoming, mine, out=recvbuf)
        else:
            op.ufunc(mine, incoming, out=recvbuf)
        mine = recvbuf
        mask <<= 1
    if mine is sendbuf:  # p == 1
        recvbuf[:] = sendbuf
    if rank < 2 * rem:
        phase(comm, "unfold")
        comm.Send(recvbuf, rank - 1, tag)


def _ring_cost(n: int, p: int) -> tuple[float, float]:
    return 2 * (p - 1), 2 * (p - 1) / p * n


@register("allreduce", "ring", cost=_ring_cost)
def allreduce_ring(comm: Any, sendbuf: np.ndarray, recvbuf: np.ndarray, op: Op,
                   tag: int = TAG_ALLREDUCE) -> None:
    """Ring: reduce-scatter around the ring (p−1 steps), then allgather around it (p−1 steps).

    Every link is busy every step, each rank sends 2·(p−1)/p·n bytes: bandwidth-optimal.
    Needs a commutative op. Cost: 2(p−1) messages, 2(p−1)/p·n bytes.
    """
    rank, size = comm.rank, comm.size
    if size == 1:
        recvbuf[:] = sendbuf
        return
    counts, displs = block_counts(recvbuf.size, size)
    displs.append(recvbuf.size)
    tmp = scratch(0, counts[0], recvbuf.dtype)
    right, left = (rank + 1) % size, (rank - 1) % size
    # Reduce-scatter; each block is combined here once, from sendbuf into recvbuf, so no
    # initial copy is needed. Afterwards block (rank+1) % p is complete here.
    phase(comm, "reduce-scatter")
    for step in range(size - 1):
        send, recv = (rank - step) % size, (rank - step - 1) % size
        outgoing = (sendbuf if step == 0 else recvbuf)[displs[send]:displs[send + 1]]
        incoming = tmp[:counts[recv]]
        comm.Sendrecv(outgoing, right, tag, incoming, left, tag)
        block = slice(displs[recv], displs[recv + 1])
        op.ufunc(sendbuf[block], incoming, out=recvbuf[block])
    phase(comm, "allgather")
    for step in range(size - 1):  # pass the complete blocks around
        send, recv = (rank + 1 - step) % size, (rank - step) % size
        comm.Sendrecv(recvbuf[displs[send]:displs[send + 1]], right, tag,
                      recvbuf[displs[recv]:displs[recv + 1]], left, tag)


def _rab_allreduce_cost(n: int, p: int) -> tuple[float, float]:
    p2 = pow2_floor(p)
    extra = 2 if p != p2 else 0
    return 2 * ceil_log2(p2) + extra, 2 * (p2 - 1) / p2 * n + extra * n


@register("allreduce", "rabenseifner", cost=_rab_allreduce_cost)
def allreduce_rabenseifner(comm: Any, sendbuf: np.ndarray, recvbuf: np.ndarray, op: Op,
                           tag: int = TAG_ALLREDUCE) -> None:
    """Rabenseifner: reduce-scatter by recursive halving, then allgather by recursive doubling.

    Bandwidth-optimal like the ring, but with 2·log2 p' rounds instead of 2(p−1).
    Cost: 2·log2 p' messages, 2·(p'−1)/p'·n bytes (+2 rounds of n when p != p').
    """
    rank, size = comm.rank, comm.size
    n = sendbuf.size
    tmp = scratch(0, n, sendbuf.dtype)
    p2 = pow2_floor(size)
    if size != p2:
        phase(comm, "fold")
    newrank, mine = _fold_in(comm, sendbuf, recvbuf, tmp, op, tag)
    if newrank < 0:
        comm.Recv(recvbuf, rank + 1, tag)
        return
    _, displs = block_counts(n, p2)
    bounds = displs + [n]
    phase(comm, "reduce-scatter")
    lo, hi, rounds = _halve(comm, mine, recvbuf, tmp, op, newrank, bounds, tag)
    phase(comm, "allgather")
    for mask, give_lo, give_hi in reversed(rounds):
        partner = unfold_rank(newrank ^ mask, size)
        comm.Sendrecv(recvbuf[bounds[lo]:bounds[hi]], partner, tag,
                      recvbuf[bounds[give_lo]:bounds[give_hi]], partner, tag)
        lo, hi = min(lo, give_lo), max(hi, give_hi)
    if rank < 2 * (size - p2):
        phase(comm, "unfold")
        comm.Send(recvbuf, rank - 1, tag)


# --------------------------------------------------------------------------- reduce_scatter_block

def _bitreverse(value: int, bits: int) -> int:
    out = 0
    for _ in range(bits):
        out = (out << 1) | (value & 1)
        value >>= 1
    return out


def _halving_cost(n: int, p: int) -> tuple[float, float]:
    p2 = pow2_floor(p)
    extra = 2 if p != p2 else 0
    return ceil_log2(p2) + extra, (p2 - 1) / p2 * n + (n + n / p if extra else 0)


def _offsets(counts: Sequence[int]) -> list[int]:
    """Where each rank's block starts, and the total at the end (p + 1 entries)."""
    out = [0]
    for c in counts:
        out.append(out[-1] + c)
    return out


@register("reduce_scatter_block", "recursive_halving", cost=_halving_cost)
def reduce_scatter_recursive_halving(comm: Any, sendbuf: np.ndarray, recvbuf: np.ndarray, op: Op,
                                     tag: int = TAG_RSB) -> None:
    """Recursive halving with p equal blocks: see reduce_scatter_v_recursive_halving."""
    reduce_scatter_v_recursive_halving(comm, sendbuf, recvbuf, [recvbuf.size] * comm.size, op, tag)


@register("reduce_scatter_block", "ring", cost=lambda n, p: (p - 1, (p - 1) / p * n))
def reduce_scatter_ring(comm: Any, sendbuf: np.ndarray, recvbuf: np.ndarray, op: Op,
                        tag: int = TAG_RSB) -> None:
    """Ring with p equal blocks: see reduce_scatter_v_ring."""
    reduce_scatter_v_ring(comm, sendbuf, recvbuf, [recvbuf.size] * comm.size, op, tag)


@register("reduce_scatter_block", "pairwise", cost=lambda n, p: (p - 1, (p - 1) / p * n))
def reduce_scatter_pairwise(comm: Any, sendbuf: np.ndarray, recvbuf: np.ndarray, op: Op,
                            tag: int = TAG_RSB) -> None:
    """Pairwise exchange with p equal blocks: see reduce_scatter_v_pairwise."""
    reduce_scatter_v_pairwise(comm, sendbuf, recvbuf, [recvbuf.size] * comm.size, op, tag)


# --------------------------------------------------------------------------- reduce_scatter

@register("reduce_scatter", "recursive_halving", cost=_halving_cost)
def reduce_scatter_v_recursive_halving(comm: Any, sendbuf: np.ndarray, recvbuf: np.ndarray,
                                       counts: Sequence[int], op: Op, tag: int = TAG_RS) -> None:
    """Recursive halving: each round halves the data a rank is responsible for.

    Halving ends with folded rank r owning slot bitreverse(r), so the blocks are first
    copied into that order. Keeps rank order, so any associative op works.
    Cost: log2 p' rounds, (p'−1)/p'·n bytes (+2 rounds when p is not a power of two).
    """
    rank, size = comm.rank, comm.size
    offsets = _offsets(counts)
    p2 = pow2_floor(size)
    rem = size - p2
    bits = ceil_log2(p2)
    # folded rank g holds the blocks of real ranks [first(g), first(g+1))
    first = [unfold_rank(g, size) - (1 if g < rem else 0) for g in range(p2)] + [size]
    acc = scratch(1, sendbuf.size, sendbuf.dtype)
    bounds = [0]
    for slot in range(p2):  # slot s holds folded rank bitreverse(s)'s blocks
        g = _bitreverse(slot, bits)
        start, stop = offsets[first[g]], offsets[first[g + 1]]
        acc[bounds[-1]:bounds[-1] + stop - start] = sendbuf[start:stop]
        bounds.append(bounds[-1] + stop - start)
    tmp = scratch(0, sendbuf.size, sendbuf.dtype)
    newrank, _ = _fold_in(comm, acc, acc, tmp, op, tag)
    if newrank < 0:
        comm.Recv(recvbuf, rank + 1, tag)
        return
    lo, hi, _ = _halve(comm, acc, acc, tmp, op, newrank, bounds, tag)
    mine = acc[bounds[lo]:bounds[hi]]
    if newrank < rem:  # I hold the blocks of rank-1 and rank
        below = counts[rank - 1]
        comm.Send(mine[:below], rank - 1, tag)
        recvbuf[:] = mine[below:]
    else:
        recvbuf[:] = mine


@register("reduce_scatter", "ring", cost=lambda n, p: (p - 1, (p - 1) / p * n))
def reduce_scatter_v_ring(comm: Any, sendbuf: np.ndarray, recvbuf: np.ndarray,
                          counts: Sequence[int], op: Op, tag: int = TAG_RS) -> None:
    """Ring: pass partial blocks to the right; after p−1 steps block r is complete on rank r.

    Needs a commutative op. Cost: p−1 messages, (p−1)/p·n bytes.
    """
    rank, size = comm.rank, comm.size
    offsets = _offsets(counts)
    acc = scratch(1, sendbuf.size, sendbuf.dtype)  # partial blocks passing through
    tmp = scratch(0, max(counts), sendbuf.dtype)
    right, left = (rank + 1) % size, (rank - 1) % size
    if size == 1:
        recvbuf[:] = sendbuf
    for step in range(size - 1):
        send, recv = (rank - step - 1) % size, (rank - step - 2) % size
        block = slice(offsets[recv], offsets[recv + 1])
        incoming = tmp[:counts[recv]]
        comm.Sendrecv((sendbuf if step == 0 else acc)[offsets[send]:offsets[send + 1]], right, tag,
                      incoming, left, tag)
        # add my contribution; the last block to arrive is my own (recv == rank)
        op.ufunc(sendbuf[block], incoming, out=recvbuf if step == size - 2 else acc[block])


@register("reduce_scatter", "pairwise", cost=lambda n, p: (p - 1, (p - 1) / p * n))
def reduce_scatter_v_pairwise(comm: Any, sendbuf: np.ndarray, recvbuf: np.ndarray,
                              counts: Sequence[int], op: Op, tag: int = TAG_RS) -> None:
    """Pairwise exchange: in step s, send rank+s its block and add the block from rank−s.

    Unlike the ring, every block goes straight to its owner: partial sums never travel.
    Needs a commutative op. Cost: p−1 messages, (p−1)/p·n bytes.
    """
    rank, size = comm.rank, comm.size
    offsets = _offsets(counts)
    mine = sendbuf[offsets[rank]:offsets[rank + 1]]
    if size == 1:
        recvbuf[:] = mine
    tmp = scratch(0, recvbuf.size, recvbuf.dtype)
    for step in range(1, size):
        dest, source = (rank + step) % size, (rank - step) % size
        comm.Sendrecv(sendbuf[offsets[dest]:offsets[dest + 1]], dest, tag, tmp, source, tag)
        op.ufunc(mine if step == 1 else recvbuf, tmp, out=recvbuf)
