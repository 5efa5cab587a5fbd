"""CLI helpers shared by every pimpi command: rank before MPI starts, one-line failures."""

from __future__ import annotations

import sys
from typing import NoReturn

import click

from pimpi.mpi import env_rank

__all__ = ["env_rank", "fail", "fail_together"]


def fail(rank: int, message: str, usage: bool) -> NoReturn:
    """Rank 0 prints one line (exit 2 for bad input, 1 otherwise); other ranks leave quietly."""
    if rank == 0:
        raise click.UsageError(message) if usage else click.ClickException(message)
    raise click.exceptions.Exit(2 if usage else 1)


def fail_together(rank: int, message: str, usage: bool) -> NoReturn:
    """Every rank calls this together: rank 0 prints the one-line error, all exit with 2
    (usage) or 1 (runtime) after finalizing MPI.

    Under mpirun, rank 0 prints BEFORE the closing barrier: once one rank exits non-zero,
    mpirun ends the others, and an error printed later may never appear. A finalized exit
    also avoids the MPI_Abort that `pimpi`'s entry point does for a rank failing alone.
    """
    from pimpi.mpi import finalize_together, under_mpirun, world

    if not under_mpirun():
        fail(rank, message, usage)
    from mpi4py import MPI

    if not MPI.Is_finalized():
        comm = world()
        if comm.rank == 0:
            error = click.UsageError(message, click.get_current_context()) if usage else click.ClickException(message)
            error.show()
            sys.stderr.flush()
        sys.stdout.flush()
        finalize_together(comm)
    raise click.exceptions.Exit(2 if usage else 1)
