"""The `pimpi` command line: it only assembles each package's commands."""

from __future__ import annotations

import importlib
import sys
import time

import click

from pimpi import __version__
from pimpi.cliutil import show_usage_error
from pimpi.commands import COMMANDS
from pimpi.mpi import env_rank

USAGE_GRACE_S = 30  # how long a rank other than 0 waits, after a usage error, for rank 0 to end the job

__all__ = ["cli", "main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="pimpi")
def cli() -> None:
    """Provision, check, run, teach and measure a small MPI cluster.

    Commands that do parallel work run under MPI: `pimpi run -n 4 -- render ...`
    or `mpirun -n 4 pimpi render ...`.
    """


for _name, _where in COMMANDS.items():
    _module, _, _attr = _where.partition(":")
    cli.add_command(getattr(importlib.import_module(_module), _attr), _name)


def main() -> None:
    """Console entry point: any rank that fails aborts the whole MPI job.

    Like `python -m mpi4py`, an exception (or a non-zero exit) on one rank calls MPI_Abort
    at exit, so the other ranks never wait forever. A job of one process has nobody to
    wait: it ends with its exit code and without Open MPI's abort banner. A usage error
    is the same on every rank (same arguments), so under mpirun only rank 0 prints it.
    Exit codes follow `pimpi.procs`: Ctrl-C gives 130 (click alone would say 1). Every
    command, and every rank under mpirun, treats SIGTERM, SIGHUP and the death of its parent
    (a rank's: its mpirun or prted) like Ctrl-C: the programs it started are ended, its
    temporary folders removed, and it leaves with 128 + the signal (`procs.stopping`).
    """
    import signal

    from pimpi import procs
    interrupted = []

    def on_sigint(signum: int, frame: object) -> None:
        interrupted.append(signum)
        raise KeyboardInterrupt

    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, on_sigint)
    try:
        with procs.stopping():
            try:  # click's standalone handling, except that only rank 0 shows a usage error
                code = cli.main(prog_name="pimpi", standalone_mode=False)  # an Exit's code, or what a command returned
            except click.UsageError as exc:
                rank = env_rank()
                if rank == 0:
                    show_usage_error(exc)
                else:
                    # Every rank parsed the same arguments, so rank 0 normally fails the same way and
                    # ends the job once it has printed. Leaving first would let mpirun end rank 0
                    # before it says what was wrong (seen in CI). Still here after the wait: the
                    # error is this rank's own (a folder missing on its node), so it says it.
                    try:
                        time.sleep(USAGE_GRACE_S)
                    except (procs.Stopped, KeyboardInterrupt):  # rank 0 failed and the launcher ends us:
                        sys.exit(exc.exit_code)  # leave with its code (srun reports the highest)
                    click.echo(f"rank {rank}: ", err=True, nl=False)
                    show_usage_error(exc)
                sys.exit(exc.exit_code)
            except click.ClickException as exc:
                exc.show()
                sys.exit(exc.exit_code)
            except click.Abort:  # click's name for a KeyboardInterrupt or EOF
                click.echo("Aborted!", err=True)
                sys.exit(1)
    except BaseException as exc:
        stop_code = None
        if isinstance(exc, procs.Stopped):
            stop_code = exc.exit_code
        elif isinstance(exc, KeyboardInterrupt) or (
                isinstance(exc, SystemExit) and exc.code == 1 and interrupted):
            stop_code = procs.EXIT_INTERRUPTED
        if _job_size() > 1:  # the other ranks must not wait for this one (alone: no abort banner)
            from mpi4py.run import set_abort_status

            set_abort_status(exc if stop_code is None else SystemExit(stop_code))
        if stop_code is None:
            raise
        sys.exit(stop_code)
    sys.exit(code if isinstance(code, int) and not isinstance(code, bool) else 0)


def _job_size() -> int:
    """Processes in this MPI job; 0 when MPI was never started here (or is finalized)."""
    mpi = sys.modules.get("mpi4py.MPI")
    if mpi is None or not mpi.Is_initialized() or mpi.Is_finalized():
        return 0
    return mpi.COMM_WORLD.Get_size()


if __name__ == "__main__":  # pragma: no cover
    main()
    sys.exit(0)
