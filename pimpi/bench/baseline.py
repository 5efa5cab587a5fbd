"""The one-machine baselines: the same frames serially, and with multiprocessing.Pool."""

from __future__ import annotations

import multiprocessing
import time
from typing import Any

import numpy as np

__all__ = ["serial_frames", "pool_frames", "warm_up"]


def _render_one(job: tuple[str, int, int, int, int]) -> int:
    """Render one frame in a Pool worker; returns its size in bytes (the image stays local)."""
    from pimpi.render.scenes import render_frame

    scene, index, count, width, height = job
    return int(np.asarray(render_frame(scene, index, count, width, height)).nbytes)


def warm_up(scene: str) -> int:
    """Render a tiny frame so imports and any JIT compilation happen before timing."""
    return _render_one((scene, 0, 1, 8, 8))


def serial_frames(scene: str, frames: int, width: int, height: int) -> dict[str, Any]:
    """Render every frame in this process: total seconds, seconds per frame, bytes per frame."""
    warm_up(scene)
    per_frame = []
    nbytes = 0
    for index in range(frames):
        start = time.perf_counter()
        nbytes = _render_one((scene, index, frames, width, height))
        per_frame.append(time.perf_counter() - start)
    return {"seconds": sum(per_frame), "frame_seconds": per_frame, "frame_bytes": nbytes}


def pool_frames(scene: str, frames: int, width: int, height: int, processes: int) -> float:
    """Seconds for multiprocessing.Pool(processes) to render every frame (workers warmed first)."""
    if processes < 1:
        raise ValueError(f"Pool needs at least 1 process, got {processes}")
    jobs = [(scene, i, frames, width, height) for i in range(frames)]
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(processes) as pool:
        pool.map(warm_up, [scene] * processes, chunksize=1)
        start = time.perf_counter()
        pool.map(_render_one, jobs, chunksize=1)
        return time.perf_counter() - start
