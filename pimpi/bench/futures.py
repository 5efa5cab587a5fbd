"""`bench scaling --workload futures`: the same frames through pimpi.futures and ProcessPoolExecutor.

Each task renders one mandelbrot frame and returns its pixels, so the pickled result's
trip back is part of what is measured. Also measured: tiny tasks per second, the
per-task overhead that decides when a cluster executor pays.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from concurrent.futures import Executor, ProcessPoolExecutor
from pathlib import Path
from typing import Any, Callable, Sequence

__all__ = ["futures_scaling", "frame_task", "timed_maps", "TINY_TASKS"]

SCENE = "mandelbrot"
TINY_TASKS = 2000


def frame_task(index: int, frames: int, width: int, height: int) -> Any:
    """One frame's pixels (what travels back pickled)."""
    from pimpi.render.scenes import render_frame

    return render_frame(SCENE, index, frames, width, height)


def _timed_frame(index: int, frames: int, width: int, height: int) -> tuple[float, Any]:
    """(CPU seconds this process spent, pixels): the CPU share shows a busy machine."""
    start = time.process_time()
    pixels = frame_task(index, frames, width, height)
    return time.process_time() - start, pixels


def _tiny(x: int) -> int:
    return x


def _warm(_: int) -> None:
    """A tiny frame (imports, JIT), then a pause so that every worker gets one of these."""
    frame_task(0, 1, 8, 8)
    time.sleep(0.2)


def timed_maps(executor: Executor, workers: int, frames: int, width: int, height: int) -> dict[str, float]:
    """Seconds for all frames (after every worker rendered a tiny frame), and tiny tasks/s."""
    list(executor.map(_warm, range(2 * workers)))
    start = time.perf_counter()
    done = list(executor.map(_timed_frame, range(frames), [frames] * frames, [width] * frames, [height] * frames))
    seconds = time.perf_counter() - start
    cpu = sum(c for c, _ in done)
    start = time.perf_counter()
    list(executor.map(_tiny, range(TINY_TASKS)))
    tiny = TINY_TASKS / (time.perf_counter() - start)
    return {"seconds": seconds, "tiny_tasks_per_s": tiny, "cpu_share": cpu / (workers * seconds)}


def _launch(workers: int, frames: int, width: int, height: int, hostfile: str | None,
            timeout: float | None) -> dict[str, Any]:
    """One job of workers + 1 ranks (rank 0 runs the map) through mpirun; its measurements."""
    from pimpi.cluster import launch

    mpirun = launch.find_mpirun()
    with tempfile.TemporaryDirectory(prefix="pimpi-futures-bench-") as tmp:
        out = Path(tmp) / "job.json"
        spec = launch.Launch(nprocs=workers + 1, hostfile=hostfile, timeout=timeout,
                             target=["-m", "pimpi.futures", "-m", "pimpi.bench.futures", str(frames),
                                     str(width), str(height), str(out)])
        cmd = launch.build_command(spec, mpirun, launch.detect_flavor(mpirun))
        start = time.perf_counter()
        code = launch.run_command(cmd, timeout=timeout)
        wall = time.perf_counter() - start
        if code != 0 or not out.exists():
            raise RuntimeError(f"futures job with {workers} workers failed (exit {code}): {' '.join(cmd)}")
        doc = json.loads(out.read_text())
    doc["wall_seconds"] = wall
    return doc


def futures_scaling(ranks: Sequence[int], *, frames: int, width: int, height: int, repeats: int,
                    processes: int, hostfile: str | None, timeout: float | None, slots: int,
                    say: Callable[[str], None]) -> dict[str, Any]:
    """The `scaling` result for the futures workload: ranks are workers (each job has one
    more process, rank 0, which runs the map), Pool is ProcessPoolExecutor(processes)."""
    from pimpi.bench import baseline
    from pimpi.bench.speedup import analyse
    from pimpi.bench.timing import summary

    serial: list[float] = []
    pool: list[float] = []
    pool_tiny: list[float] = []
    pool_cpu: list[float] = []
    seconds: dict[int, list[float]] = {n: [] for n in ranks}
    runs: dict[int, list[dict[str, Any]]] = {n: [] for n in ranks}
    for rep in range(1, repeats + 1):
        serial.append(baseline.serial_frames(SCENE, frames, width, height)["seconds"])
        with ProcessPoolExecutor(processes) as executor:
            local = timed_maps(executor, processes, frames, width, height)
        pool.append(local["seconds"])
        pool_tiny.append(local["tiny_tasks_per_s"])
        pool_cpu.append(local["cpu_share"])
        say(f"repeat {rep}/{repeats}: serial {serial[-1]:.2f} s, ProcessPoolExecutor({processes}) {pool[-1]:.2f} s")
        for n in ranks:
            runs[n].append(_launch(n, frames, width, height, hostfile, timeout))
            seconds[n].append(runs[n][-1]["seconds"])
            say(f"repeat {rep}/{repeats}: pimpi.futures, {n} workers {seconds[n][-1]:.2f} s")
    result = analyse(ranks, seconds, serial=serial, pool=pool, pool_processes=processes,
                     frames=frames, pixels=width * height, slots=slots)
    for row in result["rows"]:
        docs = runs[row["ranks"]]
        row["wall_seconds"] = summary([d["wall_seconds"] for d in docs])
        row["tiny_tasks_per_s"] = summary([d["tiny_tasks_per_s"] for d in docs])
        row["imbalance"] = None
        row["cpu_share"] = summary([d["cpu_share"] for d in docs])
    result["baselines"]["pool"]["tiny_tasks_per_s"] = summary(pool_tiny)
    result["baselines"]["pool"]["cpu_share"] = summary(pool_cpu)
    result.update({"workload": "futures", "frames": frames, "width": width, "height": height,
                   "schedule": "pimpi.futures map vs ProcessPoolExecutor (ranks = workers)",
                   "repeats": repeats, "slots": slots, "frame_bytes": width * height * 3,
                   "timing": "seconds of executor.map inside the job, workers warmed up (see wall_seconds)"})
    return result


def format_tiny(result: dict[str, Any]) -> str:
    """Two lines: ProcessPoolExecutor's CPU share, and tiny tasks per second through each
    executor (the per-task overhead)."""
    pool_cpu = result["baselines"]["pool"].get("cpu_share")
    text = f"ProcessPoolExecutor cpu {pool_cpu['median']:.0%}\n" if pool_cpu else ""
    parts = [f"ProcessPoolExecutor {result['baselines']['pool']['tiny_tasks_per_s']['median']:.0f}/s"]
    parts += [f"{r['ranks']} workers {r['tiny_tasks_per_s']['median']:.0f}/s" for r in result["rows"]]
    return text + f"tiny tasks (return x, {TINY_TASKS} of them, chunksize 1): " + ", ".join(parts) + "\n"


def _job(argv: list[str]) -> None:
    """Inside the job (rank 0 under -m pimpi.futures): time the maps, write JSON atomically."""
    from pimpi.fileio import atomic_write
    from pimpi.futures import ClusterExecutor

    parser = argparse.ArgumentParser(prog="pimpi.bench.futures")
    for name in ("frames", "width", "height"):
        parser.add_argument(name, type=int)
    parser.add_argument("out")
    args = parser.parse_args(argv)
    with ClusterExecutor() as executor:
        doc = timed_maps(executor, executor.num_workers, args.frames, args.width, args.height)
        doc["workers"] = executor.num_workers
    atomic_write(args.out, json.dumps(doc))


if __name__ == "__main__":
    _job(sys.argv[1:])
