"""`pimpi bench`: benchmarks that write versioned JSON."""

from __future__ import annotations

import os
from typing import Any

import click

from pimpi.cliutil import (MAX_BYTES, MAX_FRAMES, MAX_RANKS, MAX_SECONDS, MAX_SIDE, MAX_THREADS, Bounded, Float, Int,
                           IntList, OutPath, check_memory_together, choice, env_rank, fail, json_opt,
                           library_errors, parse_list, parse_sizes)
from pimpi.render.names import SCENE_SUMMARIES, SCHEDULES

__all__ = ["bench"]


# Message sizes in bytes, e.g. 1:16M or 1K,64K: each at most 1 GiB (and so at most 31 of them).
_SIZES = Bounded(1, MAX_BYTES, parse_sizes, "list of sizes")
_REPEATS = Int(1, 1000)
_LOOPS = Int(1, 1_000_000)
_SKIP = Int(0, 1_000_000)


def _list(kind: type, empty_ok: bool = False):
    def convert(ctx: click.Context, param: click.Parameter, value: str | None) -> list | None:
        if value is None:
            return None
        if empty_ok and not value.strip():
            return []
        try:
            return parse_list(value, kind)
        except ValueError as exc:
            raise click.BadParameter(str(exc)) from None

    return convert


def _ops(ctx: click.Context, param: click.Parameter, value: str) -> list[str]:
    """Collective names, or 'all' for every collective pimpi implements."""
    if value.strip() == "all":
        from pimpi.bench.calls import OPS

        return list(OPS)
    return _list(str)(ctx, param, value)


# Buffers of the largest size one rank holds at once (send, receive, and an algorithm's
# temporaries), for the benchmarks that allocate them: checked against MemAvailable first.
_BUFFERS_PER_RANK = {"collectives": 4, "tune": 4, "pingpong": 2, "pingmatrix": 2}


def _format_size(nbytes: int) -> str:
    return f"{nbytes >> 20}M" if nbytes >= 1 << 20 else str(nbytes)


def _run(name: str, json_path: str | None, **options: Any) -> dict[str, Any]:
    """Run a registered benchmark; bad input -> exit 2, failure while running -> exit 1."""
    from pimpi.bench import registry

    if json_path and not os.path.isdir(os.path.dirname(os.path.abspath(json_path))):
        fail(env_rank(), f"folder for --json does not exist: {os.path.dirname(json_path)!r}", usage=True)
    if name in _BUFFERS_PER_RANK and options.get("sizes"):
        check_memory_together(f"--sizes {_format_size(max(options['sizes']))}",
                              _BUFFERS_PER_RANK[name] * max(options["sizes"]))
    with library_errors(env_rank(), runtime=(RuntimeError, OSError)):
        return registry.run(name, json_path=json_path, **options)


@click.group()
def bench() -> None:
    """Measure the cluster honestly (results as versioned JSON).

    \b
    pimpi bench scaling --workload mandelbrot --ranks 1,2,4 --plot scaling.png
    pimpi run -n 4 -- bench collectives --ops allreduce,bcast --sizes 1:4M
    pimpi run -n 2 -- bench pingpong --json pingpong.json
    pimpi bench predict --profile pi4 --nodes 4,8,16
    """


_WORKLOAD = choice(SCENE_SUMMARIES, "cmd")
_SCHEDULE = choice(SCHEDULES)


@bench.command()
@click.option("--workload", type=click.Choice([*_WORKLOAD.choices, "futures"]), default="mandelbrot",
              show_default=True, help="futures: the frames through pimpi.futures vs ProcessPoolExecutor.")
@click.option("--template", default=None,
              help="For --workload cmd: the renderer command, writing into {out}, e.g. 'povray +O{out}/f{frame}.png'.")
@click.option("--expect", default=None, help="For --workload cmd: the file each frame writes, e.g. 'f{frame}.png'.")
@click.option("--ranks", default="1,2,4", show_default=True, type=IntList(1, MAX_RANKS), help="Rank counts.")
@click.option("--hostfile", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Run the MPI jobs on the cluster in this hostfile (baselines stay on this machine).")
@click.option("--frames", type=Int(1, MAX_FRAMES), default=16, show_default=True)
@click.option("--width", type=Int(1, MAX_SIDE), default=320, show_default=True)
@click.option("--height", type=Int(1, MAX_SIDE), default=240, show_default=True)
@click.option("--schedule", type=_SCHEDULE, default="dynamic", show_default=True)
@click.option("--repeats", type=_REPEATS, default=3, show_default=True)
@click.option("--pool-processes", type=Int(1, MAX_THREADS), default=None,
              help="Pool size for the one-machine baseline (default: all local cores).")
@click.option("--timeout", type=Float(1, MAX_SECONDS), default=600, show_default=True,
              help="Seconds allowed per mpirun job.")
@click.option("--plot", type=OutPath([".png"]), default=None, help="Draw speedup/efficiency PNG.")
@click.option("--slots", type=Int(1, MAX_RANKS), default=None,
              help="Cores the job really has (default: hostfile slots, else local cores).")
@json_opt
def scaling(json_path, **options) -> None:
    """Render at each rank count through mpirun, beside Pool and serial on this machine."""
    _run("scaling", json_path, log=lambda line: click.echo(f"scaling: {line}", err=True), **options)


@bench.command("render-job", hidden=True)
@click.option("--workload", type=_WORKLOAD, required=True)
@click.option("--template", default=None)
@click.option("--expect", default=None)
@click.option("--frames", type=Int(1, MAX_FRAMES), required=True)
@click.option("--width", type=Int(1, MAX_SIDE), required=True)
@click.option("--height", type=Int(1, MAX_SIDE), required=True)
@click.option("--schedule", type=_SCHEDULE, default="dynamic")
@click.option("--quiet", is_flag=True)
@json_opt
def render_job(json_path, quiet, **options) -> None:
    """One timed distributed render (what `bench scaling` launches)."""
    _run("render-job", json_path, quiet=quiet, **options)


@bench.command()
@click.option("--ops", default="allreduce,reduce,bcast", show_default=True, callback=_ops,
              help="Collectives, comma separated, or 'all'.")
@click.option("--algorithms", default=None, callback=_list(str), help="Only these pimpi algorithms.")
@click.option("--sizes", default="1:1M", show_default=True, type=_SIZES, help="e.g. 1:16M or 1K,64K.")
@click.option("--repeats", type=_REPEATS, default=3, show_default=True)
@click.option("--skip", type=_SKIP, default=10, show_default=True)
@click.option("--loop", type=_LOOPS, default=100, show_default=True)
@click.option("--check/--no-check", default=True, show_default=True,
              help="--no-check: time pimpi's trusted fast path (no agreement on arguments).")
@click.option("--check-cost", is_flag=True,
              help="Time each pimpi algorithm checked and unchecked, interleaved: checked/unchecked.")
@json_opt
def collectives(json_path, **options) -> None:
    """OSU-style latency: MPI's collective vs each pimpi algorithm (run under mpirun)."""
    _run("collectives", json_path, **options)


@bench.command()
@click.option("--sizes", default="1:4M", show_default=True, type=_SIZES)
@click.option("--pair", default="0,1", show_default=True, type=IntList(0, MAX_RANKS - 1, most=2), help="The two ranks.")
@click.option("--repeats", type=_REPEATS, default=3, show_default=True)
@click.option("--loops", type=_LOOPS, default=None, help="Timed round trips per size.")
@click.option("--skip", type=_SKIP, default=None, help="Warm-up round trips per size.")
@json_opt
def pingpong(json_path, pair, **options) -> None:
    """Latency and bandwidth between two ranks, with the Hockney α–β fit."""
    if len(pair) != 2:
        raise click.BadParameter(f"give two ranks, got {pair}", param_hint="--pair")
    _run("pingpong", json_path, pair=tuple(pair), **options)


@bench.command()
@click.option("--sizes", default="8,1K,64K,1M", show_default=True, type=_SIZES)
@click.option("--loops", type=_LOOPS, default=None)
@click.option("--skip", type=_SKIP, default=None)
@click.option("--factor", type=Float(1, 1000, lo_open=True), default=3.0, show_default=True,
              help="Flag links this many times slower than the median.")
@json_opt
def pingmatrix(json_path, **options) -> None:
    """Ping-pong every pair of nodes; flag slow links."""
    _run("pingmatrix", json_path, **options)


@bench.command()
@click.option("--ops", default="all", show_default=True, callback=_ops,
              help="Collectives, comma separated, or 'all'.")
@click.option("--sizes", default="4:1M", show_default=True, type=_SIZES)
@click.option("--repeats", type=_REPEATS, default=3, show_default=True)
@click.option("--skip", type=_SKIP, default=5, show_default=True)
@click.option("--loop", type=_LOOPS, default=50, show_default=True)
@click.option("--out", type=OutPath([".json"]), default=None,
              help="Table to write (default: $PIMPI_TUNING or ~/.config/pimpi/tuning.json).")
@json_opt
def tune(json_path, **options) -> None:
    """Time every algorithm at this size; write the decision table algorithm=None uses."""
    _run("tune", json_path, **options)


@bench.command()
@click.option("--profile", required=True, help="pi3, pi4, pi5, or a pingpong/pingmatrix JSON file.")
@click.option("--nodes", default="4,8,16", show_default=True, type=IntList(1, MAX_RANKS), help="Node counts to predict.")
@click.option("--cores-per-node", type=Int(1, MAX_THREADS), default=None,
              help="Ranks per node (default: the profile's cores, else 1).")
@click.option("--workload", type=choice(SCENE_SUMMARIES, "none"),
              default="mandelbrot", show_default=True)
@click.option("--frames", type=Int(1, MAX_FRAMES), default=16, show_default=True)
@click.option("--width", type=Int(1, MAX_SIDE), default=320, show_default=True)
@click.option("--height", type=Int(1, MAX_SIDE), default=240, show_default=True)
@click.option("--schedule", type=_SCHEDULE, default="dynamic", show_default=True)
@click.option("--ops", default="allreduce,bcast", show_default=True, callback=_list(str, empty_ok=True),
              help="Collectives to predict ('' for none).")
@click.option("--sizes", default="64K,256K,1M,4M", show_default=True, type=_SIZES)
@click.option("--local-speed", "speed", type=Float(0, 1000, lo_open=True), default=None,
              help="This machine's core speed relative to a Pi 4 core (default: known Pi, else 3).")
@click.option("--tiles", type=Int(1, 4096), default=1, show_default=True,
              help="Units of work per frame (as render's tiles R x C = this number).")
@click.option("--network", type=click.Choice(["switched", "shared"]), default="switched", show_default=True,
              help="switched: a link per node (a real cluster); shared: one medium (a virtual cluster).")
@json_opt
def predict(json_path, workload, **options) -> None:
    """Predict render speedup and collective times for a cluster that isn't here."""
    _run("predict", json_path, workload=None if workload == "none" else workload, **options)


@bench.command()
@click.argument("predicted", type=click.Path(exists=True, dir_okay=False))
@click.argument("measured", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--tolerance", type=Float(0, 100, lo_open=True), default=0.25, show_default=True)
@json_opt
def compare(json_path, predicted, measured, tolerance) -> None:
    """Check a `predict` result against `collectives`/`scaling` results (within a tolerance)."""
    _run("compare", json_path, predicted=predicted, measured=list(measured), tolerance=tolerance)


@bench.command()
@click.argument("previous", type=click.Path(exists=True, dir_okay=False))
@click.argument("now", type=click.Path(exists=True, dir_okay=False))
@click.option("--tolerance", type=Float(0, 0.99), default=0.1, show_default=True,
              help="Relative change of a ratio still called 'same'.")
@json_opt
def versus(json_path, previous, now, tolerance) -> None:
    """This run's `scaling`/`collectives` file against the previous run's: better, same or worse."""
    _run("versus", json_path, previous=previous, now=now, tolerance=tolerance)


@bench.command()
@click.option("--ops", default="allreduce,bcast", show_default=True, callback=_list(str))
@click.option("--sizes", default="64K,1M", show_default=True, type=_SIZES)
@click.option("--quiet", is_flag=True)
@json_opt
def traffic(json_path, quiet, **options) -> None:
    """Trace each algorithm once: rounds, critical-path and total messages/bytes (under mpirun)."""
    _run("traffic", json_path, quiet=quiet, **options)
