"""`bench scaling`: the render workload at each rank count through mpirun, beside Pool and serial."""

from __future__ import annotations

import os
from typing import Any, Callable, Sequence

from pimpi.bench import baseline
from pimpi.bench.jobs import launch_job
from pimpi.bench.benchmark import benchmark
from pimpi.bench.speedup import analyse
from pimpi.bench.text import fmt_num, fmt_seconds, table
from pimpi.bench.timing import summary
from pimpi.render.scenes import SCENES

__all__ = ["scaling", "analyse", "cpu_share", "slots_available", "format_scaling"]

WORKLOADS = (*SCENES, "cmd", "futures")  # the built-in scenes, any renderer through `render cmd`, or pimpi.futures


def slots_available(hostfile: str | None) -> int:
    """Cores the job may use without oversubscribing: the hostfile's slots, or local cores."""
    if not hostfile:
        return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    from pimpi.cluster.hostfile import read_hostfile

    return sum(entry.slots or 1 for entry in read_hostfile(hostfile))


def cpu_share(job: dict[str, Any]) -> float | None:
    """CPU time the ranks got / (ranks × job seconds): near 1 when each rank had a core.

    Well below 1 means the machine was busy with other work (or ranks shared cores), so
    the speedup measures contention, not the program.
    """
    per_rank = (job.get("report") or {}).get("per_rank") or []
    cpu = [r.get("cpu") for r in per_rank]
    if not cpu or any(c is None for c in cpu) or job.get("seconds", 0) <= 0:
        return None
    return sum(cpu) / (len(cpu) * job["seconds"])


def format_scaling(result: dict[str, Any]) -> str:
    """The scaling table, the baselines and Amdahl's serial fraction."""
    base = result["baselines"]
    head = (f"{result['workload']}: {result['frames']} frames {result['width']}x{result['height']},"
            f" {result['schedule']} schedule, median of {result['repeats']}")
    rows = [["serial", "-", fmt_seconds(base["serial"]["seconds"]["median"]),
             fmt_num(base["serial"]["frames_per_s"]), "-", "-", "-"],
            [f"Pool({base['pool']['processes']})", "-", fmt_seconds(base["pool"]["seconds"]["median"]),
             fmt_num(base["pool"]["frames_per_s"]), "-", "-", "1.00"]]
    for r in result["rows"]:
        imb = r.get("imbalance")
        share = r.get("cpu_share")
        rows.append([f"mpi{'*' if r['oversubscribed'] else ''}", r["ranks"],
                     fmt_seconds(r["seconds"]["median"]), fmt_num(r["frames_per_s"]),
                     fmt_num(r["speedup"]), fmt_num(r["efficiency"]), fmt_num(r["vs_pool"]),
                     fmt_num(imb["median"]) if imb else "-", f"{share['median']:.0%}" if share else "-"])
    for row in rows[:2]:
        row += ["-", "-"]
    text = table(["run", "ranks", "time", "frames/s", "speedup", "effic.", "vs Pool", "imbal.", "cpu"], rows, head)
    amdahl = result["amdahl"]
    fraction = amdahl["serial_fraction"]
    text += (f"speedup vs {result['speedup_base']}; * = more ranks than {result['slots']} cores;"
             " cpu = CPU time the ranks got / (ranks x time): well below 100% = a busy machine\n"
             f"Amdahl serial fraction: {fmt_num(fraction, 3) if fraction is not None else 'n/a (needs 2+ rank counts)'}"
             f" (fitted on ranks {amdahl['fitted_on']})\n")
    if result.get("workload") == "futures":
        from pimpi.bench.futures import format_tiny

        text += format_tiny(result)
    return text


@benchmark(text=format_scaling, mpi=False)
def scaling(_comm: Any, *, workload: str, ranks: Sequence[int], frames: int, width: int,
            height: int, repeats: int = 3, schedule: str = "dynamic",
            pool_processes: int | None = None, template: str | None = None, expect: str | None = None,
            hostfile: str | None = None, timeout: float | None = 600,
            plot: str | None = None, slots: int | None = None,
            log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Time the workload serially, on Pool and at every rank count, `repeats` times interleaved.

    `slots`: the cores the job really has (default: the hostfile's slots, else this
    machine's cores); a virtual cluster's nodes share this machine's cores. `log` gets one
    line per measurement (progress for people; the run takes minutes).
    """
    say = log or (lambda line: None)
    if workload not in WORKLOADS:
        raise ValueError(f"unknown workload {workload!r}; known: {', '.join(WORKLOADS)}")
    if workload == "cmd" and not (template and expect):
        raise ValueError("workload 'cmd' needs --template and --expect"
                         " (e.g. --template 'convert rose: {out}/f{frame}.png' --expect 'f{frame}.png')")
    if repeats < 1 or any(n < 1 for n in ranks):
        raise ValueError(f"need repeats >= 1 and ranks >= 1, got {repeats}, {list(ranks)}")
    slots = slots or slots_available(hostfile)
    processes = pool_processes or slots_available(None)
    if workload == "futures":  # the same frames through pimpi.futures and ProcessPoolExecutor
        from pimpi.bench.futures import futures_scaling

        result = futures_scaling(ranks, frames=frames, width=width, height=height, repeats=repeats,
                                 processes=processes, hostfile=hostfile, timeout=timeout, slots=slots, say=say)
        return _plotted(result, plot)
    job_args = ["--workload", workload, "--frames", str(frames), "--width", str(width),
                "--height", str(height), "--schedule", schedule]
    if workload == "cmd":
        job_args += ["--template", template, "--expect", expect]
    serial: list[float] = []
    pool: list[float] = []
    seconds: dict[int, list[float]] = {n: [] for n in ranks}
    jobs: dict[int, list[dict[str, Any]]] = {n: [] for n in ranks}
    frame_info: dict[str, Any] = {}
    for rep in range(1, repeats + 1):
        frame_info = baseline.serial_frames(workload, frames, width, height, template)
        serial.append(frame_info["seconds"])
        pool.append(baseline.pool_frames(workload, frames, width, height, processes, template))
        say(f"repeat {rep}/{repeats}: serial {fmt_seconds(serial[-1])}, Pool({processes}) {fmt_seconds(pool[-1])}")
        for n in ranks:
            doc = launch_job(n, "render-job", job_args, hostfile=hostfile, timeout=timeout)
            seconds[n].append(doc["results"]["seconds"])
            jobs[n].append(doc)
            say(f"repeat {rep}/{repeats}: {n} ranks {fmt_seconds(seconds[n][-1])}")
    result = analyse(ranks, seconds, serial=serial, pool=pool, pool_processes=processes,
                     frames=frames, pixels=width * height, slots=slots)
    for row in result["rows"]:
        runs = jobs[row["ranks"]]
        row["wall_seconds"] = summary([d["wall_seconds"] for d in runs])
        imbalance = [d["results"]["imbalance"] for d in runs if d["results"].get("imbalance")]
        row["imbalance"] = summary(imbalance) if imbalance else None
        shares = [x for x in (cpu_share(d["results"]) for d in runs) if x is not None]
        row["cpu_share"] = summary(shares) if shares else None
        row["job_machine"] = runs[-1]["machine"]
    result.update({"workload": workload, "frames": frames, "width": width, "height": height,
                   "schedule": schedule, "repeats": repeats, "slots": slots,
                   "frame_bytes": frame_info.get("frame_bytes"),
                   "timing": "in-job seconds between barriers (mpirun start-up excluded; see wall_seconds)"})
    return _plotted(result, plot)


def _plotted(result: dict[str, Any], plot: str | None) -> dict[str, Any]:
    """`result`, with its speedup/efficiency PNG drawn to `plot` when asked."""
    if plot:
        from pimpi.bench.plot import plot_scaling

        plot_scaling(result, plot)
        result["plot"] = plot
    return result
