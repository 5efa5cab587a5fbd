"""CLI helpers shared by the render commands: rank before MPI starts, one-line failures."""

from __future__ import annotations

import os
from typing import NoReturn

import click

__all__ = ["env_rank", "fail"]


def env_rank() -> int:
    """This process's rank from the launcher's environment (0 outside mpirun); no MPI start."""
    for key in ("OMPI_COMM_WORLD_RANK", "PMIX_RANK", "PMI_RANK"):
        if key in os.environ:
            return int(os.environ[key])
    return 0


def fail(rank: int, message: str, usage: bool) -> NoReturn:
    """Rank 0 prints one line (exit 2 for bad input, 1 otherwise); other ranks leave quietly."""
    if rank == 0:
        raise click.UsageError(message) if usage else click.ClickException(message)
    raise click.exceptions.Exit(2 if usage else 1)
