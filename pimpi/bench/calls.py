"""Buffers and calls for one collective at one message size: MPI's own, and pimpi's algorithms.

Sizes follow OSU: bytes per rank's block (bcast/reduce/allreduce/scan: the whole buffer;
scatter/gather/allgather/alltoall/reduce_scatter_block: each rank's share).
Reductions sum float32, so they start at 4 bytes. The non-blocking ones (NONBLOCKING_OPS)
are posted and waited for at once: MPI's Ixxx(...).Wait() against pimpi's schedule ("auto").
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

__all__ = ["OPS", "NONBLOCKING_OPS", "REDUCING", "AUTO", "valid_size", "make_call"]

OPS = ("allreduce", "reduce", "bcast", "scatter", "gather", "allgather", "alltoall",
       "reduce_scatter_block", "scan", "exscan", "barrier", "allgatherv", "alltoallv", "reduce_scatter")
NONBLOCKING_OPS = ("ibarrier", "ibcast", "iallreduce", "iallgather", "ialltoall")
REDUCING = ("allreduce", "reduce", "reduce_scatter_block", "scan", "exscan", "reduce_scatter")
VECTOR = ("allgatherv", "alltoallv", "reduce_scatter")  # run with even counts, one block per rank
_ITEM = 4  # float32


def valid_size(op: str, nbytes: int) -> bool:
    """Reductions need whole float32 items; barrier has one size (0)."""
    op = _blocking(op)
    if op == "barrier":
        return nbytes == 0
    return nbytes >= _ITEM and nbytes % _ITEM == 0 if op in REDUCING else nbytes >= 1


def _blocking(op: str) -> str:
    """The blocking collective a non-blocking one times like ("iallreduce" -> "allreduce")."""
    return op[1:] if op in NONBLOCKING_OPS else op


def _buffers(op: str, nbytes: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    op = _blocking(op)
    dtype = np.float32 if op in REDUCING else np.uint8
    count = nbytes // np.dtype(dtype).itemsize
    many = op in ("scatter", "alltoall", "reduce_scatter_block", "alltoallv", "reduce_scatter")
    gathered = op in ("gather", "allgather", "alltoall", "allgatherv", "alltoallv")
    send = np.ones(count * (size if many else 1), dtype=dtype)
    recv = np.zeros(count * (size if gathered else 1), dtype=dtype)
    return send, recv


AUTO = "auto"  # pimpi with algorithm=None: the decision table chooses


def make_call(comm: Any, op: str, nbytes: int, algorithm: str | None,
              check: bool = True) -> Callable[[], Any]:
    """A no-argument callable running `op` once: MPI's built-in when algorithm is None,
    pimpi's own choice (decision table) when it is "auto". check=False: pimpi's trusted
    fast path (no agreement on the arguments)."""
    if op not in OPS and op not in NONBLOCKING_OPS:
        raise ValueError(f"unknown collective {op!r}; known: {', '.join((*OPS, *NONBLOCKING_OPS))}")
    from mpi4py import MPI

    send, recv = _buffers(op, nbytes, comm.size)
    if op in NONBLOCKING_OPS:
        return _nonblocking_call(comm, op, send, recv, algorithm)
    counts = [send.size // comm.size if op != "allgatherv" else send.size] * comm.size
    if op in VECTOR:
        return _vector_call(comm, op, send, recv, counts, algorithm, check)
    if algorithm is None:
        builtin = {
            "allreduce": lambda: comm.Allreduce(send, recv, op=MPI.SUM),
            "reduce": lambda: comm.Reduce(send, recv, op=MPI.SUM, root=0),
            "bcast": lambda: comm.Bcast(send, root=0),
            "scatter": lambda: comm.Scatter(send, recv, root=0),
            "gather": lambda: comm.Gather(send, recv, root=0),
            "allgather": lambda: comm.Allgather(send, recv),
            "alltoall": lambda: comm.Alltoall(send, recv),
            "reduce_scatter_block": lambda: comm.Reduce_scatter_block(send, recv, op=MPI.SUM),
            "scan": lambda: comm.Scan(send, recv, op=MPI.SUM),
            "exscan": lambda: comm.Exscan(send, recv, op=MPI.SUM),
            "barrier": comm.Barrier,
        }
        return builtin[op]
    return _pimpi_call(comm, op, send, recv, algorithm, check)


def _pimpi_call(comm: Any, op: str, send: np.ndarray, recv: np.ndarray,
                algorithm: str | None, check: bool) -> Callable[[], Any]:
    """The same operation through pimpi.collectives with a named algorithm."""
    from pimpi import collectives as pc

    func = getattr(pc, op)
    algorithm = None if algorithm == AUTO else algorithm
    if op == "barrier":
        return lambda: func(comm, algorithm=algorithm, check=check)
    if op == "bcast":
        return lambda: func(comm, send, root=0, algorithm=algorithm, check=check)
    if op in ("reduce", "scatter", "gather"):
        return lambda: func(comm, send, recv, root=0, algorithm=algorithm, check=check)
    return lambda: func(comm, send, recv, algorithm=algorithm, check=check)


def _vector_call(comm: Any, op: str, send: np.ndarray, recv: np.ndarray, counts: list[int],
                 algorithm: str | None, check: bool = True) -> Callable[[], Any]:
    """allgatherv, alltoallv and reduce_scatter with even counts: built-in or pimpi's."""
    from mpi4py import MPI

    from pimpi import collectives as pc

    if algorithm is None:
        return {"allgatherv": lambda: comm.Allgatherv(send, [recv, counts]),
                "alltoallv": lambda: comm.Alltoallv([send, counts], [recv, counts]),
                "reduce_scatter": lambda: comm.Reduce_scatter(send, recv, counts, op=MPI.SUM)}[op]
    algorithm = None if algorithm == AUTO else algorithm
    kw = {"algorithm": algorithm, "check": check}
    return {"allgatherv": lambda: pc.allgatherv(comm, send, recv, counts, **kw),
            "alltoallv": lambda: pc.alltoallv(comm, send, counts, recv, counts, **kw),
            "reduce_scatter": lambda: pc.reduce_scatter(comm, send, recv, counts, **kw),
            }[op]


def _nonblocking_call(comm: Any, op: str, send: np.ndarray, recv: np.ndarray,
                      algorithm: str | None) -> Callable[[], Any]:
    """Post and wait: MPI's Ixxx when algorithm is None, else pimpi's schedule."""
    from mpi4py import MPI

    from pimpi import collectives as pc

    if algorithm is None:
        return {"ibarrier": lambda: comm.Ibarrier().Wait(),
                "ibcast": lambda: comm.Ibcast(send, root=0).Wait(),
                "iallreduce": lambda: comm.Iallreduce(send, recv, op=MPI.SUM).Wait(),
                "iallgather": lambda: comm.Iallgather(send, recv).Wait(),
                "ialltoall": lambda: comm.Ialltoall(send, recv).Wait()}[op]
    return {"ibarrier": lambda: pc.ibarrier(comm).Wait(),
            "ibcast": lambda: pc.ibcast(comm, send, 0).Wait(),
            "iallreduce": lambda: pc.iallreduce(comm, send, recv, "SUM").Wait(),
            "iallgather": lambda: pc.iallgather(comm, send, recv).Wait(),
            "ialltoall": lambda: pc.ialltoall(comm, send, recv).Wait()}[op]
