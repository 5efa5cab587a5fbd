"""Lazy access to MPI, so `pimpi --help` and serial code never start it."""

from __future__ import annotations

import os
from typing import Any

__all__ = ["world", "env_rank", "under_mpirun", "library_version", "abort_job", "finalize_together"]


def world() -> Any:
    """Return MPI.COMM_WORLD, starting MPI on first use."""
    from mpi4py import MPI

    return MPI.COMM_WORLD


def env_rank() -> int:
    """This process's rank from the launcher's environment (0 outside mpirun); starts no MPI."""
    for key in ("OMPI_COMM_WORLD_RANK", "PMIX_RANK", "PMI_RANK"):
        if key in os.environ:
            return int(os.environ[key])
    return 0


def under_mpirun() -> bool:
    """True when this process was started by mpirun/mpiexec (Open MPI, MPICH or Hydra)."""
    keys = ("OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK", "PMI_SIZE", "MPI_LOCALNRANKS")
    return any(key in os.environ for key in keys)


def library_version() -> str:
    """The first line of MPI_Get_library_version, e.g. 'Open MPI v5.0.11, ...'."""
    from mpi4py import MPI

    return MPI.Get_library_version().strip().splitlines()[0]


def abort_job(comm: Any, code: int = 1) -> None:
    """Abort every rank of `comm`'s job (used when one rank cannot go on)."""
    comm.Abort(code)


def finalize_together(comm: Any) -> None:
    """Every rank calls this before all exit non-zero together: finalize, so it is no abort.

    `pimpi`'s entry point turns a non-zero exit into MPI_Abort (right for one rank failing
    alone); when all ranks agree on the outcome, a finalized exit ends the job quietly.
    """
    from mpi4py import MPI

    if not MPI.Is_finalized():
        comm.Barrier()
        MPI.Finalize()
