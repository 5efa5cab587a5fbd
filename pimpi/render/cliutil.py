"""CLI helpers shared by the render commands: rank before MPI starts, one-line failures."""

from __future__ import annotations

from typing import NoReturn

import click

from pimpi.mpi import env_rank

__all__ = ["env_rank", "fail"]


def fail(rank: int, message: str, usage: bool) -> NoReturn:
    """Rank 0 prints one line (exit 2 for bad input, 1 otherwise); other ranks leave quietly."""
    if rank == 0:
        raise click.UsageError(message) if usage else click.ClickException(message)
    raise click.exceptions.Exit(2 if usage else 1)
