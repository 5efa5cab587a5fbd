"""Static plans: every (frame, row) exactly once; interleave mixes rows, block keeps frames whole."""

from __future__ import annotations

import numpy as np
import pytest

from pimpi.render.static import plan_rounds


@pytest.mark.parametrize("partition", ["interleave", "block"])
@pytest.mark.parametrize("size", [1, 2, 3, 5])
def test_every_row_of_every_frame_once(partition: str, size: int) -> None:
    frames = [0, 2, 3, 7]
    rounds = plan_rounds(frames, 5, 8, size, partition)
    items = np.concatenate([part for parts in rounds for part in parts])
    assert all(len(parts) == size for parts in rounds)
    got = sorted(map(tuple, items.tolist()))
    assert got == sorted((f, r) for f in frames for r in range(5))


def test_interleave_spreads_rows_and_block_keeps_frames_together() -> None:
    rounds = plan_rounds(list(range(4)), 6, 8, 2, "interleave")
    assert set(rounds[0][0][:, 1].tolist()) == {0, 2, 4} and set(rounds[0][1][:, 1].tolist()) == {1, 3, 5}
    blocks = plan_rounds(list(range(4)), 6, 8, 2, "block")
    rank1 = sorted({int(f) for parts in blocks for f in parts[1][:, 0]})
    assert rank1 == [2, 3], "the last rank gets the last block of frames"


def test_unknown_partition() -> None:
    with pytest.raises(ValueError, match="zigzag"):
        plan_rounds([0], 2, 2, 1, "zigzag")
