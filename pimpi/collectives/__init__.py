"""Classic collective algorithms built from point-to-point messages on NumPy buffers.

Each collective takes the communicator first, like mpi4py's uppercase methods,
and an optional `algorithm=` name from ALGORITHMS; None lets the decision table
choose from the message size and the number of ranks:

    from pimpi.collectives import allreduce, ALGORITHMS
    allreduce(comm, x, out, MPI.SUM, algorithm="ring")

Only comm.Send/Recv/Sendrecv/Isend/Irecv and Request.Wait/Waitall are used, so a
proxy around the communicator can record every message. Comm(comm) is a drop-in
mpi4py communicator whose uppercase collectives (buffer specs, MPI.IN_PLACE) run these.
"""

from __future__ import annotations

from .broadcast import bcast
from .comm import Comm
from .exchange import allgather, allgatherv, alltoall, alltoallv
from .nonblocking import NONBLOCKING, Schedule, iallgather, iallreduce, ialltoall, ibarrier, ibcast
from .ops import Op, resolve_op
from .partition import block_2d, block_counts, block_range, grid_2d
from .prefix import exscan, scan
from .reduction import allreduce, reduce, reduce_scatter, reduce_scatter_block
from .registry import ALGORITHMS, ORDERED, TAGS, cost, get, implementation
from .scatter_gather import gather, gatherv, scatter, scatterv
from .synchronize import barrier
from .tuning import choose, load_table, reload_table, save_table, user_table_path

__all__ = [
    "ALGORITHMS", "ORDERED", "TAGS", "get", "implementation", "cost",
    "bcast", "reduce", "allreduce", "scatter", "gather", "scatterv", "gatherv",
    "allgather", "alltoall", "reduce_scatter_block", "scan", "exscan", "barrier",
    "allgatherv", "alltoallv", "reduce_scatter",
    "Comm", "Op", "resolve_op",
    "ibarrier", "ibcast", "iallreduce", "iallgather", "ialltoall", "Schedule", "NONBLOCKING",
    "block_counts", "block_range", "grid_2d", "block_2d",
    "choose", "load_table", "save_table", "reload_table", "user_table_path",
]
