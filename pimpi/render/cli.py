"""`pimpi render`: the render commands (`scene`, `cmd`, `transcode`, `blender`), assembled in one group.

The click edge only: arguments are checked by the library (`job.check_arguments`,
`cmd.Template`, `transcode.check_job`) and its errors become one line through
`pimpi.cliutil`; shared options come from there too.
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path
from typing import Any, Callable

import click

from pimpi.cliutil import (MAX_FRAME_NUMBER, MAX_FRAMES, MAX_SIDE, MAX_THREADS, Bounded, Float, Int, OutPath, Seconds,
                           check_memory_together, choice, env_rank, fail_together, force_opt, library_errors, quiet_opt,
                           retries_opt, stats_opt, task_timeout_opt)
from pimpi.fileio import atomic_write
from pimpi.render.ffmpeg import X264_PRESETS
from pimpi.render.framespec import parse_frames
from pimpi.render.names import SCENE_SUMMARIES, SCHEDULES

__all__ = ["render", "scene", "cmd", "transcode", "blender", "parse_tiles"]


@click.group()
def render() -> None:
    """Render across the cluster (run under mpirun)."""


# -- pimpi render scene ------------------------------------------------------------------

MAX_TILES = 64       # rows or columns of tiles in a frame
MAX_ITER = 1_000_000  # fractal iterations per pixel (a deep zoom needs some 10^5)
MAX_FPS = 1000.0
VIDEO_SUFFIXES = (".mp4", ".mkv", ".mov", ".m4v", ".avi")  # containers of the H.264 video `--video` writes
TRANSCODE_SUFFIXES = (".mp4", ".mkv", ".mov", ".m4v", ".webm")
MAX_SEGMENT = 86400.0  # seconds of one transcode segment
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


def _validate(name: str, frames: int, width: int, height: int, tiles: tuple[int, int] | None,
              max_iter: int | None, retries: int, schedule: str) -> tuple[int, int]:
    """Every argument check that needs no file system and no MPI (identical on all ranks):
    the scene's own arguments through `job.check_arguments` (options and output paths are
    bounded and checked by their click types while parsing)."""
    from pimpi.render.job import check_arguments

    _spec, tile_shape = check_arguments(name, frames, width, height, schedule, tiles or (1, 1), max_iter, retries)
    return tile_shape


def _encode(out: str, n_frames: int, video: str, fps: float) -> None:
    """Frames to video with the ffmpeg helpers of pimpi.render.ffmpeg (even-size padding)."""
    from pimpi.render.ffmpeg import frames_to_video
    from pimpi.render.job import frame_name

    # the job's own frames only: an older, longer job may have left more in the folder
    files = [os.path.join(out, frame_name(f, n_frames)) for f in range(n_frames)]
    frames_to_video(files, video, fps=fps)


_HELP = "Render a built-in SCENE across all ranks, resumably.\n\n\b\nScenes:\n" + "\n".join(
    f"  {key:<11} {summary}" for key, summary in SCENE_SUMMARIES.items()
)


@click.command(help=_HELP)
@click.argument("name", metavar="SCENE")
@click.option("--frames", "-f", type=Int(1, MAX_FRAMES), default=24, show_default=True, help="frames in the animation")
@click.option("--width", "-W", type=Int(1, MAX_SIDE), default=640, show_default=True, help="pixels")
@click.option("--height", "-H", type=Int(1, MAX_SIDE), default=360, show_default=True, help="pixels")
@click.option("--out", "-o", "out", type=OutPath(folder=True), default="frames", show_default=True,
              help="folder for frame_00000.png ... (written by rank 0)")
@click.option("--schedule", type=choice(SCHEDULES), default="dynamic", show_default=True,
              help="dynamic: task pull; static: interleaved rows (Scatterv/Gatherv); block: contiguous frames")
@click.option("--tiles", type=Bounded(1, MAX_TILES, parse_tiles, "tile grid"),
              default=None, metavar="RxC", help="split each frame into R x C tiles (dynamic)")
@click.option("--max-iter", type=Int(1, MAX_ITER), default=None,
              help="iterations (fractals; the mandelbrot zoom raises it with depth)")
@retries_opt("re-run a failed unit on another rank")
@click.option("--force", is_flag=True, help="start over: ignore frames already finished")
@click.option("--video", type=OutPath(VIDEO_SUFFIXES, what="video"), default=None, metavar="FILE.mp4",
              help="encode the frames with ffmpeg afterwards")
@click.option("--fps", type=Float(0, MAX_FPS, lo_open=True), default=24.0, show_default=True, help="video frame rate")
@click.option("--stats", type=OutPath([".json"]), default=None, metavar="FILE.json", help="write per-rank stats as JSON")
@click.option("--gantt", type=OutPath([".png"]), default=None, metavar="FILE.png", help="draw a per-rank timeline")
@click.option("--progress", "progress_mode", type=click.Choice(["auto", "bar", "lines"]), default="auto",
              show_default=True, help="bar: redraw one line; lines: a line every few seconds; "
              "auto: bar when stderr (or PIMPI_TTY=1) says terminal")
@click.option("--quiet", "-q", is_flag=True, help="no progress and no summary")
def scene(name: str, frames: int, width: int, height: int, out: str, schedule: str,
          tiles: tuple[int, int] | None, max_iter: int | None, retries: int, force: bool, video: str | None,
          fps: float, stats: str | None, gantt: str | None, progress_mode: str,
          quiet: bool) -> None:
    """Render a built-in SCENE across all ranks, resumably (see _HELP)."""

    rank = env_rank()
    with library_errors(rank, together=True):
        tile_shape = _validate(name, frames, width, height, tiles, max_iter, retries, schedule)
    from pimpi.mpi import world
    from pimpi.render.job import frame_memory, render_frames

    check_memory_together(f"-W {width} -H {height}", *frame_memory(width, height, tile_shape),
                          hint=" (use smaller frames, more --tiles or fewer ranks per node)")
    comm = world()
    rank = comm.rank

    progress = None
    if rank == 0 and not quiet:
        from pimpi.render.progress import Progress

        tty = None if progress_mode == "auto" else progress_mode == "bar"
        progress = Progress(frames, label=f"{name} ({comm.size} ranks, {schedule})", tty=tty)
    try:
        with library_errors(rank, runtime=(RuntimeError, OSError), prefix="render failed: "):
            report = render_frames(comm, name, frames, width, height, schedule=schedule, out=out,
                                   tiles=tile_shape, max_iter=max_iter, force=force, retries=retries,
                                   progress=progress)
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


# -- pimpi render cmd and pimpi render transcode ------------------------------------------

def _run_everywhere(run: Callable[..., Any], job: Any, unit: str, quiet: bool) -> tuple[int, Any]:
    """Start MPI, run `run(comm, job, progress=...)` on every rank; map its errors to exits."""
    from pimpi.mpi import world
    from pimpi.render.progress import Progress

    comm = world()
    rank = comm.rank
    progress = Progress(0, label=f"render {unit}", unit=unit) if rank == 0 and not quiet else None
    try:
        with library_errors(rank, together=True, runtime=(RuntimeError,)):
            return rank, run(comm, job, progress=progress)
    finally:
        if progress is not None:
            progress.close()


def _write_json(path: str, data: Any) -> None:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(target, (json.dumps(data, indent=2, default=str) + "\n").encode())


def _rank_table(report: Any, unit: str) -> list[str]:
    lines = [f"  rank {unit:>8} {'busy s':>8} {'failures':>9}"]
    for r in report.ranks:
        note = " (no more work: too many failures)" if r.blocked else ""
        lines.append(f"  {r.rank:>4} {r.units:>8} {r.busy:>8.2f} {r.failures:>9}{note}")
    return lines


@click.command(context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@click.option("--frames", "frames", required=True, type=Bounded(0, MAX_FRAME_NUMBER, parse_frames, "frame spec", max_text=100_000),
              help="Frames to render, e.g. 1-100,120,200-250:2.")
@click.option("--chunk", "chunk_size", type=Int(1, MAX_FRAMES), default=1, show_default=True,
              help="Frames per task (a chunk never spans a gap in the frame list).")
@click.option("--out", "out_dir", required=True, type=OutPath(folder=True),
              help="Output folder (shared by all ranks, unless --collect).")
@click.option("--expect", multiple=True, required=True,
              help="Expected file per frame, relative to {out}, e.g. 'frame_{frame:04d}.png' (repeatable).")
@retries_opt("Times a failed chunk is tried again, each time on another rank.")
@task_timeout_opt("Seconds a chunk may take; then the renderer's process group is killed.")
@click.option("--collect", is_flag=True, help="Send outputs to rank 0 over MPI (no shared storage).")
@force_opt
@stats_opt
@quiet_opt
@click.option("--dry-run", is_flag=True, help="Print the chunks and the first chunk's command; run nothing.")
@click.argument("command", nargs=-1, type=click.UNPROCESSED, required=True)
def cmd(frames, chunk_size, out_dir, expect, retries, task_timeout, collect, force, stats_path, quiet,
        dry_run, command) -> None:
    """Run any single-machine renderer over chunks of frames on every rank.

    \b
    pimpi run -n 4 -- render cmd --frames 1-48 --chunk 4 --out frames \\
        --expect 'f{frame:02d}.png' -- povray +Iscene.pov +O{out}/f.png \\
        +W320 +H240 +KFI1 +KFF48 +SF{start} +EF{end} -D

    Placeholders in the command: {start} and {end} (the chunk's first and last frame),
    {frame}, {out} (a fresh folder per chunk; the renderer must write there), with
    format specs like {frame:04d}. Without {frame} the command runs once per chunk;
    with {frame} it runs once per frame. Values are passed as arguments, never through
    a shell. A chunk is done when every --expect file exists, is non-empty and (PNG,
    JPEG) complete; then its files are renamed into --out. A rerun skips finished
    chunks. Exit code 1 when any chunk failed for good. (POV-Ray pads frame numbers
    to the digits of +KFF: +KFF48 writes f01.png, hence {frame:02d}.)
    """
    from pimpi.render.cmd import CmdJob, Template, parse_expect
    from pimpi.render.framespec import format_frames

    rank = env_rank()
    with library_errors(rank, together=True):
        template = Template.parse(list(command))
        patterns = parse_expect(list(expect))
    job = CmdJob(template=template, expect=patterns, out_dir=Path(out_dir), frames=frames,
                 chunk_size=chunk_size, retries=retries, task_timeout=task_timeout,
                 collect=collect, force=force)
    if dry_run:
        if rank == 0:
            _dry_run(job)
        return

    from pimpi.render.cmd import run_cmd

    rank, result = _run_everywhere(run_cmd, job, "chunks", quiet)
    if rank == 0:
        _cmd_report(result, stats_path, {"frames": format_frames(frames), "chunk": chunk_size})
    if result.failed:
        fail_together(rank, f"{len(result.failed)} chunk{'s' if len(result.failed) > 1 else ''} failed for good "
                    f"(frames {format_frames(result.frames_failed)}); rerun to retry only those", usage=False)


def _dry_run(job: Any) -> None:
    """What `render cmd` would do, without MPI or any file written."""
    import shlex

    from pimpi.render.cmd import expected_files, find_program
    from pimpi.render.framespec import format_frames

    program = job.template.argv[0]
    click.echo(f"renderer: {find_program(program) or program + ' (NOT FOUND on this node)'}")
    chunk_list = job.chunks()
    click.echo(f"{len(job.frames)} frames in {len(chunk_list)} chunks: "
               + ", ".join(format_frames(c) for c in chunk_list[:8]) + (", ..." if len(chunk_list) > 8 else ""))
    first = chunk_list[0]
    runs = job.template.commands(first, "{out}")
    click.echo(f"chunk {format_frames(first)} runs {len(runs)} command{'s' if len(runs) > 1 else ''}, e.g.:")
    click.echo("  " + shlex.join(runs[0]))
    names = list(dict.fromkeys(n for ns in expected_files(job.expect, first).values() for n in ns))
    click.echo(f"and must leave in {{out}}: {', '.join(names)}")


def _cmd_report(result: Any, stats_path: str | None, head: dict[str, Any]) -> None:
    """Rank 0: the stats file and the summary of `render cmd`."""
    if stats_path:
        _write_json(stats_path, {**head, **result.to_dict()})
    report = result.report
    ran = len(result.done)
    line = f"rendered {ran} of {result.chunks} chunks"
    if report is not None:
        line += f" on {report.size} rank{'s' if report.size > 1 else ''} in {report.wall:.1f} s"
    if result.skipped:
        line += f"; {result.skipped} already done (journal)"
    click.echo(line)
    if report is not None:
        for text in _rank_table(report, "chunks"):
            click.echo(text)
    for key, reason in sorted(result.failed.items()):
        click.echo(f"  FAILED frames {key}: {reason}")


@click.command()
@click.argument("src", type=click.Path(dir_okay=False))
@click.argument("dst", type=OutPath(TRANSCODE_SUFFIXES, what="video"))
@click.option("--segment-seconds", type=Seconds(MAX_SEGMENT), default=10.0, show_default=True,
              help="Target segment length (cuts happen at the next keyframe).")
@click.option("--crf", type=Int(0, 63), default=23, show_default=True)
@click.option("--preset", type=click.Choice(X264_PRESETS), default="medium", show_default=True,
              help="Encoder preset (x264/x265).")
@click.option("--codec", default="libx264", show_default=True, help="Video encoder (one ffmpeg has).")
@task_timeout_opt("Seconds one segment's encode may take.")
@retries_opt()
@click.option("--threads", type=Int(1, MAX_THREADS), default=None,
              help="Encoder threads per rank (default: the encoder's own; set it when ranks share a node).")
@click.option("--force", is_flag=True, help="Overwrite DST and start over.")
@stats_opt
@quiet_opt
def transcode(src, dst, segment_seconds, crf, preset, codec, task_timeout, retries, threads, force, stats_path,
              quiet) -> None:
    """Encode video SRC into DST in segments on all ranks (shared storage).

    \b
    pimpi run -n 4 -- render transcode talk.mov talk.mp4 --segment-seconds 20

    The video is cut at keyframes without re-encoding, the segments are encoded on all
    ranks (video only), joined with ffmpeg's concat demuxer, and the original audio is
    muxed once at the end. DST appears only when its frame count and duration match SRC.
    """
    from pimpi.render.transcode import TranscodeJob, check_job

    rank = env_rank()
    job = TranscodeJob(src=Path(src), dst=Path(dst), segment_seconds=segment_seconds, crf=crf, preset=preset,
                       codec=codec, task_timeout=task_timeout, retries=retries, force=force, threads=threads)
    with library_errors(rank, together=True, runtime=(RuntimeError,)):  # RuntimeError: no ffmpeg to ask
        check_job(job)

    from pimpi.render.transcode import run_transcode

    rank, result = _run_everywhere(run_transcode, job, "segments", quiet)
    if rank != 0:
        return
    if stats_path:
        _write_json(stats_path, result.to_dict())
    click.echo(result.summary())
    if result.report is not None:
        for text in _rank_table(result.report, "segments"):
            click.echo(text)
    sys.stdout.flush()


@click.command()
@click.argument("blend", metavar="FILE.blend", type=click.Path(dir_okay=True))
@click.option("--frames", "frames", type=Bounded(0, MAX_FRAME_NUMBER, parse_frames, "frame spec", max_text=100_000),
              default=None, help="Frames to render, e.g. 1-100 (default: the scene's range).")
@click.option("--chunk", "chunk_size", type=Int(1, MAX_FRAMES), default=1, show_default=True,
              help="Frames per task (one Blender start per chunk).")
@click.option("--out", "out_dir", type=OutPath(folder=True), default="frames", show_default=True,
              help="Output folder for frame_0001.png ... (shared by all ranks, unless --collect).")
@click.option("--threads", type=Int(0, MAX_THREADS), default=0, show_default=True,
              help="Blender threads per rank (0: all cores; set it when ranks share a node).")
@click.option("--allow-scripts", is_flag=True, help="Let Blender run the file's Python (default: --disable-autoexec).")
@retries_opt("Times a failed chunk is tried again, each time on another rank.")
@task_timeout_opt("Seconds a chunk may take; then Blender's process group is killed.")
@click.option("--collect", is_flag=True, help="Send outputs to rank 0 over MPI (no shared storage).")
@force_opt
@click.option("--video", type=OutPath(VIDEO_SUFFIXES, what="video"), default=None, metavar="FILE.mp4",
              help="Encode the frames with ffmpeg afterwards.")
@click.option("--fps", type=Float(0, MAX_FPS, lo_open=True), default=24.0, show_default=True, help="Video frame rate.")
@stats_opt
@quiet_opt
def blender(blend, frames, chunk_size, out_dir, threads, allow_scripts, retries, task_timeout, collect, force,
            video, fps, stats_path, quiet) -> None:
    """Render the frames of a Blender file on every rank, resumably.

    \b
    pimpi run -n 4 -- render blender shot.blend --chunk 2 --out frames --video shot.mp4

    The scene's frame range, size, format and engine are read from the file by Blender
    itself before any work; a missing texture or linked library, a frame outside the
    scene, or no blender on a node stops every rank with one line. Each chunk runs
    `blender -b --disable-autoexec FILE -o {out}/frame_#### -F PNG -s START -e END -a`
    through `render cmd`'s machinery: journal and resume, retries on another rank,
    --collect, and each PNG checked complete and of the scene's size.
    """
    from pimpi.render.blender import BlenderJob, run_blender
    from pimpi.render.framespec import format_frames

    job = BlenderJob(blend=Path(blend), out_dir=Path(out_dir), frames=frames, chunk_size=chunk_size,
                     threads=threads, allow_scripts=allow_scripts, retries=retries, task_timeout=task_timeout,
                     collect=collect, force=force)
    rank, (info, cmd_job, result) = _run_everywhere(run_blender, job, "chunks", quiet)
    if rank == 0:
        if not quiet:
            what = (f"video sequencer ({info.strips} strip{'s' if info.strips > 1 else ''})" if info.sequencer
                    else info.engine)
            click.echo(f"{info.scene}: frames {format_frames(cmd_job.frames)} at {info.width}x{info.height}, "
                       f"{what}, Blender {info.version}")
        _cmd_report(result, stats_path, {"file": str(blend), "frames": format_frames(cmd_job.frames),
                                         "chunk": chunk_size, "width": info.width, "height": info.height,
                                         "engine": info.engine})
    if result.failed:
        fail_together(rank, f"{len(result.failed)} chunk{'s' if len(result.failed) > 1 else ''} failed for good "
                      f"(frames {format_frames(result.frames_failed)}); rerun to retry only those", usage=False)
    if rank == 0 and video:
        from pimpi.render.blender import EXPECT
        from pimpi.render.ffmpeg import frames_to_video

        try:
            frames_to_video([os.path.join(out_dir, EXPECT.format(frame=f)) for f in cmd_job.frames], video, fps=fps)
        except (ValueError, RuntimeError, OSError) as exc:
            raise click.ClickException(f"video: {exc}") from None
        if not quiet:
            click.echo(f"video: {video}")


for _command in (scene, cmd, transcode, blender):
    render.add_command(_command)
