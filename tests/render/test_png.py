"""The PNG writer: pillow reads back exactly our pixels, bytes are stable, writes are atomic."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pimpi.render.png import encode_png, write_png


@pytest.mark.parametrize("shape", [(1, 1), (7, 3), (32, 45)])
def test_round_trip_through_pillow(tmp_path: Path, shape: tuple[int, int]) -> None:
    rng = np.random.default_rng(sum(shape))
    pixels = rng.integers(0, 256, size=shape + (3,), dtype=np.uint8)
    path = write_png(tmp_path / "a.png", pixels)
    with Image.open(path) as img:
        assert img.mode == "RGB" and img.size == (shape[1], shape[0])
        assert np.array_equal(np.asarray(img), pixels)
    assert [p.name for p in tmp_path.iterdir()] == ["a.png"], "no temp file may be left"


def test_bytes_are_stable_and_depend_on_pixels() -> None:
    pixels = np.arange(24 * 16 * 3, dtype=np.uint32).reshape(16, 24, 3).astype(np.uint8)
    first = encode_png(pixels)
    assert first == encode_png(pixels.copy())
    changed = pixels.copy()
    changed[5, 5, 1] ^= 1
    assert encode_png(changed) != first


@pytest.mark.parametrize("bad, error", [
    (np.zeros((4, 4), dtype=np.uint8), ValueError),
    (np.zeros((4, 4, 4), dtype=np.uint8), ValueError),
    (np.zeros((4, 4, 3), dtype=np.float64), TypeError),
    (np.zeros((0, 4, 3), dtype=np.uint8), ValueError),
])
def test_bad_pixels_are_refused(bad: np.ndarray, error: type) -> None:
    with pytest.raises(error):
        encode_png(bad)
