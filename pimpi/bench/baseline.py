"""The one-machine baselines: the same frames serially, and with multiprocessing.Pool."""

from __future__ import annotations

import multiprocessing
import shlex
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["serial_frames", "pool_frames", "warm_up", "cmd_frame"]

# One frame of work: (workload, frame, n_frames, width, height, template or None).
Job = tuple[str, int, int, int, int, "str | None"]


def cmd_frame(template: str, frame: int) -> int:
    """Run a `render cmd` template for one frame in a fresh {out} folder; bytes it wrote."""
    from pimpi.procs import run_process
    from pimpi.render.cmd import Template

    parsed = Template.parse(shlex.split(template))
    with tempfile.TemporaryDirectory(prefix="pimpi-bench-cmd-") as out:
        for argv in parsed.commands([frame], out):
            done = run_process(argv, timeout=3600)
            if done.returncode != 0:
                raise RuntimeError(f"frame {frame}: {argv[0]} exited {done.returncode}: {done.tail}")
        return sum(p.stat().st_size for p in Path(out).rglob("*") if p.is_file())


def _render_one(job: Job) -> int:
    """Render one frame (in this process or a Pool worker); returns its size in bytes."""
    workload, index, count, width, height, template = job
    if workload == "cmd":
        if not template:
            raise ValueError("workload 'cmd' needs --template")
        return cmd_frame(template, index)
    from pimpi.render.scenes import render_frame

    return int(np.asarray(render_frame(workload, index, count, width, height)).nbytes)


def warm_up(workload: str) -> int:
    """Render a tiny frame so imports and any JIT compilation happen before timing."""
    return 0 if workload == "cmd" else _render_one((workload, 0, 1, 8, 8, None))


def serial_frames(workload: str, frames: int, width: int, height: int,
                  template: str | None = None) -> dict[str, Any]:
    """Render every frame in this process: total seconds, seconds per frame, bytes per frame."""
    warm_up(workload)
    per_frame = []
    nbytes = 0
    for index in range(frames):
        start = time.perf_counter()
        nbytes = _render_one((workload, index, frames, width, height, template))
        per_frame.append(time.perf_counter() - start)
    return {"seconds": sum(per_frame), "frame_seconds": per_frame, "frame_bytes": nbytes}


def pool_frames(workload: str, frames: int, width: int, height: int, processes: int,
                template: str | None = None) -> float:
    """Seconds for multiprocessing.Pool(processes) to render every frame (workers warmed first)."""
    if processes < 1:
        raise ValueError(f"Pool needs at least 1 process, got {processes}")
    jobs = [(workload, i, frames, width, height, template) for i in range(frames)]
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(processes) as pool:
        pool.map(warm_up, [workload] * processes, chunksize=1)
        start = time.perf_counter()
        pool.map(_render_one, jobs, chunksize=1)
        return time.perf_counter() - start
