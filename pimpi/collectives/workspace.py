"""Reusable scratch buffers, so large collectives don't pay page faults for fresh memory each call."""

from __future__ import annotations

import numpy as np

__all__ = ["scratch", "release", "SMALL"]

SMALL = 1 << 16  # below this many bytes np.empty is cheap (malloc reuses freed memory)
_POOL: dict[int, np.ndarray] = {}


def scratch(slot: int, count: int, dtype: np.dtype) -> np.ndarray:
    """An uninitialised array of `count` items; the memory of `slot` is reused across calls.

    One algorithm uses distinct slots for buffers it needs at the same time; nothing
    may be kept in a slot after the collective returns.
    """
    if not isinstance(dtype, np.dtype):
        dtype = np.dtype(dtype)
    nbytes = count * dtype.itemsize
    if nbytes < SMALL:
        return np.empty(count, dtype)
    buf = _POOL.get(slot)
    if buf is None or buf.size < nbytes:
        buf = np.empty(nbytes, np.uint8)
        _POOL[slot] = buf
    return buf[:nbytes].view(dtype)


def release() -> None:
    """Free the pooled scratch memory (it is kept at the largest size used)."""
    _POOL.clear()
