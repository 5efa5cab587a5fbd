"""Serial tests of the partition helpers: 1-D blocks, 2-D blocks and the power-of-two fold."""

from __future__ import annotations

import numpy as np
import pytest

from pimpi.collectives import block_2d, block_counts, block_range, grid_2d
from pimpi.collectives.partition import ceil_log2, fold_rank, pow2_floor, unfold_rank


@pytest.mark.parametrize("n", [0, 1, 6, 7, 100, 1559])
@pytest.mark.parametrize("p", [1, 2, 3, 5, 7])
def test_block_counts_cover_everything_once(n, p):
    counts, displs = block_counts(n, p)
    assert sum(counts) == n and len(counts) == p
    assert max(counts) - min(counts) <= 1
    assert counts == sorted(counts, reverse=True)  # the first n % p ranks get one more
    assert displs == list(np.cumsum([0] + counts[:-1]))
    assert [block_range(n, p, r) for r in range(p)] == [(d, d + c) for c, d in zip(counts, displs)]


@pytest.mark.parametrize("bad", [(-1, 2), (3, 0), (2.5, 2), (True, 2)])
def test_block_counts_rejects_bad_values(bad):
    with pytest.raises(ValueError, match="must be an int"):
        block_counts(*bad)


def test_block_range_rejects_rank_out_of_range():
    with pytest.raises(ValueError, match="rank 3"):
        block_range(10, 3, 3)


@pytest.mark.parametrize("p", range(1, 13))
def test_grid_2d_is_most_square(p):
    rows, cols = grid_2d(p)
    assert rows * cols == p and rows <= cols
    assert not any(p % r == 0 and r <= p // r and r > rows for r in range(1, p + 1))


@pytest.mark.parametrize("shape", [(7, 5), (1, 9), (0, 4), (10, 10)])
@pytest.mark.parametrize("p", [1, 4, 6, 7])
def test_block_2d_tiles_the_array_exactly_once(shape, p):
    seen = np.zeros(shape, dtype=int)
    for rank in range(p):
        rows, cols = block_2d(shape, p, rank)
        seen[rows, cols] += 1
    assert (seen == 1).all()


def test_block_2d_rejects_bad_shape():
    with pytest.raises(ValueError, match="2 dimensions"):
        block_2d((4,), 2, 0)


@pytest.mark.parametrize("p", range(1, 18))
def test_fold_keeps_rank_order_and_inverts(p):
    p2 = pow2_floor(p)
    assert p2 <= p < 2 * p2 and 2 ** ceil_log2(p) >= p
    kept = [(r, fold_rank(r, p)) for r in range(p) if fold_rank(r, p) >= 0]
    assert [new for _, new in kept] == list(range(p2))
    assert all(unfold_rank(new, p) == r for r, new in kept)
