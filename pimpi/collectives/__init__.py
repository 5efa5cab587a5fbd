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

import importlib
from typing import Any

# Where each public name lives: imported on first use, so `import pimpi.collectives`
# (and the `pimpi` command line under it) loads no NumPy until a collective is used.
_HOMES = {
    "bcast": "broadcast",
    "Comm": "comm",
    "allgather": "exchange",
    "allgatherv": "exchange",
    "alltoall": "exchange",
    "alltoallv": "exchange",
    "NONBLOCKING": "nonblocking",
    "Schedule": "nonblocking",
    "iallgather": "nonblocking",
    "iallreduce": "nonblocking",
    "ialltoall": "nonblocking",
    "ibarrier": "nonblocking",
    "ibcast": "nonblocking",
    "Op": "ops",
    "resolve_op": "ops",
    "block_2d": "partition",
    "block_counts": "partition",
    "block_range": "partition",
    "grid_2d": "partition",
    "exscan": "prefix",
    "scan": "prefix",
    "allreduce": "reduction",
    "reduce": "reduction",
    "reduce_scatter": "reduction",
    "reduce_scatter_block": "reduction",
    "ALGORITHMS": "registry",
    "ORDERED": "registry",
    "TAGS": "registry",
    "cost": "registry",
    "get": "registry",
    "implementation": "registry",
    "gather": "scatter_gather",
    "gatherv": "scatter_gather",
    "scatter": "scatter_gather",
    "scatterv": "scatter_gather",
    "barrier": "synchronize",
    "choose": "tuning",
    "load_table": "tuning",
    "reload_table": "tuning",
    "save_table": "tuning",
    "user_table_path": "tuning",
}

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


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{home}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_HOMES))
