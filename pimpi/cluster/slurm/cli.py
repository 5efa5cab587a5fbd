"""`pimpi submit`: any pimpi job (or script) as a Slurm batch job that survives requeue."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from pimpi.cliutil import MAX_RANKS, Int, Seconds, library_errors

__all__ = ["submit"]


@click.command(context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@click.option("-N", "--nodes", type=Int(1, MAX_RANKS), default=1, show_default=True, help="Nodes to allocate.")
@click.option("-n", "--ntasks", type=Int(1, MAX_RANKS), default=None, help="MPI ranks (default: one per node).")
@click.option("-t", "--time", "time_limit", default="1:00:00", show_default=True,
              help="Time limit: minutes, H:MM:SS or D-HH:MM:SS.")
@click.option("-p", "--partition", default=None, help="Partition (default: the cluster's default).")
@click.option("-J", "--name", default=None, help="Job name (default: pimpi-<command>).")
@click.option("--log", "log", default="pimpi-%j.out", show_default=True,
              help="Output and errors of every run of the job, appended (%j: job id).")
@click.option("--requeue/--no-requeue", default=True, show_default=True,
              help="Let Slurm run the job again after a node failure or preemption.")
@click.option("--exclusive", is_flag=True, help="Whole nodes for this job only.")
@click.option("--launcher", type=click.Choice(["auto", "mpirun", "srun"]), default="auto", show_default=True,
              help="What `pimpi run` uses inside the job.")
@click.option("--run-timeout", type=Seconds(), default=None,
              help="`pimpi run --timeout` inside the job (seconds).")
@click.option("--sbatch-option", "extra", multiple=True, metavar="OPT",
              help="One more #SBATCH line, e.g. --sbatch-option=--mem=2G (repeatable).")
@click.option("--wait", is_flag=True, help="Follow the job (state and log) until it ends; exit with its code.")
@click.option("--dry-run", is_flag=True, help="Print the script, submit nothing.")
@click.argument("target", nargs=-1, type=click.UNPROCESSED, required=True)
def submit(nodes, ntasks, time_limit, partition, name, log, requeue, exclusive, launcher, run_timeout,
           extra, wait, dry_run, target) -> None:
    """Submit TARGET (what `pimpi run` takes) as a Slurm batch job and print its id.

    \b
    pimpi submit -N 3 -n 6 -t 2:00:00 -- render scene mandelbrot --frames 240 --out /srv/pimpi/zoom
    pimpi submit -N 2 --wait -- bench pingpong --json pp.json
    pimpi submit -N 4 -- myscript.py --size 10

    The script (NAME-JOBID.sbatch, beside the log) runs `pimpi run` inside the allocation.
    It is requeueable: a render that Slurm requeues, or that you cancel and submit again,
    continues from its journal and renders no finished frame twice.
    """
    from pimpi import procs
    from pimpi.cluster.slurm import batch as batch_mod
    from pimpi.cluster.slurm import jobs
    from pimpi.fileio import atomic_write

    cwd = Path.cwd()
    log_path = Path(log) if os.path.isabs(log) else cwd / log
    spec = batch_mod.Batch(target=list(target), nodes=nodes, ntasks=ntasks, time=time_limit, name=name,
                           partition=partition, log=str(log_path), chdir=str(cwd), requeue=requeue,
                           exclusive=exclusive, launcher=launcher, run_timeout=run_timeout, extra=list(extra))
    with library_errors():
        text = batch_mod.script_text(spec)
    if dry_run:
        click.echo(text, nl=False)
        return
    folder = log_path.parent
    if not folder.is_dir() or not os.access(folder, os.W_OK):
        raise click.UsageError(f"--log {log!r}: folder {str(folder)!r} is missing or not writable")
    job_name = spec.name or batch_mod.job_name(spec.target)
    try:
        job = jobs.submit(text)
        final = atomic_write(folder / f"{job_name}-{job}.sbatch", text)  # what Slurm runs, to read
    except (jobs.SlurmError, OSError) as exc:
        raise click.ClickException(str(exc)) from None
    try:
        resolved = jobs.log_path(jobs.job_info(job) or {})  # Slurm's own reading of %j, %x, %u...
    except jobs.SlurmError:
        resolved = None
    resolved = resolved or Path(str(log_path).replace("%j", job))
    click.echo(f"job {job} submitted: script {final}, log {resolved}")
    if not wait:
        return
    try:
        with procs.stop_signals():
            info = jobs.follow(job, resolved)
    except jobs.SlurmError as exc:
        raise click.ClickException(str(exc)) from None
    except (KeyboardInterrupt, procs.Stopped) as exc:
        click.echo(f"stopped following job {job}; it keeps running (scancel {job} to cancel it)", err=True)
        sys.exit(exc.exit_code if isinstance(exc, procs.Stopped) else 130)
    sys.exit(jobs.exit_code(info))
