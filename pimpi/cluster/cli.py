"""Commands for the cluster itself: `pimpi hosts`, `pimpi doctor`, `pimpi run`."""

from __future__ import annotations

import contextlib
import os
import shlex
import sys
from typing import Any

import click

from pimpi.cliutil import MAX_RANKS, Float, Int, OutPath, Seconds, fail_together, library_errors, memory_problem

__all__ = ["hosts", "doctor", "run"]

RANK_BYTES = 64 << 20  # what one Python rank (mpi4py, numpy) takes at least: -n N on one machine needs N of them


@click.group()
def hosts() -> None:
    """Check hostfiles (Open MPI `node slots=4` and MPICH `node:4` formats)."""


@hosts.command("check")
@click.argument("path", metavar="FILE", type=click.Path(dir_okay=False))
@click.option("--resolve", is_flag=True,
              help="Also check every name resolves, and not to loopback (the 127.0.1.1 trap).")
def hosts_check(path: str, resolve: bool) -> None:
    """Check a hostfile: print its hosts and slots; exit 2 on bad syntax, 1 on resolution problems.

    \b
    pimpi hosts check hostfile             # syntax only, works offline
    pimpi hosts check hostfile --resolve   # and what each name resolves to here
    """
    from pimpi.cluster import facts
    from pimpi.cluster import hostfile as hostfile_mod

    with library_errors():
        parsed = hostfile_mod.load(path)
    entries = parsed.entries
    for warning in parsed.warnings:
        click.echo(f"warning: {warning}", err=True)
    rows = []
    for entry in entries:
        address = "-"
        if resolve:
            try:
                address = ", ".join(facts.lookup(entry.host)) or "unresolved"
            except OSError:
                address = "unresolved"
        host = f"{entry.user}@{entry.host}" if entry.user else entry.host
        host += "".join(f" = {name}" for name in entry.names)
        rows.append([entry.line, host, _dash(entry.slots), _dash(entry.max_slots), address])
    click.echo(_table(["line", "host", "slots", "max_slots", "address"], rows))
    mpich = entries[0].fmt == "mpich"
    slots = sum(e.slots or (1 if mpich else 0) for e in entries)
    unset = sum(e.slots is None for e in entries) if not mpich else 0
    summary = f"{len(entries)} hosts, {slots} slots ({'MPICH' if mpich else 'Open MPI'} format)"
    if mpich:
        summary += ", converted by pimpi run for Open MPI"
    if unset:  # Open MPI 5 (PRRTE) counts the cores there; Open MPI 1-3 counted one slot
        summary += f"; {unset} without slots= (Open MPI 5 uses one per core)"
    click.echo(summary + ("" if resolve else "; names not resolved (use --resolve)"))
    if resolve:
        problems = hostfile_mod.resolve(entries)
        for warning in hostfile_mod.shared_addresses(entries):
            click.echo(f"warning: {warning}", err=True)
        for problem in problems:
            click.echo(f"problem: {problem}", err=True)
        if problems:
            raise click.ClickException(f"{len(problems)} problem(s) in {path}")


@click.command()
@click.option("--pingmatrix", is_flag=True, help="Also ping-pong every pair of nodes and flag slow links.")
@click.option("--json", "json_path", type=OutPath([".json"]), default=None,
              help="Write every rank's record and the problems to this JSON file (rank 0).")
@click.option("--hot-celsius", type=Float(0, 150), default=80.0, show_default=True,
              help="A node at or above this temperature is a problem.")
@click.option("--slurm/--no-slurm", "slurm", default=None,
              help="Check Slurm too (default: when Slurm is set up here).")
def doctor(pingmatrix: bool, json_path: str | None, hot_celsius: float, slurm: bool | None) -> None:
    """Pre-flight check of every rank: run it under mpirun (or alone for this machine).

    \b
    pimpi run -n 8 --hostfile hostfile -- doctor --pingmatrix
    mpirun --hostfile hostfile -n 8 pimpi doctor --json doctor.json

    Rank 0 prints one row per rank, then the problems; exit 1 when there is one.
    """
    from pimpi.cluster import doctor as doctor_mod
    from pimpi.mpi import finalize_together, world

    comm = world()
    rank = comm.Get_rank()  # kept: MPI may be finalized before the exit below
    if json_path is not None:
        folder = os.path.dirname(os.path.abspath(json_path))
        bad = None if rank != 0 or os.path.isdir(folder) else f"--json {json_path!r}: no folder {folder!r}"
        bad = comm.bcast(bad, root=0)
        if bad:
            fail_together(rank, bad, usage=True)
    report = doctor_mod.run_doctor(comm, pingmatrix=pingmatrix, hot_celsius=hot_celsius)
    error = None
    if rank == 0:
        click.echo(_doctor_table(report.records))
        if report.matrix is not None:
            click.echo(_matrix_text(report.matrix))
        if slurm is not False:
            report.problems += _slurm_view([r.get("hostname") for r in report.records], required=bool(slurm))
        for problem in report.problems:
            click.echo(f"problem: {problem}")
        if json_path is not None:
            try:
                doctor_mod.write_json(report, json_path)
            except OSError as exc:
                error = f"cannot write {json_path}: {exc}"
        if not report.problems:
            click.echo(f"ok: {len(report.records)} ranks on "
                       f"{len({r['hostname'] for r in report.records})} node(s), no problems found")
    error, report.problems = comm.bcast((error, report.problems), root=0)  # Slurm's are rank 0's
    if error:
        fail_together(rank, error, usage=False)
    if report.problems:  # printed above: all ranks end quietly with 1
        finalize_together(comm)
        click.get_current_context().exit(1)


def _slurm_view(rank_hosts: list[str], required: bool) -> list[str]:
    """Print Slurm's view beside the doctor's (when Slurm is set up here, or REQUIRED); return
    its problems."""
    from pimpi.cluster.slurm import view as view_mod

    if not required and not view_mod.configured():
        return []
    view = view_mod.gather()
    shown = view_mod.text(view)
    if shown:
        click.echo(shown)
    return view_mod.problems(view, rank_hosts)


@click.command(context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@click.option("-n", "--np", "nprocs", type=Int(1, MAX_RANKS), default=None, help="Number of ranks (default: all slots).")
@click.option("--hostfile", type=click.Path(dir_okay=False), default=None, help="Hostfile to run on.")
@click.option("--iface", default=None, help="Cluster subnet (e.g. 10.0.0.0/24) or interface for MPI traffic.")
@click.option("--timeout", type=Seconds(), default=None,
              help="End the whole job after this many seconds (exit code 124).")
@click.option("--mpirun", "mpirun_path", default=None, help="mpirun to use (default: the one beside this Python).")
@click.option("--oversubscribe/--no-oversubscribe", default=None,
              help="Allow more ranks than cores (default: on without a hostfile).")
@click.option("--launcher", type=click.Choice(["auto", "mpirun", "srun"]), default="auto", show_default=True,
              help="Inside a Slurm job: mpirun (auto) takes the allocation's nodes; srun runs srun --mpi=pmix.")
@click.option("--dry-run", is_flag=True, help="Print the mpirun command, do not run it.")
@click.argument("target", nargs=-1, type=click.UNPROCESSED, required=True)
def run(nprocs, hostfile, iface, timeout, mpirun_path, oversubscribe, launcher, dry_run, target) -> None:
    """Launch TARGET under mpirun: a pimpi subcommand, `script.py args` or `-m module`.

    \b
    pimpi run -n 4 -- doctor
    pimpi run -n 8 --hostfile hostfile --iface 10.0.0.0/24 -- render scene mandelbrot
    pimpi run -n 3 -- myscript.py --size 10

    Python runs through `python -m mpi4py`, so an exception on any rank aborts the job.
    Inside a Slurm job (SLURM_JOB_ID) no hostfile is needed: the allocation's nodes and
    task count are used.
    """
    from pimpi.cluster import hostfile as hostfile_mod
    from pimpi.cluster import launch as launch_mod
    from pimpi.cluster.slurm import allocation as alloc_mod
    from pimpi.cluster.slurm import launch as slurm_launch

    parsed = _check_hostfile(hostfile) if hostfile is not None else None
    with library_errors():
        allocation = alloc_mod.current()
        if hostfile is None and allocation is None and nprocs is not None:  # every rank on this machine
            problem = memory_problem(f"-n {nprocs}", RANK_BYTES, ranks=nprocs)
            if problem:
                raise ValueError(problem + " (each Python rank takes about 64 MiB)")
        if allocation is not None and hostfile is not None:
            raise ValueError(f"--hostfile {hostfile!r} inside Slurm job {allocation.job_id}: "
                             "the allocation's nodes are used")
        use_srun = slurm_launch.choose_launcher(launcher, allocation) == "srun"
        mpirun = None if use_srun else launch_mod.find_mpirun(mpirun_path)
        flavor = "openmpi" if use_srun else launch_mod.detect_flavor(mpirun)
    env = {**os.environ, **slurm_launch.SRUN_ENV} if use_srun else None
    # The MPI gets a private copy in its own format (MPICH <-> Open MPI, LF line ends), so
    # what `pimpi hosts check` accepted is what launches, even if the file changes meanwhile.
    with (hostfile_mod.launcher_file(parsed, flavor) if parsed else contextlib.nullcontext()) as copy:
        with library_errors():
            spec = launch_mod.Launch(
                nprocs=nprocs, target=list(target), hostfile=copy, iface=iface,
                timeout=timeout, oversubscribe=oversubscribe, in_allocation=allocation is not None,
            )
            if allocation is not None and spec.nprocs is None:
                spec.nprocs = allocation.ntasks
            if use_srun:
                cmd = slurm_launch.srun_command(spec, allocation)
            else:
                cmd = launch_mod.build_command(spec, mpirun, flavor)
        if allocation is not None:
            click.echo(f"pimpi run: Slurm job {allocation.job_id} on {','.join(allocation.nodes)}", err=True)
        shown = [hostfile if arg == copy else arg for arg in cmd] if copy else cmd
        click.echo("+ " + shlex.join(shown), err=True)
        if copy:
            click.echo(f"  ({hostfile} is handed over as a private copy in {flavor} format)", err=True)
        if dry_run:
            return
        from pimpi.procs import stop_signals

        logs: list = []
        with stop_signals():  # SIGTERM/SIGHUP end the whole job too, not only this launcher
            code = launch_mod.run_command(cmd, timeout=timeout, env=env, logs=logs)
    lost = logs[0].lost if logs else []
    if lost and code == 0:  # Open MPI ends a job that lost a node with status 0: it failed
        code = 1
    elif code == 1 and not lost and logs and logs[0].usage_exit:
        code = 2  # a rank refused its input (exit 2) and prterun crashed while ending the job: still bad input
    if code == 1:
        _name_lost(parsed, lost)
    sys.exit(code)


def _name_lost(parsed: Any, lost: list[str]) -> None:
    """After a failed job, one line per node that does not answer (hostfile nodes probed)
    or that the launcher lost during the job."""
    from pimpi.cluster import hostfile as hostfile_mod
    from pimpi.cluster import launch as launch_mod

    named = set()
    if parsed:
        local = hostfile_mod.local_names()
        for host, why in launch_mod.unreachable([e.host for e in parsed.entries if e.host not in local]):
            click.echo(f"pimpi run: node {host} cannot be reached ({why}); the job could not run there", err=True)
            named.add(host)
    for host in lost:
        if host not in named:
            click.echo(f"pimpi run: node {host} was lost during the job (its daemon died or stopped "
                       "answering); the job failed, rerun it to finish", err=True)


def _check_hostfile(path: str) -> Any:
    """Refuse a hostfile that `pimpi hosts check` would refuse, before mpirun sees it;
    print its warnings. Returns the parsed hostfile."""
    from pimpi.cluster import hostfile as hostfile_mod

    with library_errors():
        parsed = hostfile_mod.load(path)
    for warning in parsed.warnings:
        click.echo(f"warning: {warning}", err=True)
    return parsed


def _dash(value: Any) -> str:
    return "-" if value is None else str(value)


def _table(headers: list[str], rows: list[list[Any]]) -> str:
    """Plain left-aligned columns, two spaces apart."""
    cells = [[str(c) for c in row] for row in [headers, *rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in cells)


def _doctor_table(records: list[dict[str, Any]]) -> str:
    rows = []
    for r in records:
        sees = r.get("sees") or {}
        address = records[0].get("sees", {}).get(r.get("hostname")) or sees.get(r.get("hostname"))
        model = r.get("pi_model") or r.get("cpu_model") or "-"
        rows.append([
            r.get("rank"), r.get("hostname") or "-", address or "-", _dash(r.get("cpus")),
            model if len(model) <= 32 else model[:31] + "…",
            _bytes(r.get("mem_available")),
            "-" if r.get("temp_c") is None else f"{r['temp_c']:.0f}°C",
            _throttle_text(r.get("throttled")),
            _recorded_text(r.get("thermal_log")),
            _dash(r.get("python")), _dash(r.get("numpy")), _dash(r.get("mpi4py")),
            _dash(r.get("pimpi_build")), (r.get("mpi_library") or "-").split(",", 1)[0],
            r.get("cwd") or "(missing)",
        ])
    headers = ["rank", "host", "address", "cpus", "model", "free mem", "temp", "throttled", "recorded",
               "python", "numpy", "mpi4py", "pimpi build", "MPI", "cwd"]
    return _table(headers, rows)


def _bytes(value: Any) -> str:
    if value is None:
        return "-"
    return f"{value / 2**30:.1f} GiB" if value >= 2**30 else f"{value / 2**20:.0f} MiB"


def _recorded_text(log: Any) -> str:
    """The thermal recorder's history in a cell: hottest reading over how long, and throttled samples."""
    if not log:
        return "-"
    hottest = "-" if log.get("max_c") is None else f"{log['max_c']:.0f}°C"
    text = f"max {hottest} in {log['hours']:g} h"
    return text + (f", throttled {log['throttled_samples']}/{log['samples']}" if log.get("throttled_samples") else "")


def _throttle_text(throttled: Any) -> str:
    if not throttled:
        return "-"
    if throttled.get("now"):
        return "NOW " + throttled.get("raw", "")
    return "past " + throttled["raw"] if throttled.get("flags") else "no"


def _matrix_text(matrix: dict[str, Any]) -> str:
    """Latency (µs) and bandwidth (MB/s) matrices and the Hockney fit of each link."""
    nodes = matrix["nodes"]
    if len(nodes) < 2:
        return "pingmatrix: only one rank, no links to measure"
    lines = []
    for title, key, scale in (
        (f"one-way latency (µs) at {matrix['sizes'][0]} B", "latency", 1e6),
        (f"bandwidth (MB/s) at {matrix['sizes'][-1]} B", "bandwidth", 1e-6),
    ):
        lines.append(title)
        rows = [[node] + ["-" if v is None else f"{v * scale:.1f}" for v in row]
                for node, row in zip(nodes, matrix[key])]
        lines.append(_table([""] + nodes, rows))
    fits = [link for link in matrix["links"] if link["alpha"] is not None]
    if fits:
        lines.append("Hockney fit T(n) = α + n·β per link")
        lines.append(_table(["link", "α (µs)", "1/β (MB/s)"], [
            [f"{nodes[f['a']]} <-> {nodes[f['b']]}", f"{f['alpha'] * 1e6:.1f}",
             f"{1e-6 / f['beta']:.1f}" if f["beta"] > 0 else "-"] for f in fits]))
    return "\n".join(lines)
