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
    calls MPI_Abort at exit, so the other ranks never wait forever. Exit codes follow
    `pimpi.procs`: Ctrl-C gives 130 (click alone would say 1). Every command, and every
    rank under mpirun, treats SIGTERM, SIGHUP and the death of its parent (a rank's: its
    mpirun or prted) like Ctrl-C: the programs it started are ended, its temporary
    folders removed, and it leaves with 128 + the signal (`procs.stopping`).
    """
    import signal

    from pimpi import procs
    from pimpi.mpi import under_mpirun
    interrupted = []

    def on_sigint(signum: int, frame: object) -> None:
        interrupted.append(signum)
        raise KeyboardInterrupt

    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, on_sigint)
    try:
        with procs.stopping():
            cli(prog_name="pimpi")
    except BaseException as exc:
        from mpi4py.run import set_abort_status  # does nothing unless MPI was started

        code = None
        if isinstance(exc, procs.Stopped):
            code = exc.exit_code
        elif isinstance(exc, KeyboardInterrupt) or (
                isinstance(exc, SystemExit) and exc.code == 1 and interrupted):
            code = procs.EXIT_INTERRUPTED
        if code is None:
            set_abort_status(exc)
            raise
        if under_mpirun():  # the other ranks must not wait for this one (alone: no abort banner)
            set_abort_status(SystemExit(code))
        sys.exit(code)


if __name__ == "__main__":  # pragma: no cover
    main()
    sys.exit(0)
