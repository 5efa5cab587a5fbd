"""`render_frames`: one built-in scene rendered across ranks, resumable, with a report.

The library entry point behind `pimpi render scene` and `pimpi bench scaling`:

    report = render_frames(comm, "mandelbrot", 48, 640, 360, schedule="dynamic", out="out")

Schedules: `dynamic` (the task farm of `pimpi.tasks`; `tiles=(R, C)` splits each frame into
tiles as units, assembled on rank 0), `static` (interleaved rows, Scatterv/Gatherv) and
`block` (contiguous blocks of frames: the naive baseline). Whatever the schedule, rank
count or tiling, the PNGs are byte-identical. With `out`, rank 0 writes
`frame_00000.png`... atomically and records each in the journal; frames already recorded
and verified are skipped. With whole frames as units each rank encodes its own PNGs and
sends the bytes (rank 0 would otherwise compress every frame of the cluster, and PNG is
smaller on the wire). Without `out` nothing is written and raw pixels travel (benchmarks).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from pimpi.journal import Journal
from pimpi.fileio import atomic_write, stale_temps
from pimpi.jobstatus import job_status
from pimpi.render.png import encode_png, write_png
from pimpi.render.scenes import frame_cost, get_scene, numba_enabled, render_frame
from pimpi.tasks import ScheduleReport, Task, run_dynamic
from pimpi.render.names import SCHEDULES
from pimpi.render.static import run_static

__all__ = ["SCHEDULES", "RenderReport", "render_frames", "frame_name",
           "check_tiles", "check_arguments", "job_signature", "frame_memory"]



@dataclass
class RenderReport:
    """What a render did: the schedule's report plus frame counts and throughput."""

    scene: str
    n_frames: int
    width: int
    height: int
    schedule: str
    tiles: tuple[int, int]
    rendered: list[int]
    skipped: list[int]
    failed: dict[str, str]
    schedule_report: ScheduleReport
    numba: bool
    files: list[str] = field(default_factory=list)

    @property
    def wall(self) -> float:
        return self.schedule_report.wall

    @property
    def frames_per_second(self) -> float:
        return len(self.rendered) / self.wall if self.wall > 0 else 0.0

    @property
    def mpixels_per_second(self) -> float:
        return self.frames_per_second * self.width * self.height / 1e6

    @property
    def imbalance(self) -> float:
        return self.schedule_report.imbalance

    def to_dict(self) -> dict[str, Any]:
        """Plain data for --stats JSON."""
        rep = self.schedule_report
        return {
            "scene": self.scene,
            "frames": self.n_frames,
            "width": self.width,
            "height": self.height,
            "schedule": self.schedule,
            "tiles": list(self.tiles),
            "ranks": rep.size,
            "rank0_works": rep.rank0_works,
            "numba": self.numba,
            "rendered": len(self.rendered),
            "skipped": len(self.skipped),
            "failed": self.failed,
            "wall_seconds": rep.wall,
            "frames_per_second": self.frames_per_second,
            "mpixels_per_second": self.mpixels_per_second,
            "imbalance": rep.imbalance,
            "per_rank": [
                {"rank": r.rank, "units": r.units, "busy": r.busy, "idle": r.idle,
                 "cpu": r.cpu, "failures": r.failures, "blocked": r.blocked}
                for r in rep.ranks
            ],
            "events": [
                {"key": e.key, "rank": e.rank, "start": e.start, "end": e.end, "ok": e.ok,
                 "error": e.error}
                for e in rep.events
            ],
        }


def frame_name(frame: int, n_frames: int) -> str:
    """`frame_00007.png` (at least five digits, more for longer animations)."""
    digits = max(5, len(str(max(n_frames - 1, 0))))
    return f"frame_{frame:0{digits}d}.png"


def check_tiles(tiles: Sequence[int], width: int, height: int) -> tuple[int, int]:
    """(rows, cols) of tiles; ValueError unless 1 <= rows <= height and 1 <= cols <= width."""
    try:
        r, c = (int(t) for t in tiles)
    except (TypeError, ValueError):
        raise ValueError(f"tiles must be two integers (rows, cols), got {tiles!r}") from None
    if r < 1 or c < 1:
        raise ValueError(f"tiles must be at least 1x1, got {r}x{c}")
    if r > height or c > width:
        raise ValueError(f"tiles {r}x{c} do not fit a {width}x{height} frame")
    return r, c


def check_arguments(scene: str, frames: int, width: int, height: int, schedule: str = "dynamic",
                    tiles: Sequence[int] = (1, 1), max_iter: int | None = None,
                    retries: int = 0) -> tuple[Any, tuple[int, int]]:
    """The one check of a scene render's arguments (the CLI and `render_frames` both call
    it): ValueError naming the bad value, the same on every rank. -> (scene spec, tiles)."""
    spec = get_scene(scene)
    for option, value in (("--frames", frames), ("--width", width), ("--height", height)):
        if value < 1:
            raise ValueError(f"{option} must be at least 1, got {value}")
    if schedule not in SCHEDULES:
        raise ValueError(f"unknown schedule {schedule!r} (choose from {', '.join(SCHEDULES)})")
    if max_iter is not None and max_iter < 1:
        raise ValueError(f"--max-iter must be at least 1, got {max_iter}")
    if max_iter is not None and spec.default_max_iter is None:
        raise ValueError(f"--max-iter does not apply to scene {scene!r}")
    if retries < 0:
        raise ValueError(f"--retries must be at least 0, got {retries}")
    shape = check_tiles(tiles, width, height)
    if shape != (1, 1) and schedule != "dynamic":
        raise ValueError(f"--tiles {shape[0]}x{shape[1]} needs --schedule dynamic, not {schedule!r}")
    return spec, shape


# Bytes one pixel costs while it is rendered (a dozen float64 work arrays per pixel in the
# scenes) and while rank 0 holds, assembles and PNG-encodes a whole frame.
WORK_BYTES_PER_PIXEL = 160
FRAME_BYTES_PER_PIXEL = 16


def frame_memory(width: int, height: int, tiles: Sequence[int] = (1, 1)) -> tuple[int, int]:
    """Bytes (per rendering rank, and once for rank 0's whole frame) a render needs at most:
    what the CLI compares with the node's MemAvailable before any work."""
    unit = -(-width // tiles[1]) * -(-height // tiles[0])
    return unit * WORK_BYTES_PER_PIXEL, width * height * FRAME_BYTES_PER_PIXEL


def job_signature(scene: str, n_frames: int, width: int, height: int, max_iter: int | None) -> dict:
    """What makes frames of two runs interchangeable (not the schedule, tiling or ranks)."""
    return {"scene": scene, "frames": n_frames, "width": width, "height": height,
            "max_iter": max_iter, "format": "png-rgb8-up-z6"}


def _bounds(length: int, parts: int) -> list[tuple[int, int]]:
    edges = np.linspace(0, length, parts + 1).round().astype(int)
    return [(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:])]


def _clean_temps(out: Path) -> None:
    """Remove temp files a killed run left behind (ours only: those of `frame_*` files)."""
    for path in stale_temps(out, "frame_*"):
        path.unlink(missing_ok=True)


@dataclass
class _Writer:
    """Rank 0: frames (or their tiles) in, PNG files and journal entries out."""

    out: Path | None
    journal: Journal | None
    n_frames: int
    width: int
    height: int
    n_tiles: int
    partial: dict[int, tuple[np.ndarray, int]] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)
    rendered: list[int] = field(default_factory=list)
    status: Any = None

    def frame(self, frame: int, pixels: np.ndarray) -> None:
        """A whole frame: pixels (height, width, 3), or its PNG bytes as a 1-D uint8 array."""
        if self.out is not None:
            name = frame_name(frame, self.n_frames)
            if pixels.ndim == 1:
                atomic_write(self.out / name, pixels.tobytes())
            else:
                write_png(self.out / name, pixels)
            if self.journal is not None:
                self.journal.record(f"f{frame}", [name])
            self.files.append(name)
            if self.status is not None:
                self.status.output(name)
        self.rendered.append(frame)

    def tile(self, task: Task, pixels: np.ndarray, rank: int) -> None:
        frame, r0, r1, c0, c1 = task.data
        if self.n_tiles == 1:
            self.frame(frame, pixels)
            return
        image, have = self.partial.get(frame, (None, 0))
        if image is None:
            image = np.empty((self.height, self.width, 3), dtype=np.uint8)
        image[r0:r1, c0:c1] = pixels
        have += 1
        if have == self.n_tiles:
            self.partial.pop(frame, None)
            self.frame(frame, image)
        else:
            self.partial[frame] = (image, have)


def render_frames(
    comm: Any,
    scene: str,
    frames: int,
    width: int,
    height: int,
    schedule: str = "dynamic",
    out: str | os.PathLike | None = None,
    *,
    tiles: Sequence[int] = (1, 1),
    max_iter: int | None = None,
    force: bool = False,
    retries: int = 0,
    progress: Callable[[int, int], None] | None = None,
    target_seconds: float = 0.5,
) -> RenderReport:
    """Render frames 0..frames-1 of `scene` on every rank of `comm`; see the module docstring.

    Collective. Raises ValueError (on every rank, before any work) for bad arguments.
    Returns the same RenderReport on every rank.
    """
    spec, (tr, tc) = check_arguments(scene, frames, width, height, schedule, tiles, max_iter, retries)
    iters = max_iter if max_iter is not None else spec.default_max_iter

    out_dir = Path(out) if out is not None else None
    todo: list[int] = list(range(frames))
    skipped: list[int] = []
    journal = None
    if comm.rank == 0 and out_dir is not None:
        journal = Journal.open(out_dir, job_signature(scene, frames, width, height, iters), force=force)
        _clean_temps(out_dir)
        todo = [f for f in todo if not journal.done(f"f{f}")]
        skipped = sorted(set(range(frames)) - set(todo))
    if comm.size > 1:
        todo, skipped = comm.bcast((todo, skipped), root=0)
    writer = _Writer(out_dir, journal, frames, width, height, tr * tc)
    units = tr * tc if schedule == "dynamic" else 1  # the status file counts tiles when tiling
    with job_status(comm, out_dir, "render-scene", scene, total=len(todo) * units,
                    skipped=len(skipped) * units) as status:
        writer.status = status
        render_frame(scene, 0, 1, 4, 4, max_iter=iters)  # warm up (numba loads its kernel) untimed

        if progress is not None and comm.rank == 0:
            progress(0, len(todo))
        if schedule == "dynamic":
            tasks: list[Task] = []
            if comm.rank == 0:
                row_bounds, col_bounds = _bounds(height, tr), _bounds(width, tc)
                for f in todo:
                    cost = frame_cost(scene, f, frames, iters) / (tr * tc)
                    for ti, (r0, r1) in enumerate(row_bounds):
                        for tj, (c0, c1) in enumerate(col_bounds):
                            key = f"f{f}" if tr * tc == 1 else f"f{f}-t{ti}.{tj}"
                            tasks.append(Task(key, cost, (f, r0, r1, c0, c1)))

            encode_here = out_dir is not None and tr * tc == 1

            def work(task: Task) -> np.ndarray:
                f, r0, r1, c0, c1 = task.data
                pixels = render_frame(scene, f, frames, width, height, rows=slice(r0, r1),
                                      cols=slice(c0, c1), max_iter=iters)
                if encode_here:  # every rank compresses its own frames; rank 0 only writes
                    return np.frombuffer(encode_png(pixels), dtype=np.uint8)
                return pixels

            frame_progress = None
            if progress is not None:
                per = tr * tc
                frame_progress = lambda done, total: progress(done // per, total // per)  # noqa: E731
            rep = run_dynamic(comm, tasks, work, on_result=writer.tile, retries=retries,
                              progress=frame_progress, target_seconds=target_seconds, status=status)
            failed = rep.failed
        else:
            def render_rows(frame: int, rows: np.ndarray) -> np.ndarray:
                return render_frame(scene, frame, frames, width, height, rows=rows, max_iter=iters)

            partition = "interleave" if schedule == "static" else "block"
            static_progress = progress
            if status is not None:
                def static_progress(done: int, total: int) -> None:
                    status.progress(done)
                    if progress is not None:
                        progress(done, total)
            rep = run_static(comm, todo, width, height, render_rows, partition=partition,
                             on_frame=writer.frame, progress=static_progress)
            failed = {}
        if status is not None and failed:
            status.finish("failed", f"{len(failed)} of {len(todo) * units} units failed")
    rendered = comm.bcast(sorted(writer.rendered), root=0) if comm.size > 1 else sorted(writer.rendered)
    files = comm.bcast(writer.files, root=0) if comm.size > 1 else writer.files
    return RenderReport(scene, frames, width, height, schedule, (tr, tc), rendered, skipped,
                        failed, rep, numba_enabled(), files)
