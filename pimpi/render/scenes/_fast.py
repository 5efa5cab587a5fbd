"""The numba escape-time kernel (extra `pimpi[fast]`): same operations, same order as NumPy's."""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["escape_numba"]


def _escape(zr0, zi0, cr, ci, max_iter, bailout2):  # pragma: no cover - compiled
    n = zr0.size
    steps = np.full(n, max_iter, dtype=np.int32)
    mag2 = np.zeros(n, dtype=np.float64)
    for p in range(n):
        zr = zr0[p]
        zi = zi0[p]
        c_re = cr[p]
        c_im = ci[p]
        for step in range(max_iter):
            zr2 = zr * zr
            zi2 = zi * zi
            m = zr2 + zi2
            if m > bailout2:
                steps[p] = step
                mag2[p] = m
                break
            t = zr * zi
            t = t * 2.0
            zi = t + c_im
            zr = zr2 - zi2
            zr = zr + c_re
    return steps, mag2


try:  # compiled once, then loaded from the cache by every rank
    _escape = numba.njit(cache=True, fastmath=False, nogil=True)(_escape)
except RuntimeError:  # no writable cache location (read-only install): compile per process
    _escape = numba.njit(cache=False, fastmath=False, nogil=True)(_escape)


def escape_numba(zr, zi, cr, ci, max_iter: int, bailout2: float):
    """Escape step and |z|^2 at escape, compiled."""
    return _escape(zr, zi, cr, ci, max_iter, bailout2)
