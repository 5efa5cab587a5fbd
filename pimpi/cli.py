"""The `pimpi` command line: it only assembles each package's commands."""

from __future__ import annotations

import sys

import click

from pimpi import __version__
from pimpi.bench.cli import bench
from pimpi.cluster.cli import doctor, hosts, run
from pimpi.cluster.slurm.cli import submit
from pimpi.cluster.vcluster.cli import vcluster
from pimpi.collectives.cli import collectives, exercises
from pimpi.render.cli import render

__all__ = ["cli", "main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="pimpi")
def cli() -> None:
    """Provision, check, run, teach and measure a small MPI cluster.

    Commands that do parallel work run under MPI: `pimpi run -n 4 -- render ...`
    or `mpirun -n 4 pimpi render ...`.
    """


for _command in (hosts, doctor, run, submit, collectives, exercises, render, vcluster, bench):
    cli.add_command(_command)


def main() -> None:
    """Console entry point: any rank that fails aborts the whole MPI job.

    Like `python -m mpi4py`, an exception (or a non-zero exit) on one rank
    calls MPI_Abort at exit, so the other ranks never wait forever.
    """
    try:
        cli(prog_name="pimpi")
    except BaseException as exc:
        from mpi4py.run import set_abort_status  # does nothing unless MPI was started

        set_abort_status(exc)
        raise


if __name__ == "__main__":  # pragma: no cover
    main()
    sys.exit(0)
