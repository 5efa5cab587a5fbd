"""Non-MPI baselines for render benchmarks: the same frames with multiprocessing.Pool.

    python -m pimpi.render.baseline mandelbrot 60 384 216 --processes 2

`pool_render` is what `pimpi bench scaling` compares MPI schedules against: same
`render_frame`, same frames, longest-expected first, one frame per task, pixels returned
to the parent (as the MPI run returns them to rank 0), nothing written.
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
import time
from typing import Sequence

import numpy as np

from pimpi.render.scenes import frame_cost, render_frame

__all__ = ["pool_render", "serial_render", "main"]


def _one(args: tuple) -> tuple[int, np.ndarray]:
    scene, frame, n_frames, width, height, max_iter = args
    return frame, render_frame(scene, frame, n_frames, width, height, max_iter=max_iter)


def _warm(scene: str, max_iter: int | None) -> None:
    render_frame(scene, 0, 1, 4, 4, max_iter=max_iter)


def pool_render(scene: str, n_frames: int, width: int, height: int, processes: int,
                max_iter: int | None = None) -> float:
    """Seconds to render every frame with a Pool of `processes` (workers warmed up first)."""
    order = sorted(range(n_frames), key=lambda f: -frame_cost(scene, f, n_frames, max_iter))
    jobs = [(scene, f, n_frames, width, height, max_iter) for f in order]
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(processes, initializer=_warm, initargs=(scene, max_iter)) as pool:
        pool.map(_warm_barrier, range(processes))  # every worker up and warm before timing
        start = time.perf_counter()
        for _ in pool.imap_unordered(_one, jobs, chunksize=1):
            pass
        return time.perf_counter() - start


def _warm_barrier(_: int) -> None:
    time.sleep(0.05)


def serial_render(scene: str, n_frames: int, width: int, height: int,
                  max_iter: int | None = None) -> float:
    """Seconds to render every frame in this process (warmed up first)."""
    _warm(scene, max_iter)
    start = time.perf_counter()
    for f in range(n_frames):
        render_frame(scene, f, n_frames, width, height, max_iter=max_iter)
    return time.perf_counter() - start


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pimpi.render.baseline", description=__doc__.splitlines()[0])
    parser.add_argument("scene")
    parser.add_argument("frames", type=int)
    parser.add_argument("width", type=int)
    parser.add_argument("height", type=int)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--max-iter", type=int, default=None)
    args = parser.parse_args(argv)
    seconds = pool_render(args.scene, args.frames, args.width, args.height, args.processes, args.max_iter)
    fps = args.frames / seconds
    print(f"pool({args.processes}): {seconds:.2f} s, {fps:.2f} frames/s, "
          f"{fps * args.width * args.height / 1e6:.3f} Mpixel/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
