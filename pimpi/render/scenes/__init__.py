"""Built-in scenes and the pure serial `render_frame` every schedule (and a Pool) calls."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional, Sequence, Union

import numpy as np

from pimpi.render.names import SCENE_SUMMARIES
from pimpi.render.scenes.fractal import (
    mandelbrot_cost,
    numba_enabled,
    render_julia,
    render_mandelbrot,
)
from pimpi.render.scenes.raytrace import render_raytrace

__all__ = ["SCENES", "Scene", "get_scene", "render_frame", "frame_cost", "numba_enabled"]

Index = Union[None, slice, Sequence[int], np.ndarray]


@dataclass(frozen=True)
class Scene:
    """A named animation: how to draw pixels of a frame and what a frame is expected to cost."""

    name: str
    summary: str
    draw: Callable[..., np.ndarray]
    default_max_iter: Optional[int]  # None: the scene has no iteration count
    cost: Callable[[int, int, int], float]


def _flat_cost(frame: int, n_frames: int, max_iter: int) -> float:
    return 1.0


SCENES: dict[str, Scene] = {
    "mandelbrot": Scene("mandelbrot", SCENE_SUMMARIES["mandelbrot"], render_mandelbrot, 256, mandelbrot_cost),
    "julia": Scene("julia", SCENE_SUMMARIES["julia"], render_julia, 200, _flat_cost),
    "raytrace": Scene("raytrace", SCENE_SUMMARIES["raytrace"],
                      lambda f, n, w, h, rows, cols, max_iter: render_raytrace(f, n, w, h, rows, cols),
                      None, _flat_cost),
}


def get_scene(name: str) -> Scene:
    """The scene called `name`; ValueError naming it and the choices otherwise."""
    try:
        return SCENES[name]
    except KeyError:
        raise ValueError(f"unknown scene {name!r} (choose from {', '.join(SCENES)})") from None


def _indices(index: Index, length: int, what: str) -> np.ndarray:
    if index is None:
        return np.arange(length)
    if isinstance(index, slice):
        return np.arange(length)[index]
    out = np.asarray(index, dtype=np.int64).ravel()
    if out.size and (out.min() < 0 or out.max() >= length):
        raise ValueError(f"{what} out of range 0..{length - 1}: {out.min()}..{out.max()}")
    return out


def render_frame(scene: str, frame_index: int, n_frames: int, width: int, height: int,
                 rows: Index = None, cols: Index = None, max_iter: int | None = None) -> np.ndarray:
    """Pixels of one frame (or some rows / a tile of it) as uint8 RGB (rows, cols, 3).

    Pure and serial (no MPI): the same pixel has the same bytes whatever `rows`/`cols`
    it was drawn in, so splitting by rows, tiles or ranks never changes the picture.
    """
    spec = get_scene(scene)
    if n_frames < 1:
        raise ValueError(f"n_frames must be >= 1, got {n_frames}")
    if not 0 <= frame_index < n_frames:
        raise ValueError(f"frame_index {frame_index} out of range 0..{n_frames - 1}")
    if width < 1 or height < 1:
        raise ValueError(f"width and height must be >= 1, got {width}x{height}")
    r = _indices(rows, height, "rows")
    c = _indices(cols, width, "cols")
    iters = max_iter if max_iter is not None else (spec.default_max_iter or 0)
    if spec.default_max_iter is not None and iters < 1:
        raise ValueError(f"max_iter must be >= 1, got {iters}")
    return spec.draw(frame_index, n_frames, width, height, r, c, iters)


def frame_cost(scene: str, frame_index: int, n_frames: int, max_iter: int | None = None) -> float:
    """Expected relative cost of a frame (for longest-first scheduling); cheap to compute."""
    spec = get_scene(scene)
    iters = max_iter if max_iter is not None else (spec.default_max_iter or 0)
    return spec.cost(frame_index, n_frames, iters)
