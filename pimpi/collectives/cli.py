"""`pimpi collectives` (message traces) and `pimpi exercises` (graded exercises)."""

from __future__ import annotations

import os
import sys

import click

from pimpi.cliutil import MAX_BYTES, MAX_RANKS, Int, IntList, OutPath, Seconds, fail_together, library_errors

__all__ = ["collectives", "exercises"]

DTYPES = ("int32", "int64", "float32", "float64", "complex128")
MAX_TRACE_ELEMENTS = 1 << 24  # elements of a traced vector (128 MiB of float64 on each rank)
MAX_CHECK_RANKS = 64          # ranks of one graded case (all on this machine)


@click.group()
def collectives() -> None:
    """Inspect pimpi's collective algorithms."""


@click.group()
def exercises() -> None:
    """Graded exercises on collective algorithms."""


@collectives.command("list")
@click.option("--ranks", "-p", type=Int(1, MAX_RANKS), default=8, show_default=True)
@click.option("--bytes", "nbytes", type=Int(0, MAX_BYTES), default=8192, show_default=True,
              help="Vector size in bytes (all p blocks for scatter/gather/allgather).")
def list_algorithms(ranks: int, nbytes: int) -> None:
    """List every collective's algorithms with their α–β cost (no MPI needed)."""
    from pimpi.collectives import ALGORITHMS, cost
    from pimpi.collectives.trace import format_bytes

    click.echo(f"critical path for {format_bytes(nbytes)} on {ranks} ranks "
               "(T = alpha * messages + beta * bytes):")
    for collective, algorithms in ALGORITHMS.items():
        for algorithm in algorithms:
            msgs, volume = cost(collective, algorithm, nbytes, ranks)
            click.echo(f"  {collective:<22} {algorithm:<20} {msgs:>6g} messages  {format_bytes(volume):>10}")
    click.echo("\nSee one run: pimpi run -n 8 -- collectives trace allreduce --algorithm ring")


@collectives.command("trace")
@click.argument("collective")
@click.option("--algorithm", "-a", default=None, help="Algorithm name (default: the first listed).")
@click.option("--size", type=Int(0, MAX_TRACE_ELEMENTS), default=1024, show_default=True,
              help="Elements in the vector (per block for scatter/gather/allgather/alltoall/"
                   "reduce_scatter_block; scatterv/gatherv: uneven counts around it, some 0).")
@click.option("--dtype", type=click.Choice(DTYPES), default="float64", show_default=True)
@click.option("--root", type=Int(0, MAX_RANKS - 1), default=0, show_default=True)
@click.option("--svg", "svg_path", type=OutPath([".svg"]), default=None, help="Draw the messages as an SVG file.")
@click.option("--png", "png_path", type=OutPath([".png"]), default=None, help="Draw the messages as a PNG (needs matplotlib).")
@click.option("--json", "json_path", type=OutPath([".json"]), default=None, help="Write every message and the totals as JSON.")
def trace_cmd(collective, algorithm, size, dtype, root, svg_path, png_path, json_path) -> None:
    """Run one collective on a tracing communicator and show its messages round by round.

    \b
    pimpi run -n 8 -- collectives trace allreduce --algorithm ring --size 1024
    pimpi run -n 5 -- collectives trace bcast -a binomial --root 2 --svg bcast.svg
    """
    from pimpi import mpi
    from pimpi.collectives import trace as trace_mod

    comm = mpi.world()
    rank = comm.Get_rank()
    with library_errors(rank, together=True):
        algorithm = trace_mod.check_request(collective, algorithm, root, comm.Get_size())
    outputs = _outputs(rank, svg_path, png_path, json_path)
    report = trace_mod.trace_collective(comm, collective, algorithm, size, dtype, root)
    _show(comm, report, outputs)


def _outputs(rank: int, svg_path: str | None, png_path: str | None, json_path: str | None) -> dict:
    """The output files by option (OutPath checked each one as every rank parsed its arguments)."""
    outputs = {"--svg": svg_path, "--png": png_path, "--json": json_path}
    if outputs["--png"]:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            fail_together(rank, "--png needs matplotlib: pip install 'pimpi[plot]'", usage=True)
    return outputs


def _show(comm, report, outputs: dict) -> None:
    """Rank 0 prints the report and writes the files; every rank exits 1 on a MISMATCH."""
    from pimpi.collectives.trace import save_report

    rank = comm.Get_rank()
    if rank == 0:
        click.echo(report.text())
        if comm.Get_size() == 1:
            click.echo("one rank sends nothing: run it under `pimpi run -n 8 -- ...`")
        for option, path in outputs.items():
            if path:
                save_report(report, path, option.lstrip("-"))
                click.echo(f"wrote {path}")
    mismatch = comm.bcast(report.mismatch if rank == 0 else None, root=0)
    if mismatch:
        fail_together(rank, f"MISMATCH: {mismatch}", usage=False)


@collectives.command("run", context_settings={"ignore_unknown_options": True})
@click.option("--algorithm", "-a", "algorithms", multiple=True,
              help="NAME for every collective that has it, or COLLECTIVE=NAME (repeatable).")
@click.option("--trace", "trace_path", type=OutPath([".svg", ".png", ".json"], what="trace"), default=None,
              help="Draw every message of pimpi's algorithms: .svg, .png or .json.")
@click.option("--counts", is_flag=True, help="Print per collective the calls pimpi ran and refused.")
@click.argument("script")
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def run_cmd(algorithms, trace_path, counts, script, args) -> None:
    """Run an unmodified mpi4py SCRIPT with COMM_WORLD's collectives on pimpi's algorithms.

    \b
    pimpi run -n 4 -- collectives run script.py
    pimpi run -n 4 -- collectives run -a ring -a bcast=pipeline --trace trace.svg script.py
    """
    from pimpi.cliutil import env_rank
    from pimpi.collectives.runner import parse_algorithms, run_script

    rank = env_rank()
    with library_errors(rank, together=True, usage=(click.UsageError,)):
        chosen = parse_algorithms(algorithms)
        if not os.path.isfile(script):
            raise ValueError(f"script not found: {script}")
    world = run_script(script, list(args), chosen, trace=trace_path is not None)
    _after_run(world, trace_path, counts)


def _after_run(world, trace_path: str | None, counts: bool) -> None:
    """Rank 0 writes the trace and prints the counts (every rank takes part in gathering)."""
    from pimpi.collectives.trace import gather_trace, save_trace

    real = world.comm
    totals = {name: {k: real.allreduce(v) for k, v in entry.items()}
              for name, entry in sorted(world.counts.items())} if counts else {}
    trace = None
    if trace_path is not None:
        trace = gather_trace(real, world.tracer.finish() if world.tracer is not None else [])
    if real.Get_rank() != 0:
        return
    if totals:
        click.echo("calls summed over all ranks:", err=True)
    for name, entry in totals.items():
        click.echo(f"{name:<22} pimpi {entry['pimpi']:>6}  refused {entry['refused']:>4}", err=True)
    if trace is not None:
        save_trace(trace, trace_path, f"collectives of {world.comm.Get_size()} ranks")
        click.echo(f"wrote {trace_path}: {len(trace.messages)} messages in {trace.rounds} rounds",
                   err=True)


@exercises.command("list")
def list_cmd() -> None:
    """List the exercises in course order, with their level (1 first steps, 2 core, 3 advanced)."""
    from pimpi.collectives.exercises import EXERCISES

    width = max(len(name) for name in EXERCISES)
    click.echo(f"{'#':>2}  level  {'name':<{width}}  title")
    for number, ex in enumerate(EXERCISES.values(), 1):
        click.echo(f"{number:>2}  {ex.level:^5}  {ex.name:<{width}}  {ex.title}")
    click.echo("\nStart one with: pimpi exercises start NAME [DIR]   (the course: docs/course.md)")


@exercises.command("start")
@click.argument("name")
@click.argument("directory", type=OutPath(folder=True), default=".", required=False)
def start_cmd(name: str, directory: str) -> None:
    """Write the starter file NAME.py into DIR (never over an existing file)."""
    from pimpi.collectives.exercises.starter import write_starter

    try:
        path = write_starter(name, directory)
    except FileExistsError:
        raise click.UsageError(f"{os.path.join(directory, name + '.py')} exists; not overwriting it") from None
    except (ValueError, OSError) as exc:
        raise click.UsageError(str(exc)) from None
    click.echo(f"wrote {path}; grade it with: pimpi exercises check {name} {path}")


@exercises.command("trace")
@click.argument("name")
@click.argument("file", required=False)
@click.option("--reference", is_flag=True, help="Trace the shipped reference solution instead of FILE.")
@click.option("--function", "function", default=None, help="Which function, when the exercise has several.")
@click.option("--size", type=Int(0, MAX_TRACE_ELEMENTS), default=16, show_default=True,
              help="Elements (intervals for pi) in the case to run.")
@click.option("--dtype", type=click.Choice(DTYPES), default=None, help="Default: float64 or the exercise's.")
@click.option("--root", type=Int(0, MAX_RANKS - 1), default=0, show_default=True)
@click.option("--svg", "svg_path", type=OutPath([".svg"]), default=None, help="Draw the messages as an SVG file.")
@click.option("--png", "png_path", type=OutPath([".png"]), default=None, help="Draw the messages as a PNG (needs matplotlib).")
@click.option("--json", "json_path", type=OutPath([".json"]), default=None, help="Write every message and the totals as JSON.")
@click.option("--timeout", type=Seconds(3600), default=30.0, show_default=True,
              help="Seconds before a hanging run prints each rank's calls so far and ends the job.")
def exercise_trace_cmd(name, file, reference, function, size, dtype, root, svg_path, png_path,
                       json_path, timeout) -> None:
    """Trace YOUR solution's messages round by round (run it under mpirun).

    \b
    pimpi run -n 8 --timeout 60 -- exercises trace bcast_binomial bcast_binomial.py --svg mine.svg
    pimpi run -n 4 -- exercises trace heat_sendrecv --reference --size 12
    """
    from pimpi import mpi
    from pimpi.collectives import trace as trace_mod
    from pimpi.collectives.exercises import get_exercise
    from pimpi.collectives.exercises.worker import load_functions

    comm = mpi.world()
    rank = comm.Get_rank()
    try:
        exercise = get_exercise(name)
        if reference == (file is not None):
            raise ValueError("give either FILE or --reference")
        if reference:
            from pimpi.collectives.exercises import reference_path

            file = str(reference_path(name))
        names = [f.name for f in exercise.functions]
        chosen = next((f for f in exercise.functions if f.name == (function or names[0])), None)
        if chosen is None:
            raise ValueError(f"--function {function!r}: {name} has {', '.join(names)}")
        dtype = dtype or ("float64" if "float64" in exercise.dtypes else exercise.dtypes[0])
        if dtype not in exercise.dtypes:
            raise ValueError(f"--dtype {dtype}: {name} is graded with {', '.join(exercise.dtypes)}")
        if not 0 <= root < comm.Get_size():
            raise ValueError(f"--root {root} out of range for {comm.Get_size()} ranks")
        if chosen.kind == "pi" and size < 1:
            raise ValueError("--size: pi needs at least 1 interval")
        func = load_functions(exercise, file)[chosen.kind]
    except (ValueError, TypeError, OSError, SyntaxError) as exc:  # a learner's file: all bad input
        fail_together(rank, str(exc), usage=True)
    outputs = _outputs(rank, svg_path, png_path, json_path)
    words = exercise.trace.split()
    predict = None
    if words and words[0] == chosen.kind and "--algorithm" in words:
        predict = (words[0], words[words.index("--algorithm") + 1])
    calls: list[str] = []
    watchdog = _hang_watchdog(comm, calls, timeout)
    try:
        report = trace_mod.trace_call(comm, func, chosen.kind, size, dtype, root, f"{chosen.name} ({'reference' if reference else file})",
                                      predict, watch=calls.append)
    finally:
        watchdog.cancel()
    _show(comm, report, outputs)


def _hang_watchdog(comm, calls: list[str], timeout: float):
    """After `timeout` s, print this rank's calls so far (the partial trace up to the hang), end the job."""
    import threading

    def fire() -> None:
        rank = comm.Get_rank()
        if not calls:
            text = "made no call"
        else:
            text = (f"calls so far: {', '.join(calls[:-1]) + ', then ' if len(calls) > 1 else ''}{calls[-1]}"
                    " <- hangs here (or waits for the other ranks after it)")
        click.echo(f"HANG: rank {rank} after {timeout:g} s: {text}")
        sys.stdout.flush()
        if rank == 0:  # one rank ends the job, once the others (started a little later) printed too
            import time

            time.sleep(5.0)
            comm.Abort(124)

    timer = threading.Timer(timeout, fire)
    timer.daemon = True
    timer.start()
    return timer


def _read_names(path: str) -> dict[str, str]:
    """The --names map: 'file,student' per line (a header 'file,student' is skipped); UsageError naming a bad line."""
    import csv

    out: dict[str, str] = {}
    with open(path, encoding="utf-8", newline="") as fh:
        for number, row in enumerate(csv.reader(fh), 1):
            if not row or (number == 1 and [c.strip().lower() for c in row] == ["file", "student"]):
                continue
            if len(row) != 2 or not row[0].strip() or not row[1].strip():
                raise click.UsageError(f"--names {path}: line {number} is not 'file,student': {','.join(row)!r}")
            out[row[0].strip()] = row[1].strip()
    return out


@exercises.command("check")
@click.argument("name")
@click.argument("files", metavar="FILE...", nargs=-1, required=True)
@click.option("-n", "sizes", type=IntList(1, MAX_CHECK_RANKS), default=None,
              help="Rank counts to test [default: the exercise's own, e.g. 1,2,3,4,5,8; 6 and 9 for cart_halo].")
@click.option("--timeout", type=Seconds(3600), default=10.0, show_default=True,
              help="Seconds one case may take before it counts as a DEADLOCK.")
@click.option("--json", "json_path", type=OutPath([".json"]), default=None,
              help="Write a summary per student and one record per case as JSON.")
@click.option("--csv", "csv_path", type=OutPath([".csv"]), default=None,
              help="Write one row per student (passed, total, score, first failure).")
@click.option("--report", "report_path", type=OutPath([".html", ".htm", ".md"]), default=None,
              help="Write a summary to hand back: FILE.html or FILE.md.")
@click.option("--jobs", "-j", type=Int(1, MAX_CHECK_RANKS), default=None,
              help="mpiruns at once (default: one per core).")
@click.option("--names", "names_path", type=click.Path(exists=True, dir_okay=False), default=None,
              help="A CSV of 'file,student' lines naming each file's student (default: its folder, or its name).")
@click.option("--quiet", "-q", is_flag=True, help="Print only the causes of failure and the totals.")
def check_cmd(name: str, files: tuple[str, ...], sizes: list[int] | None, timeout: float, json_path: str | None,
              csv_path: str | None, report_path: str | None, jobs: int | None, names_path: str | None,
              quiet: bool) -> None:
    """Grade each FILE for exercise NAME under real mpirun at every rank count.

    Each file runs in its own folder and processes; the verdict is computed here, from
    the results, the message logs and Open MPI's own message counts. With several files,
    one that cannot be read is that student's zero; the others are still graded.

    \b
    pimpi exercises check bcast_binomial bcast_binomial.py -n 1,2,3,4,5,8
    pimpi exercises check allreduce_ring class/*.py -q --json class.json --csv class.csv --report class.html
    """
    from pimpi.collectives.exercises import check, get_exercise, report
    from pimpi.mpi import under_mpirun

    if under_mpirun():
        raise click.UsageError("run `pimpi exercises check` directly, not under mpirun: "
                               "it starts its own mpirun for each rank count")
    several = len(set(files)) > 1
    names = _read_names(names_path) if names_path else None
    with library_errors():
        size_list = list(dict.fromkeys(sizes or get_exercise(name).sizes))
        if not several:
            records = check.grade([(name, files[0])], size_list, timeout, jobs=jobs, strict=True)
        else:
            records = check.grade([(name, path) for path in files], size_list, timeout, jobs=jobs, strict=False)
    if not quiet:
        for path in dict.fromkeys(files):
            for ranks in size_list:
                mine = [r for r in records if r.file == path and r.ranks == ranks]
                passed = sum(r.status == "PASS" for r in mine)
                click.echo(f"{path + ': ' if several else ''}{ranks} rank{'s' if ranks > 1 else ''}: "
                           f"{passed} of {len(mine)} cases passed")
    for line in report.collapsed_lines(records, with_file=several):
        click.echo(line)
    file_list = list(files)
    unwritten = _write_results(records, file_list, json_path, csv_path, report_path, names)
    for item in report.summary(records, file_list):
        others = ", ".join(f"{n} {status}" for status, n in item["statuses"].items() if status != "PASS")
        label = f"{item['file']}: {name}" if several else name
        click.echo(f"{label}: {item['passed']} of {item['total']} cases passed"
                   + (f" ({others})" if others else ""))
    for line in unwritten:  # after the verdicts, which are all on screen: nothing graded is lost
        click.echo(f"Error: {line}", err=True)
    sys.exit(0 if all(rec.status == "PASS" for rec in records) and not unwritten else 1)


def _write_results(records: list, files: list[str], json_path: str | None, csv_path: str | None,
                   report_path: str | None, names: dict | None = None) -> list[str]:
    """Write each requested result file atomically; one line per file that could not be
    written (a full disk, a folder gone meanwhile), the others are written all the same."""
    from pimpi.collectives.exercises import report
    from pimpi.fileio import atomic_write

    wanted = [(json_path, lambda: report.summary_json(records, files, names)),
              (csv_path, lambda: report.summary_csv(records, files, names)),
              (report_path, lambda: report.summary_report(records, files, str(report_path).endswith(".md")))]
    problems = []
    for path, text in wanted:
        if not path:
            continue
        try:
            atomic_write(path, text())
        except OSError as exc:
            problems.append(f"cannot write {path}: {exc.strerror or exc}; the verdicts above are complete")
    return problems
