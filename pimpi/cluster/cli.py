"""Commands for the cluster itself: `pimpi hosts`, `pimpi doctor`, `pimpi run`."""

from __future__ import annotations

import shlex
import sys

import click

__all__ = ["hosts", "doctor", "run"]


@click.group()
def hosts() -> None:
    """Check hostfiles (Open MPI `node slots=4` and MPICH `node:4` formats)."""


@click.command()
def doctor() -> None:
    """Pre-flight check of every rank (run it under mpirun)."""
    raise click.ClickException("doctor: not implemented yet")


@click.command(context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@click.option("-n", "--np", "nprocs", type=int, default=None, help="Number of ranks (default: all slots).")
@click.option("--hostfile", type=click.Path(dir_okay=False), default=None, help="Hostfile to run on.")
@click.option("--iface", default=None, help="Cluster subnet (e.g. 10.0.0.0/24) or interface for MPI traffic.")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=None,
              help="End the whole job after this many seconds (exit code 124).")
@click.option("--mpirun", "mpirun_path", default=None, help="mpirun to use (default: the one beside this Python).")
@click.option("--oversubscribe/--no-oversubscribe", default=None,
              help="Allow more ranks than cores (default: on without a hostfile).")
@click.option("--dry-run", is_flag=True, help="Print the mpirun command, do not run it.")
@click.argument("target", nargs=-1, type=click.UNPROCESSED, required=True)
def run(nprocs, hostfile, iface, timeout, mpirun_path, oversubscribe, dry_run, target) -> None:
    """Launch TARGET under mpirun: a pimpi subcommand, `script.py args` or `-m module`.

    \b
    pimpi run -n 4 -- doctor
    pimpi run -n 8 --hostfile hostfile --iface 10.0.0.0/24 -- render scene mandelbrot
    pimpi run -n 3 -- myscript.py --size 10

    Python runs through `python -m mpi4py`, so an exception on any rank aborts the job.
    """
    from pimpi.cluster import launch as launch_mod

    if hostfile is not None:
        _check_hostfile(hostfile)
    try:
        mpirun = launch_mod.find_mpirun(mpirun_path)
        flavor = launch_mod.detect_flavor(mpirun)
        spec = launch_mod.Launch(
            nprocs=nprocs, target=list(target), hostfile=hostfile, iface=iface,
            timeout=timeout, oversubscribe=oversubscribe,
        )
        cmd = launch_mod.build_command(spec, mpirun, flavor)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    click.echo("+ " + shlex.join(cmd), err=True)
    if dry_run:
        return
    code = launch_mod.run_command(cmd, timeout=timeout)
    sys.exit(code)


def _check_hostfile(path: str) -> None:
    """Refuse a hostfile that `pimpi hosts check` would refuse, before mpirun sees it."""
    try:
        from pimpi.cluster import hostfile as hostfile_mod
    except ImportError:  # parser not there yet
        return
    try:
        hostfile_mod.read_hostfile(path)
    except (OSError, ValueError) as exc:
        raise click.UsageError(str(exc)) from None
