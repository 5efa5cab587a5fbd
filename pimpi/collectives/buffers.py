"""Argument checks shared by every collective: run before any message, on every rank."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["flat", "check_root", "check_like", "check_count", "check_counts", "root_buffer"]


def flat(buf: Any, name: str, *, writable: bool = False) -> np.ndarray:
    """A 1-D view of a C-contiguous NumPy array (no copy); TypeError/ValueError otherwise."""
    if type(buf) is np.ndarray and buf.ndim == 1:  # the common case, in as few steps as possible
        flags = buf.flags
        if flags.c_contiguous and (flags.writeable or not writable) and not buf.dtype.hasobject:
            return buf
    if not isinstance(buf, np.ndarray):
        raise TypeError(f"{name} must be a NumPy array, got {type(buf).__name__}")
    flags = buf.flags
    if not flags.c_contiguous:
        raise ValueError(f"{name} must be C-contiguous (use np.ascontiguousarray)")
    if writable and not flags.writeable:
        raise ValueError(f"{name} is read-only")
    if buf.dtype.hasobject:
        raise TypeError(f"{name} has dtype {buf.dtype}: object arrays cannot be sent as buffers")
    return buf if buf.ndim == 1 else buf.reshape(-1)


def check_root(root: Any, size: int) -> int:
    """`root` as an int in [0, size)."""
    if type(root) is int and 0 <= root < size:
        return root
    if isinstance(root, bool) or not isinstance(root, (int, np.integer)) or not 0 <= root < size:
        raise ValueError(f"root {root!r} out of range for a communicator of size {size}")
    return int(root)


def check_like(buf: np.ndarray, ref: np.ndarray, name: str, ref_name: str) -> None:
    """`buf` must have `ref`'s dtype (MPI would reinterpret bytes otherwise)."""
    if buf.dtype != ref.dtype:
        raise TypeError(f"{name} has dtype {buf.dtype} but {ref_name} has dtype {ref.dtype}")


def check_count(buf: np.ndarray, count: int, name: str) -> None:
    """`buf` must hold exactly `count` items."""
    if buf.size != count:
        raise ValueError(f"{name} has {buf.size} items, expected {count}")


def check_counts(counts: Any, displs: Any, size: int) -> tuple[list[int], list[int]]:
    """Validate per-rank counts (and displacements, default: exclusive prefix sum)."""
    counts = [int(c) for c in counts]
    if len(counts) != size or any(c < 0 for c in counts):
        raise ValueError(f"counts {counts!r} must be {size} non-negative ints")
    if displs is None:
        displs, total = [], 0
        for c in counts:
            displs.append(total)
            total += c
    else:
        displs = [int(d) for d in displs]
        if len(displs) != size or any(d < 0 for d in displs):
            raise ValueError(f"displs {displs!r} must be {size} non-negative ints")
    return counts, displs


def root_buffer(buf: Any, name: str, is_root: bool, root: int, like: np.ndarray, count: int,
                *, writable: bool) -> np.ndarray | None:
    """A buffer only root uses (reduce/gather recvbuf, scatter sendbuf): checked on root, else None."""
    if not is_root:
        return None
    if buf is None:
        raise ValueError(f"{name} is None on root {root}")
    out = flat(buf, name, writable=writable)
    check_like(out, like, name, "sendbuf" if name == "recvbuf" else "recvbuf")
    check_count(out, count, name)
    return out
