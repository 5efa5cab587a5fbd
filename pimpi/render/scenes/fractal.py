"""Mandelbrot zoom and Julia animation: escape-time kernels in NumPy (numba when installed).

Both paths compute the same IEEE operations in the same order (no fused multiply-add, no
fast-math), and the colouring (logs, cosines) is always NumPy, so the PNGs are
byte-identical with and without numba. Each pixel's coordinate is computed from its own
row and column alone, so any split into rows or tiles gives the same bytes.
"""

from __future__ import annotations

import math
import os
from typing import Any

import numpy as np

__all__ = [
    "MANDEL_CENTER",
    "escape_counts",
    "numba_enabled",
    "mandelbrot_view",
    "mandelbrot_iterations",
    "julia_param",
    "colour",
    "render_mandelbrot",
    "render_julia",
    "mandelbrot_cost",
]

# A point in Seahorse Valley: detail at every depth a float64 can reach.
MANDEL_CENTER = (-0.743643887037158704752191506114774, 0.131825904205311970493132056385139)
_START_WIDTH = 3.0
_DEPTH = 1.0e7  # the last frame is ten million times deeper than the first
_BAILOUT2 = 256.0 * 256.0  # a large radius makes smooth colouring smooth
_CHUNK = 16384  # points per NumPy pass: the working arrays stay in the CPU caches

_numba_kernel: Any = None
_numba_tried = False


def numba_enabled() -> bool:
    """True when the numba kernel is importable and not disabled by PIMPI_NO_NUMBA=1."""
    global _numba_kernel, _numba_tried
    if os.environ.get("PIMPI_NO_NUMBA", "") not in ("", "0"):
        return False
    if not _numba_tried:
        _numba_tried = True
        try:
            from pimpi.render.scenes._fast import escape_numba
        except ImportError:
            _numba_kernel = None
        else:
            _numba_kernel = escape_numba
    return _numba_kernel is not None


def _escape_numpy(zr: np.ndarray, zi: np.ndarray, cr: np.ndarray, ci: np.ndarray,
                  max_iter: int) -> tuple[np.ndarray, np.ndarray]:
    """Iterate z <- z*z + c on the points still inside; return (escape step, |z|^2 there).

    Points that never escape get step = max_iter and |z|^2 = 0. The arrays shrink as
    points escape (compaction every few steps), which is what makes this fast.
    """
    n = zr.size
    steps = np.full(n, max_iter, dtype=np.int32)
    mag2 = np.zeros(n, dtype=np.float64)
    idx = np.arange(n)
    zr, zi, cr, ci = zr.copy(), zi.copy(), cr.copy(), ci.copy()
    alive = np.ones(n, dtype=bool)
    live = n
    zr2 = np.empty(n)
    zi2 = np.empty(n)
    m = np.empty(n)
    out = np.empty(n, dtype=bool)
    tmp = np.empty(n)
    for step in range(max_iter):
        k = zr.size
        np.multiply(zr, zr, out=zr2[:k])
        np.multiply(zi, zi, out=zi2[:k])
        np.add(zr2[:k], zi2[:k], out=m[:k])
        np.greater(m[:k], _BAILOUT2, out=out[:k])
        np.logical_and(out[:k], alive[:k], out=out[:k])
        if out[:k].any():
            hit = np.flatnonzero(out[:k])
            steps[idx[hit]] = step
            mag2[idx[hit]] = m[hit]
            alive[hit] = False
            live -= hit.size
            if live == 0:
                break
            if live < 0.75 * k:  # compact: keep only points still iterating
                keep = np.flatnonzero(alive[:k])
                idx, zr, zi, cr, ci = idx[keep], zr[keep], zi[keep], cr[keep], ci[keep]
                alive = np.ones(keep.size, dtype=bool)
                k = keep.size
                np.multiply(zr, zr, out=zr2[:k])
                np.multiply(zi, zi, out=zi2[:k])
        # zi = 2*zr*zi + ci ; zr = zr2 - zi2 + cr   (same order as the numba kernel)
        np.multiply(zr, zi, out=tmp[:k])
        np.multiply(tmp[:k], 2.0, out=tmp[:k])
        np.add(tmp[:k], ci, out=zi)
        np.subtract(zr2[:k], zi2[:k], out=zr)
        np.add(zr, cr, out=zr)
    return steps, mag2


def escape_counts(zr: np.ndarray, zi: np.ndarray, cr: np.ndarray, ci: np.ndarray,
                  max_iter: int) -> tuple[np.ndarray, np.ndarray]:
    """Escape step and |z|^2 at escape for each point (flat float64 arrays)."""
    if max_iter < 1:
        raise ValueError(f"max_iter must be >= 1, got {max_iter}")
    arrays = [np.ascontiguousarray(a, dtype=np.float64).ravel() for a in (zr, zi, cr, ci)]
    with np.errstate(over="ignore", invalid="ignore"):
        if numba_enabled():
            return _numba_kernel(*arrays, int(max_iter), _BAILOUT2)
        n = arrays[0].size
        if n <= _CHUNK:
            return _escape_numpy(*arrays, int(max_iter))
        # cache-sized pieces: measured 1.5x faster on deep frames than one big array
        parts = [_escape_numpy(*(a[i:i + _CHUNK] for a in arrays), int(max_iter))
                 for i in range(0, n, _CHUNK)]
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def colour(steps: np.ndarray, mag2: np.ndarray, max_iter: int, shift: float = 0.0) -> np.ndarray:
    """Smooth colouring: fractional escape count through a cosine palette -> uint8 RGB."""
    inside = steps >= max_iter
    with np.errstate(divide="ignore", invalid="ignore"):
        safe = np.where(inside, _BAILOUT2 * 4.0, mag2)
        nu = steps + 1.0 - np.log2(0.5 * np.log2(safe))
    t = np.sqrt(np.maximum(nu, 0.0)) * 0.25 + shift
    rgb = np.empty(steps.shape + (3,), dtype=np.float64)
    for channel, phase in enumerate((0.0, 0.10, 0.20)):
        rgb[..., channel] = 0.5 + 0.5 * np.cos(2.0 * math.pi * (t + phase))
    rgb[inside] = 0.0
    return np.floor(rgb * 255.0 + 0.5).clip(0, 255).astype(np.uint8)


def _grid(width: int, height: int, rows: np.ndarray, cols: np.ndarray, cx: float, cy: float,
          view_width: float) -> tuple[np.ndarray, np.ndarray]:
    """Complex-plane coordinates of the given pixels, each from its own row and column."""
    step = view_width / width
    x = cx + (cols.astype(np.float64) - (width - 1) * 0.5) * step
    y = cy - (rows.astype(np.float64) - (height - 1) * 0.5) * step
    xx = np.broadcast_to(x[None, :], (rows.size, cols.size))
    yy = np.broadcast_to(y[:, None], (rows.size, cols.size))
    return xx, yy


def mandelbrot_view(frame: int, n_frames: int) -> float:
    """Width of the view (complex units) at `frame`: an exponential zoom."""
    if n_frames <= 1:
        return _START_WIDTH
    return _START_WIDTH / (_DEPTH ** (frame / (n_frames - 1)))


def julia_param(frame: int, n_frames: int) -> tuple[float, float]:
    """c for the Julia set at `frame`: once around a circle through interesting shapes."""
    angle = 2.0 * math.pi * frame / max(n_frames, 1)
    return 0.7885 * math.cos(angle), 0.7885 * math.sin(angle)


def mandelbrot_iterations(frame: int, n_frames: int, max_iter: int) -> int:
    """Iterations at `frame`: `max_iter` at the start, growing with depth (detail needs them).

    Each tenfold zoom adds half of `max_iter`, so the last frame iterates 4.5 times as
    long: deep frames cost far more than shallow ones, as in any real zoom.
    """
    decades = math.log10(_START_WIDTH / mandelbrot_view(frame, n_frames))
    return int(round(max_iter * (1.0 + 0.5 * decades)))


def render_mandelbrot(frame: int, n_frames: int, width: int, height: int, rows: np.ndarray,
                      cols: np.ndarray, max_iter: int) -> np.ndarray:
    """Pixels (len(rows), len(cols), 3) of the zoom's frame."""
    cr, ci = _grid(width, height, rows, cols, *MANDEL_CENTER, mandelbrot_view(frame, n_frames))
    zeros = np.zeros(cr.shape)
    iters = mandelbrot_iterations(frame, n_frames, max_iter)
    steps, mag2 = escape_counts(zeros, zeros, cr, ci, iters)
    depth = math.log10(_START_WIDTH / mandelbrot_view(frame, n_frames))
    img = colour(steps, mag2, iters, shift=0.1 * depth)
    return img.reshape(rows.size, cols.size, 3)


def render_julia(frame: int, n_frames: int, width: int, height: int, rows: np.ndarray,
                 cols: np.ndarray, max_iter: int) -> np.ndarray:
    """Pixels (len(rows), len(cols), 3) of the Julia animation's frame."""
    zr, zi = _grid(width, height, rows, cols, 0.0, 0.0, 3.2)
    c_re, c_im = julia_param(frame, n_frames)
    cr = np.full(zr.shape, c_re)
    ci = np.full(zr.shape, c_im)
    steps, mag2 = escape_counts(zr, zi, cr, ci, max_iter)
    img = colour(steps, mag2, max_iter, shift=0.6)
    return img.reshape(rows.size, cols.size, 3)


def mandelbrot_cost(frame: int, n_frames: int, max_iter: int) -> float:
    """Expected relative cost of a frame: iterations on a 32x24 thumbnail (+ a fixed part)."""
    rows, cols = np.arange(24), np.arange(32)
    cr, ci = _grid(32, 24, rows, cols, *MANDEL_CENTER, mandelbrot_view(frame, n_frames))
    zeros = np.zeros(cr.shape)
    iters = mandelbrot_iterations(frame, n_frames, max_iter)
    # the compiled kernel when there is one: numpy's loop costs ~6 ms a frame here, all on
    # rank 0 before any rank gets work (0.1 s of a 16-frame render that Pool never pays)
    steps, _ = escape_counts(zeros, zeros, cr, ci, iters)
    return float(steps.sum() + 8 * steps.size) / steps.size
