"""Scene kernels: deterministic, split-invariant (rows, tiles), numba and NumPy give the same bytes."""

from __future__ import annotations

import numpy as np
import pytest

from pimpi.render.names import SCENE_SUMMARIES
from pimpi.render.scenes import SCENES, frame_cost, render_frame
from pimpi.render.scenes import fractal

W, H, N = 40, 28, 6


@pytest.mark.parametrize("name", sorted(SCENES))
def test_kernel_is_deterministic_and_not_blank(name: str) -> None:
    a = render_frame(name, 3, N, W, H)
    b = render_frame(name, 3, N, W, H)
    assert a.shape == (H, W, 3) and a.dtype == np.uint8
    assert np.array_equal(a, b)
    assert len(np.unique(a.reshape(-1, 3), axis=0)) > 8, "a frame should not be nearly blank"
    assert not np.array_equal(a, render_frame(name, 0, N, W, H)), "frames should differ"


@pytest.mark.parametrize("name", sorted(SCENES))
def test_rows_and_tiles_match_the_whole_frame(name: str) -> None:
    whole = render_frame(name, N - 1, N, W, H)
    rows = [1, 5, 6, 17, H - 1]
    assert np.array_equal(render_frame(name, N - 1, N, W, H, rows=rows), whole[rows])
    tile = render_frame(name, N - 1, N, W, H, rows=slice(7, 19), cols=slice(13, 31))
    assert np.array_equal(tile, whole[7:19, 13:31])


def test_mandelbrot_deep_frames_cost_more() -> None:
    costs = [frame_cost("mandelbrot", f, 12) for f in range(12)]
    assert costs[-1] > 3 * costs[0], costs


def test_numba_and_numpy_give_identical_pixels(monkeypatch: pytest.MonkeyPatch) -> None:
    if not fractal.numba_enabled():
        pytest.skip("numba is not installed (extra pimpi[fast])")
    fast = [render_frame(s, f, N, W, H) for s in ("mandelbrot", "julia") for f in (0, 2, N - 1)]
    monkeypatch.setenv("PIMPI_NO_NUMBA", "1")
    assert not fractal.numba_enabled()
    slow = [render_frame(s, f, N, W, H) for s in ("mandelbrot", "julia") for f in (0, 2, N - 1)]
    for a, b in zip(fast, slow):
        assert np.array_equal(a, b)


@pytest.mark.parametrize("kwargs, word", [
    ({"scene": "nope"}, "nope"),
    ({"frame_index": 6}, "frame_index"),
    ({"width": 0}, "width"),
    ({"max_iter": 0}, "max_iter"),
    ({"rows": [H]}, "rows"),
])
def test_bad_arguments_raise_value_error(kwargs: dict, word: str) -> None:
    args = {"scene": "julia", "frame_index": 0, "n_frames": N, "width": W, "height": H}
    args.update(kwargs)
    with pytest.raises(ValueError, match=word):
        render_frame(**args)


def test_the_cli_offers_exactly_the_built_in_scenes():
    assert list(SCENE_SUMMARIES) == list(SCENES)
    assert all(SCENES[name].summary == summary for name, summary in SCENE_SUMMARIES.items())
