"""How to split work over ranks: 1-D blocks, 2-D blocks, and the power-of-two fold."""

from __future__ import annotations

__all__ = [
    "block_counts",
    "block_range",
    "grid_2d",
    "block_2d",
    "pow2_floor",
    "ceil_log2",
    "fold_rank",
    "unfold_rank",
]


def _check(n: int, p: int) -> None:
    if not isinstance(n, int) or isinstance(n, bool) or n < 0:
        raise ValueError(f"item count must be an int >= 0, got {n!r}")
    if not isinstance(p, int) or isinstance(p, bool) or p < 1:
        raise ValueError(f"rank count must be an int >= 1, got {p!r}")


def block_counts(n: int, p: int) -> tuple[list[int], list[int]]:
    """Split n items over p ranks: the first n % p ranks get one more.

    Returns (counts, displs) where displs is the exclusive prefix sum of counts,
    exactly what Scatterv/Gatherv take. block_counts(7, 3) == ([3, 2, 2], [0, 3, 5]).
    """
    _check(n, p)
    base, extra = divmod(n, p)
    counts = [base + 1 if r < extra else base for r in range(p)]
    displs = [r * base + min(r, extra) for r in range(p)]
    return counts, displs


def block_range(n: int, p: int, rank: int) -> tuple[int, int]:
    """The half-open range [start, stop) of items that `rank` owns in block_counts(n, p)."""
    _check(n, p)
    if not isinstance(rank, int) or not 0 <= rank < p:
        raise ValueError(f"rank {rank!r} out of range for {p} ranks")
    base, extra = divmod(n, p)
    start = rank * base + min(rank, extra)
    return start, start + base + (1 if rank < extra else 0)


def grid_2d(p: int) -> tuple[int, int]:
    """The most square (rows, cols) grid with rows * cols == p and rows <= cols."""
    _check(0, p)
    rows = int(p**0.5)
    while p % rows:
        rows -= 1
    return rows, p // rows


def block_2d(shape: tuple[int, int], p: int, rank: int) -> tuple[slice, slice]:
    """The (row slice, col slice) of a 2-D array of `shape` that `rank` owns.

    Ranks are laid out row-major on grid_2d(p); each dimension is split with
    block_range, so tiles differ by at most one row and one column.
    """
    if len(shape) != 2:
        raise ValueError(f"shape must have 2 dimensions, got {shape!r}")
    rows, cols = grid_2d(p)
    if not isinstance(rank, int) or not 0 <= rank < p:
        raise ValueError(f"rank {rank!r} out of range for {p} ranks")
    r0, r1 = block_range(int(shape[0]), rows, rank // cols)
    c0, c1 = block_range(int(shape[1]), cols, rank % cols)
    return slice(r0, r1), slice(c0, c1)


def pow2_floor(p: int) -> int:
    """The largest power of two <= p (p >= 1)."""
    return 1 << (p.bit_length() - 1)


def ceil_log2(p: int) -> int:
    """Rounds of a binomial tree over p ranks: ceil(log2 p), 0 for p == 1."""
    return (p - 1).bit_length()


def fold_rank(rank: int, p: int) -> int:
    """Rank among the largest power of two p2 <= p after folding, or -1 if folded away.

    Recursive doubling and halving need a power of two. With rem = p - p2, the
    first 2*rem ranks pair up (even, odd); the even one hands its data to the odd
    one and sits out. Ranks keep their order, so lower ranks stay lower, which
    keeps reductions in rank order.
    """
    rem = p - pow2_floor(p)
    if rank < 2 * rem:
        return rank // 2 if rank % 2 else -1
    return rank - rem


def unfold_rank(newrank: int, p: int) -> int:
    """The real rank of a folded rank (inverse of fold_rank)."""
    rem = p - pow2_floor(p)
    return 2 * newrank + 1 if newrank < rem else newrank + rem
