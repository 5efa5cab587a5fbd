"""mpi4py buffer specs ([buf, MPI.INT], [buf, counts, displs, type], MPI.IN_PLACE, None) as NumPy views.

The rules follow mpi4py's own (msgbuffer.pxi): a spec is a buffer, or a list/tuple of
2 to 4 items; a missing datatype comes from the buffer's format; a missing count
from the buffer's length. What pimpi cannot run itself raises Refused, and the
drop-in communicator then hands the call to MPI's built-in collective.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["Refused", "Message", "Vector", "simple", "vector", "is_in_place"]


class Refused(Exception):
    """A spec pimpi does not run itself (the reason is the message); MPI's built-in does."""


@dataclass
class Message:
    """A block message: `data` starts at the spec's displacement; `count` is the spec's count
    (None: not given)."""

    data: np.ndarray
    count: int | None

    def blocks(self, blocks: int) -> np.ndarray:
        """The first `blocks` blocks: `count` items each, or the buffer split evenly."""
        if self.count is not None:
            need = self.count * blocks
            if need > self.data.size:
                raise ValueError(f"buffer holds {self.data.size} items, {need} needed")
            return self.data[:need]
        if blocks > 1 and self.data.size % blocks:
            raise ValueError(f"buffer of {self.data.size} items does not split into {blocks} blocks")
        return self.data


@dataclass
class Vector:
    """A vector message: the whole buffer, and per-rank counts and displacements."""

    data: np.ndarray
    counts: list[int]
    displs: list[int]


def is_in_place(spec: Any) -> bool:
    """mpi4py's rule: MPI.IN_PLACE, and None where a collective allows IN_PLACE."""
    if spec is None:
        return True
    if isinstance(spec, (np.ndarray, list, tuple)):
        return False
    from mpi4py import MPI

    return spec is MPI.IN_PLACE


def _unpack(spec: Any, vector: bool) -> tuple[Any, Any, Any, Any]:
    """(buffer, count(s), displacement(s), datatype) from a spec, as mpi4py reads it."""
    if not isinstance(spec, (list, tuple)):
        return spec, None, None, None
    from mpi4py import MPI

    # a tuple (never a list) in the count's place is (count(s), displacement(s)), as in mpi4py
    pair = tuple if vector else (tuple, list)
    if len(spec) == 2:
        buf, second = spec
        if isinstance(second, MPI.Datatype):
            return buf, None, None, second
        if isinstance(second, pair):
            return buf, second[0], second[1], None
        return buf, second, None, None
    if len(spec) == 3:
        buf, counts, mpitype = spec
        if isinstance(counts, pair):
            return buf, counts[0], counts[1], mpitype
        return buf, counts, None, mpitype
    if len(spec) == 4:
        return tuple(spec)  # type: ignore[return-value]
    raise Refused(f"a buffer spec of {len(spec)} items")


def _array(buf: Any, mpitype: Any, writable: bool) -> np.ndarray:
    """The whole buffer as a 1-D array of the datatype's items."""
    from mpi4py import MPI

    dtype = None
    if mpitype is not None:
        if not isinstance(mpitype, MPI.Datatype) or mpitype == MPI.DATATYPE_NULL:
            raise Refused(f"datatype {mpitype!r}")
        if not mpitype.is_predefined:
            raise Refused("a derived datatype")
        from mpi4py.util.dtlib import to_numpy_dtype

        try:
            dtype = np.dtype(to_numpy_dtype(mpitype))
        except (TypeError, ValueError):
            raise Refused(f"datatype {mpitype.Get_name() or mpitype!r}") from None
    if buf is None:
        return np.empty(0, dtype or np.uint8)
    if buf is MPI.BOTTOM:
        raise Refused("MPI.BOTTOM")
    if isinstance(buf, np.ndarray) and buf.flags.c_contiguous and not buf.dtype.hasobject:
        raw = buf.reshape(-1)
        if dtype is None:
            dtype = raw.dtype
        if writable and not raw.flags.writeable:
            raise Refused("a read-only receive buffer")
        raw = raw.view(np.uint8)
    else:
        try:
            memory = MPI.buffer(buf)
        except (TypeError, ValueError, BufferError):
            raise Refused(f"a {type(buf).__name__} buffer") from None
        if writable and memory.readonly:
            raise Refused("a read-only receive buffer")
        if dtype is None:
            dtype = _format_dtype(buf)
        raw = np.frombuffer(memory, np.uint8) if memory.nbytes else np.empty(0, np.uint8)
    usable = raw.size - raw.size % dtype.itemsize
    return raw[:usable].view(dtype)


def _format_dtype(buf: Any) -> np.dtype:
    try:
        return np.dtype(getattr(buf, "dtype", None) or memoryview(buf).format)
    except (TypeError, ValueError):
        raise Refused(f"a {type(buf).__name__} buffer without a datatype") from None


def _index(value: Any, what: str) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise TypeError(f"{what} must be an int, got {value!r}") from None
    if number < 0:
        raise ValueError(f"negative {what} {number}")
    return number


def simple(spec: Any, *, writable: bool) -> Message:
    """A block message: the buffer from its displacement on, and its count if given."""
    buf, count, displ, mpitype = _unpack(spec, vector=False)
    data = _array(buf, mpitype, writable)
    if displ is not None:
        start = _index(displ, "displacement")
        if start > data.size:
            raise ValueError(f"displacement {start} beyond a buffer of {data.size} items")
        data = data[start:]
    if count is not None:
        count = _index(count, "count")
        if count and buf is None:
            raise ValueError(f"buffer is None but count is {count}")
    return Message(data, count)


def vector(spec: Any, *, writable: bool, blocks: int) -> Vector:
    """A vector message: counts (scalar: every block; none: split evenly, the first ones one
    longer) and displacements (scalar: a stride; none: contiguous)."""
    buf, counts, displs, mpitype = _unpack(spec, vector=True)
    data = _array(buf, mpitype, writable)
    if counts is None:
        total = data.size
        counts = [total // blocks + (total % blocks > i) for i in range(blocks)]
    elif isinstance(counts, (int, np.integer)):
        counts = [_index(counts, "count")] * blocks
    else:
        counts = [_index(c, "count") for c in counts]
        if len(counts) != blocks:
            raise ValueError(f"{len(counts)} counts for {blocks} ranks")
    if displs is None:
        displs = [sum(counts[:i]) for i in range(blocks)]
    elif isinstance(displs, (int, np.integer)):
        displs = [_index(displs, "displacement") * i for i in range(blocks)]
    else:
        displs = [_index(d, "displacement") for d in displs]
        if len(displs) != blocks:
            raise ValueError(f"{len(displs)} displacements for {blocks} ranks")
    return Vector(data, counts, displs)
