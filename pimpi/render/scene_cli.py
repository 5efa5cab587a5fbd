"""`pimpi render scene`: built-in scenes rendered across ranks."""

from __future__ import annotations

import os
import re
import sys
import tempfile
from pathlib import Path
from typing import Any

import click

from pimpi.cliutil import env_rank, fail, fail_together
from pimpi.render.job import SCHEDULES, check_tiles, frame_name, render_frames
from pimpi.render.scenes import SCENES, get_scene

__all__ = ["scene", "parse_tiles", "check_out_dir"]

_TILES = re.compile(r"^\s*(\d+)\s*[xX]\s*(\d+)\s*$")


def parse_tiles(text: str) -> tuple[int, int]:
    """'2x3' -> (2, 3); ValueError naming the text otherwise."""
    match = _TILES.match(text or "")
    if not match:
        raise ValueError(f"--tiles {text!r}: expected ROWSxCOLS, e.g. 2x3")
    rows, cols = int(match.group(1)), int(match.group(2))
    if rows < 1 or cols < 1:
        raise ValueError(f"--tiles {text!r}: rows and columns must be at least 1")
    return rows, cols


def check_out_dir(path: str) -> None:
    """ValueError unless `path` is (or can become) a writable folder; writes nothing.

    Writability is tried for real (a probe file created and removed at once), because
    permission bits lie for root and on read-only mounts.
    """
    target = Path(path)
    if target.exists() and not target.is_dir():
        raise ValueError(f"--out {path!r} is a file, not a folder")
    probe = target
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if not probe.is_dir():
        raise ValueError(f"--out {path!r}: {str(probe)!r} is a file, not a folder")
    try:
        fd, name = tempfile.mkstemp(prefix=".pimpi-probe-", dir=probe)
    except OSError as exc:
        raise ValueError(f"--out {path!r} is not writable ({exc.strerror or exc})") from None
    os.close(fd)
    os.unlink(name)


def _check_file_option(option: str, path: str | None, suffix: str | None = None) -> None:
    if path is None:
        return
    target = Path(path)
    if target.is_dir():
        raise ValueError(f"{option} {path!r} is a folder, not a file")
    if suffix is not None and target.suffix.lower() != suffix:
        raise ValueError(f"{option} {path!r} must end in {suffix}")
    if target.parent.exists() and not target.parent.is_dir():
        raise ValueError(f"{option} {path!r}: {str(target.parent)!r} is not a folder")


def _validate(name: str, frames: int, width: int, height: int, tiles: str | None,
              max_iter: int | None, retries: int, fps: float, schedule: str,
              video: str | None, stats: str | None, gantt: str | None) -> tuple[int, int]:
    """Every argument check that needs no file system and no MPI (identical on all ranks)."""
    spec = get_scene(name)
    if frames < 1:
        raise ValueError(f"--frames must be at least 1, got {frames}")
    if width < 1:
        raise ValueError(f"--width must be at least 1, got {width}")
    if height < 1:
        raise ValueError(f"--height must be at least 1, got {height}")
    if max_iter is not None and max_iter < 1:
        raise ValueError(f"--max-iter must be at least 1, got {max_iter}")
    if max_iter is not None and spec.default_max_iter is None:
        raise ValueError(f"--max-iter does not apply to scene {name!r}")
    if retries < 0:
        raise ValueError(f"--retries must be at least 0, got {retries}")
    if not fps > 0:
        raise ValueError(f"--fps must be positive, got {fps}")
    tile_shape = (1, 1)
    if tiles is not None:
        tile_shape = parse_tiles(tiles)
        check_tiles(tile_shape, width, height)
        if tile_shape != (1, 1) and schedule != "dynamic":
            raise ValueError(f"--tiles {tiles} needs --schedule dynamic, not {schedule!r}")
    _check_file_option("--video", video)
    _check_file_option("--stats", stats, ".json")
    _check_file_option("--gantt", gantt, ".png")
    return tile_shape


def _encode(out: str, n_frames: int, video: str, fps: float) -> None:
    """Frames to video with the ffmpeg helpers of pimpi.render.ffmpeg (even-size padding)."""
    from pimpi.render.ffmpeg import frames_to_video

    # the job's own frames only: an older, longer job may have left more in the folder
    files = [os.path.join(out, frame_name(f, n_frames)) for f in range(n_frames)]
    frames_to_video(files, video, fps=fps)


_HELP = "Render a built-in SCENE across all ranks, resumably.\n\n\b\nScenes:\n" + "\n".join(
    f"  {key:<11} {value.summary}" for key, value in SCENES.items()
)


@click.command(help=_HELP)
@click.argument("name", metavar="SCENE")
@click.option("--frames", "-f", type=int, default=24, show_default=True, help="frames in the animation")
@click.option("--width", "-W", type=int, default=640, show_default=True, help="pixels")
@click.option("--height", "-H", type=int, default=360, show_default=True, help="pixels")
@click.option("--out", "-o", "out", default="frames", show_default=True,
              help="folder for frame_00000.png ... (written by rank 0)")
@click.option("--schedule", type=click.Choice(SCHEDULES), default="dynamic", show_default=True,
              help="dynamic: task pull; static: interleaved rows (Scatterv/Gatherv); block: contiguous frames")
@click.option("--tiles", default=None, metavar="RxC", help="split each frame into R x C tiles (dynamic)")
@click.option("--max-iter", type=int, default=None,
              help="iterations (fractals; the mandelbrot zoom raises it with depth)")
@click.option("--retries", type=int, default=1, show_default=True, help="re-run a failed unit on another rank")
@click.option("--force", is_flag=True, help="start over: ignore frames already finished")
@click.option("--video", default=None, metavar="FILE.mp4", help="encode the frames with ffmpeg afterwards")
@click.option("--fps", type=float, default=24.0, show_default=True, help="video frame rate")
@click.option("--stats", default=None, metavar="FILE.json", help="write per-rank stats as JSON")
@click.option("--gantt", default=None, metavar="FILE.png", help="draw a per-rank timeline")
@click.option("--progress", "progress_mode", type=click.Choice(["auto", "bar", "lines"]), default="auto",
              show_default=True, help="bar: redraw one line; lines: a line every few seconds; "
              "auto: bar when stderr (or PIMPI_TTY=1) says terminal")
@click.option("--quiet", "-q", is_flag=True, help="no progress and no summary")
def scene(name: str, frames: int, width: int, height: int, out: str, schedule: str,
          tiles: str | None, max_iter: int | None, retries: int, force: bool, video: str | None,
          fps: float, stats: str | None, gantt: str | None, progress_mode: str,
          quiet: bool) -> None:
    """Render a built-in SCENE across all ranks, resumably (see _HELP)."""
    from pimpi.mpi import under_mpirun, world

    rank = env_rank()
    try:
        tile_shape = _validate(name, frames, width, height, tiles, max_iter, retries, fps,
                               schedule, video, stats, gantt)
    except ValueError as exc:
        fail_together(rank, str(exc), usage=True)
    if not under_mpirun():
        try:
            check_out_dir(out)
        except ValueError as exc:
            fail(rank, str(exc), usage=True)
    comm = world()
    rank = comm.rank
    if under_mpirun():
        verdict = None
        if rank == 0:
            try:
                check_out_dir(out)
            except ValueError as exc:
                verdict = str(exc)
        verdict = comm.bcast(verdict, root=0)
        if verdict:
            fail_together(rank, verdict, usage=True)

    progress = None
    if rank == 0 and not quiet:
        from pimpi.render.progress import Progress

        tty = None if progress_mode == "auto" else progress_mode == "bar"
        progress = Progress(frames, label=f"{name} ({comm.size} ranks, {schedule})", tty=tty)
    try:
        report = render_frames(comm, name, frames, width, height, schedule=schedule, out=out,
                               tiles=tile_shape, max_iter=max_iter, force=force, retries=retries,
                               progress=progress)
    except ValueError as exc:
        fail(rank, str(exc), usage=True)
    except (RuntimeError, OSError) as exc:
        fail(rank, f"render failed: {exc}", usage=False)
    finally:
        if progress is not None:
            progress.close()
    if rank != 0:
        return
    _finish(report, out, frames, video, fps, stats, gantt, quiet)


def _finish(report: Any, out: str, frames: int, video: str | None, fps: float,
            stats: str | None, gantt: str | None, quiet: bool) -> None:
    """Rank 0 after rendering: summary, stats, Gantt chart, video; failures exit 1."""
    from pimpi.render.report import summary_lines, write_gantt, write_stats

    if not quiet:
        for line in summary_lines(report):
            click.echo(line)
    try:
        if stats:
            write_stats(stats, report)
        if gantt:
            write_gantt(gantt, report)
    except OSError as exc:
        raise click.ClickException(f"cannot write report: {exc}") from None
    if report.failed:
        keys = sorted(report.failed)
        first = keys[0]
        raise click.ClickException(
            f"{len(keys)} unit(s) failed for good, e.g. {first}: {report.failed[first]}; "
            "rerun to retry only what is missing"
        )
    if video:
        try:
            _encode(out, frames, video, fps)
        except (ValueError, RuntimeError, OSError) as exc:
            raise click.ClickException(f"video: {exc}") from None
        if not quiet:
            click.echo(f"video: {video}")
    if not quiet:
        print(f"frames: {out}/", file=sys.stdout)


