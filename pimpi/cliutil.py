"""The CLI toolkit every pimpi command family uses: shared options and the error edge.

Options are defined once here and applied as decorators (rasterio's `rio/options.py`
is the model): `@json_opt`, `@quiet_opt`, `@force_opt`, `@stats_opt`, `@task_timeout_opt(help)`,
`@retries_opt(help)`, and `choice(registry)` for choices taken from a registry (SCENES,
SCHEDULES, ...) instead of retyped. Library errors become one line at the edge: `fail`
(rank 0 prints, the others leave quietly) and `fail_together` (all ranks reach it).
Each package's `cli.py` assembles its commands from these; `pimpi/cli.py` assembles
the packages.
"""

from __future__ import annotations

import sys
from typing import Iterable, NoReturn

import click

from pimpi.mpi import env_rank

__all__ = ["env_rank", "fail", "fail_together", "choice", "json_opt", "quiet_opt", "force_opt",
           "stats_opt", "task_timeout_opt", "retries_opt"]


def choice(names: Iterable[str], *extra: str) -> click.Choice:
    """A click choice of a registry's names (dict keys or a tuple), plus `extra` ones."""
    return click.Choice([*names, *extra])


json_opt = click.option("--json", "json_path", type=click.Path(dir_okay=False), default=None,
                        help="Write the result here (versioned JSON, atomic).")
quiet_opt = click.option("-q", "--quiet", is_flag=True, help="No progress lines.")
force_opt = click.option("--force", is_flag=True, help="Start over: ignore the journal of earlier runs.")
stats_opt = click.option("--stats", "stats_path", type=click.Path(dir_okay=False), default=None,
                         help="Write a JSON report (every attempt, per-rank times) here.")


def task_timeout_opt(help: str = "Seconds one task may take; then its process group is ended.") -> click.Option:
    """`--task-timeout S` (default: none), a positive number of seconds."""
    return click.option("--task-timeout", type=click.FloatRange(min=0, min_open=True), default=None, help=help)


def retries_opt(help: str = "Times a failed task is tried again, each time on another rank.") -> click.Option:
    """`--retries N` (default 1), validated by click: a negative count is a usage error."""
    return click.option("--retries", type=click.IntRange(min=0), default=1, show_default=True, help=help)


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
