"""Reduction operators: MPI's predefined ops, ops made with MPI.Op.Create, or NumPy ufuncs."""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

__all__ = ["Op", "LocalReduction", "resolve_op", "COMMUTATIVE_UFUNCS", "MPI_OP_NAMES"]

# MPI's predefined operators and the NumPy ufunc that computes each.
MPI_OP_NAMES: dict[str, np.ufunc] = {
    "SUM": np.add,
    "PROD": np.multiply,
    "MAX": np.maximum,
    "MIN": np.minimum,
    "LAND": np.logical_and,
    "LOR": np.logical_or,
    "LXOR": np.logical_xor,
    "BAND": np.bitwise_and,
    "BOR": np.bitwise_or,
    "BXOR": np.bitwise_xor,
}

# Ufuncs with f(a, b) == f(b, a): any algorithm may combine them in any order.
COMMUTATIVE_UFUNCS = frozenset(MPI_OP_NAMES.values()) | {np.fmax, np.fmin}

_MPI_OPS: list[tuple[Any, str]] | None = None
_SUPPORTED: dict[tuple[np.ufunc, np.dtype], bool] = {}
# resolve_op's memo (it runs on every reduction call), by id since mpi4py's ops are
# unhashable; each entry keeps its op alive, so that id is not reused meanwhile.
_KNOWN: dict[int, tuple[Any, "Op"]] = {}
_MEMO_LIMIT = 256


class Op(NamedTuple):
    """A resolved operator: `ufunc(a, b, out=...)` computes a (op) b elementwise."""

    ufunc: Any  # a NumPy ufunc, or a LocalReduction around an MPI op
    commutative: bool
    name: str

    def check_dtype(self, dtype: np.dtype) -> None:
        """Raise TypeError before any message is sent if the op can't reduce `dtype`."""
        if isinstance(self.ufunc, LocalReduction):
            return  # a user's function: it alone knows its types, and probing would run it
        key = (self.ufunc, dtype)
        ok = _SUPPORTED.get(key)
        if ok is None:
            probe = np.zeros(1, dtype)
            try:
                self.ufunc(probe, probe, out=probe)
                ok = True
            except TypeError:
                ok = False
            _SUPPORTED[key] = ok
        if not ok:
            raise TypeError(f"op {self.name} does not support dtype {dtype}")


class LocalReduction:
    """An op made with MPI.Op.Create, called like a ufunc: out = a op b.

    MPI's `Reduce_local(a, b)` computes b = a op b in place, so it runs on a copy of b
    unless `out` is b itself.
    """

    __slots__ = ("op",)

    def __init__(self, op: Any) -> None:
        self.op = op

    def __call__(self, a: np.ndarray, b: np.ndarray, out: np.ndarray) -> np.ndarray:
        if out is b or (out.size == b.size and out.dtype == b.dtype and out.size and
                        out.__array_interface__["data"][0] == b.__array_interface__["data"][0]):
            self.op.Reduce_local(a, out)
            return out
        both = b.copy()
        self.op.Reduce_local(a, both)
        out[...] = both
        return out


_RESOLVED = {name: Op(ufunc, True, name) for name, ufunc in MPI_OP_NAMES.items()}


def _mpi_ops() -> list[tuple[Any, str]]:
    global _MPI_OPS
    if _MPI_OPS is None:
        from mpi4py import MPI

        _MPI_OPS = [(getattr(MPI, name), name) for name in MPI_OP_NAMES]
    return _MPI_OPS


def _predefined_name(op: Any) -> str:
    from mpi4py import MPI

    return next((name for name in ("MAXLOC", "MINLOC", "REPLACE", "NO_OP", "OP_NULL")
                 if op == getattr(MPI, name, None)), repr(op))


def resolve_op(op: Any) -> Op:
    """Map MPI.SUM/PROD/MAX/MIN/LAND/LOR/LXOR/BAND/BOR/BXOR, a name ("SUM") or a NumPy ufunc to an Op.

    An op made with MPI.Op.Create(fn, commute) is applied with op.Reduce_local and is
    commutative as it says; MAXLOC, MINLOC, REPLACE and NO_OP are refused (ValueError).
    MPI's predefined ops are commutative. A ufunc outside COMMUTATIVE_UFUNCS is
    treated as associative but not commutative, so only algorithms that combine
    in rank order (x0 op x1 op ... op x_{p-1}) accept it.
    """
    entry = _KNOWN.get(id(op))
    if entry is not None and entry[0] is op:
        return entry[1]
    found = _resolve(op)
    if len(_KNOWN) >= _MEMO_LIMIT:
        _KNOWN.clear()
    _KNOWN[id(op)] = (op, found)
    return found


def _resolve(op: Any) -> Op:
    """resolve_op without the memo."""
    if isinstance(op, Op):
        return op
    if isinstance(op, np.ufunc):
        if op.nin != 2 or op.nout != 1:
            raise TypeError(f"op {op.__name__} must be a binary ufunc (2 inputs, 1 output)")
        return Op(op, op in COMMUTATIVE_UFUNCS, op.__name__)
    if isinstance(op, str) and op.upper() in MPI_OP_NAMES:
        return _RESOLVED[op.upper()]
    if type(op).__name__ == "Op" and type(op).__module__.startswith("mpi4py"):
        for mpi_op, name in _mpi_ops():
            if op is mpi_op or op == mpi_op:
                return _RESOLVED[name]
        if not op or op.is_predefined:
            raise ValueError(f"unsupported MPI op {_predefined_name(op)}: use SUM, PROD, MAX, MIN, "
                             "the logical or bitwise ops, a NumPy ufunc or MPI.Op.Create")
        return Op(LocalReduction(op), bool(op.Is_commutative()), "user op")
    raise TypeError(f"op must be an MPI op or a NumPy ufunc, got {op!r}")
