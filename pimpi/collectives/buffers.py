"""Argument checks shared by every collective: run before any message, on every rank."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["flat", "in_place", "check_root", "check_like", "check_count", "check_counts",
           "check_fits", "root_buffer", "block_count", "in_place_on_root", "gathered_v"]


def in_place(buf: Any) -> bool:
    """True for MPI.IN_PLACE (imports mpi4py only for objects that could be it)."""
    if buf is None or isinstance(buf, np.ndarray):
        return False
    from mpi4py import MPI

    return buf is MPI.IN_PLACE


def flat(buf: Any, name: str, *, writable: bool = False,
         copy_back: list[tuple[np.ndarray, np.ndarray]] | None = None) -> np.ndarray:
    """A 1-D view of a NumPy array; TypeError/ValueError naming `name` otherwise.

    A non-contiguous array (a strided view) is copied; when it is written to, the pair
    (array, copy) goes into `copy_back` so the result is copied back after the call.
    """
    if type(buf) is np.ndarray and buf.ndim == 1:  # the common case, in as few steps as possible
        flags = buf.flags
        if flags.c_contiguous and (flags.writeable or not writable) and not buf.dtype.hasobject:
            return buf
    if not isinstance(buf, np.ndarray):
        if in_place(buf):
            raise ValueError(f"{name} cannot be MPI.IN_PLACE here")
        raise TypeError(f"{name} must be a NumPy array, got {type(buf).__name__}")
    flags = buf.flags
    if writable and not flags.writeable:
        raise ValueError(f"{name} is read-only")
    if buf.dtype.hasobject:
        raise TypeError(f"{name} has dtype {buf.dtype}: object arrays cannot be sent as buffers")
    if flags.c_contiguous:
        return buf if buf.ndim == 1 else buf.reshape(-1)
    out = np.ascontiguousarray(buf).reshape(-1)
    if writable:
        if copy_back is None:
            raise ValueError(f"{name} must be C-contiguous (use np.ascontiguousarray)")
        copy_back.append((buf, out))
    return out


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


def block_count(buf: np.ndarray, size: int, name: str) -> int:
    """Items per rank in `buf`, which holds one block per rank."""
    if buf.size % size:
        raise ValueError(f"{name} has {buf.size} items, not a multiple of {size} ranks")
    return buf.size // size


def _ints(values: Any, name: str, size: int) -> list[int]:
    try:
        return [int(v) for v in values]
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a sequence of {size} ints, got {values!r}") from None


def check_counts(counts: Any, displs: Any, size: int) -> tuple[list[int], list[int]]:
    """Validate per-rank counts (and displacements, default: exclusive prefix sum)."""
    counts = _ints(counts, "counts", size)
    if len(counts) != size or any(c < 0 for c in counts):
        raise ValueError(f"counts {counts!r} must be {size} non-negative ints")
    if displs is None:
        displs, total = [], 0
        for c in counts:
            displs.append(total)
            total += c
    else:
        displs = _ints(displs, "displs", size)
        if len(displs) != size or any(d < 0 for d in displs):
            raise ValueError(f"displs {displs!r} must be {size} non-negative ints")
    return counts, displs


def check_fits(counts: list[int], displs: list[int], buf: np.ndarray, name: str) -> None:
    """Every block [displs[r], displs[r] + counts[r]) must lie inside `buf`."""
    if any(d + c > buf.size for c, d in zip(counts, displs)):
        raise ValueError(f"counts {counts} at displs {displs} overrun {name} of {buf.size} items")


def in_place_on_root(buf: Any, name: str, rank: int, root: int,
                     copy_back: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """Root's `buf` (the other buffer is MPI.IN_PLACE); ValueError on any other rank."""
    if rank != root:
        other = "recvbuf" if name == "sendbuf" else "sendbuf"
        raise ValueError(f"{other} MPI.IN_PLACE is only allowed on root {root}")
    return flat(buf, name, writable=name == "recvbuf", copy_back=copy_back)


def gathered_v(sendbuf: Any, recvbuf: Any, counts: list[int], displs: list[int], me: int,
               copy_back: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """(send, recv) of a gatherv or allgatherv on rank `me`; with sendbuf MPI.IN_PLACE my
    block is taken from its place in recvbuf."""
    recv = flat(recvbuf, "recvbuf", writable=True, copy_back=copy_back)
    check_fits(counts, displs, recv, "recvbuf")
    if in_place(sendbuf):
        send = recv[displs[me]:displs[me] + counts[me]].copy()
    else:
        send = flat(sendbuf, "sendbuf")
    check_like(recv, send, "recvbuf", "sendbuf")
    check_count(send, counts[me], "sendbuf")
    return send, recv


def root_buffer(buf: Any, name: str, is_root: bool, root: int, like: np.ndarray, count: int,
                *, writable: bool, copy_back: list[tuple[np.ndarray, np.ndarray]] | None = None
                ) -> np.ndarray | None:
    """A buffer only root uses (reduce/gather recvbuf, scatter sendbuf): checked on root, else None."""
    if not is_root:
        return None
    if buf is None:
        raise ValueError(f"{name} is None on root {root}")
    out = flat(buf, name, writable=writable, copy_back=copy_back)
    check_like(out, like, name, "sendbuf" if name == "recvbuf" else "recvbuf")
    check_count(out, count, name)
    return out
