"""`pimpi render cmd` and `pimpi render transcode`: any renderer, and chunked video encoding."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Callable

import click

from pimpi.fileio import atomic_write
from pimpi.cliutil import env_rank, fail_together

__all__ = ["cmd", "transcode"]


def _run_everywhere(run: Callable[..., Any], job: Any, unit: str, quiet: bool) -> tuple[int, Any]:
    """Start MPI, run `run(comm, job, progress=...)` on every rank; map its errors to exits."""
    from pimpi.mpi import world
    from pimpi.render.progress import Progress

    comm = world()
    rank = comm.rank
    progress = Progress(0, label=f"render {unit}", unit=unit) if rank == 0 and not quiet else None
    try:
        return rank, run(comm, job, progress=progress)
    except ValueError as exc:
        fail_together(rank, str(exc), usage=True)
    except RuntimeError as exc:
        fail_together(rank, str(exc), usage=False)
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
@click.option("--frames", "frame_spec", required=True, help="Frames to render, e.g. 1-100,120,200-250:2.")
@click.option("--chunk", "chunk_size", type=click.IntRange(min=1), default=1, show_default=True,
              help="Frames per task (a chunk never spans a gap in the frame list).")
@click.option("--out", "out_dir", required=True, type=click.Path(),
              help="Output folder (shared by all ranks, unless --collect).")
@click.option("--expect", multiple=True, required=True,
              help="Expected file per frame, relative to {out}, e.g. 'frame_{frame:04d}.png' (repeatable).")
@click.option("--retries", type=click.IntRange(min=0), default=1, show_default=True,
              help="Times a failed chunk is tried again, each time on another rank.")
@click.option("--task-timeout", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Seconds a chunk may take; then the renderer's process group is killed.")
@click.option("--collect", is_flag=True, help="Send outputs to rank 0 over MPI (no shared storage).")
@click.option("--force", is_flag=True, help="Start over: ignore the journal of earlier runs.")
@click.option("--stats", "stats_path", type=click.Path(dir_okay=False), default=None,
              help="Write a JSON report (every attempt, per-rank times) here.")
@click.option("-q", "--quiet", is_flag=True, help="No progress lines.")
@click.option("--dry-run", is_flag=True, help="Print the chunks and the first chunk's command; run nothing.")
@click.argument("command", nargs=-1, type=click.UNPROCESSED, required=True)
def cmd(frame_spec, chunk_size, out_dir, expect, retries, task_timeout, collect, force, stats_path, quiet,
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
    from pimpi.render.framespec import format_frames, parse_frames

    rank = env_rank()
    try:
        frames = parse_frames(frame_spec)
        template = Template.parse(list(command))
        patterns = parse_expect(list(expect))
    except ValueError as exc:
        fail_together(rank, str(exc), usage=True)
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
@click.argument("dst", type=click.Path(dir_okay=False))
@click.option("--segment-seconds", type=click.FloatRange(min=0, min_open=True), default=10.0, show_default=True,
              help="Target segment length (cuts happen at the next keyframe).")
@click.option("--crf", type=click.IntRange(min=0, max=63), default=23, show_default=True)
@click.option("--preset", default="medium", show_default=True, help="Encoder preset (x264/x265).")
@click.option("--codec", default="libx264", show_default=True, help="Video encoder.")
@click.option("--task-timeout", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Seconds one segment's encode may take.")
@click.option("--retries", type=click.IntRange(min=0), default=1, show_default=True)
@click.option("--threads", type=click.IntRange(min=1), default=None,
              help="Encoder threads per rank (default: the encoder's own; set it when ranks share a node).")
@click.option("--force", is_flag=True, help="Overwrite DST and start over.")
@click.option("--stats", "stats_path", type=click.Path(dir_okay=False), default=None,
              help="Write a JSON report here.")
@click.option("-q", "--quiet", is_flag=True, help="No progress lines.")
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
    try:
        check_job(job)
    except ValueError as exc:
        fail_together(rank, str(exc), usage=True)

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
