"""Chunked video encoding: cut at keyframes, encode segments on all ranks, join, mux audio once, verify.

Steps (the classic mistakes of distributed encoders are named where they are avoided):
1. rank 0 cuts the video stream only, without re-encoding (`-f segment -c copy`: cuts
   land on keyframes, so every segment decodes on its own);
2. every rank encodes whole segments (video only) as `run_dynamic` tasks, longest first;
3. rank 0 joins them with the concat demuxer (no re-encode) and muxes the ORIGINAL audio
   once (audio encoded per chunk leaves gaps at every join);
4. the result must have the input's frame count and duration (within one frame), and its
   audio the input's audio duration; otherwise it is an error and DST is not written.

The segments live in a work folder beside DST (`.DST.pimpi-transcode/`), which must be on
storage all ranks share; a journal there lets a rerun skip segments already encoded.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from pimpi.fileio import atomic_path, stale_temps
from pimpi.jobstatus import job_status
from pimpi.render.ffmpeg import (EVEN_PAD, PRESET_CODECS, X264_PRESETS, FFmpegError, find_ffmpeg, media_problem, probe,
                                 run_ffmpeg, video_encoders)

__all__ = ["TranscodeJob", "TranscodeResult", "check_job", "work_folder", "split_segments",
           "encode_segment", "join_segments", "verify_output", "assemble", "run_transcode"]

_SEGMENT_CONTAINERS = (".mp4", ".mov", ".mkv", ".webm")


@dataclass
class TranscodeJob:
    """What `pimpi render transcode` was asked for."""

    src: Path
    dst: Path
    segment_seconds: float = 10.0
    crf: int = 23
    preset: str = "medium"
    codec: str = "libx264"
    task_timeout: float | None = None
    retries: int = 1
    force: bool = False
    threads: int | None = None  # encoder threads per rank (None: the encoder decides)

    def signature(self) -> dict[str, Any]:
        """The journal's job identity: same input file (size, mtime) and same settings."""
        stat = self.src.stat()
        return {"kind": "render transcode", "src": str(self.src.resolve()), "size": stat.st_size,
                "mtime_ns": stat.st_mtime_ns, "segment_seconds": self.segment_seconds, "crf": self.crf,
                "preset": self.preset, "codec": self.codec}


@dataclass
class TranscodeResult:
    """What happened: input and output facts, segment counts, the schedule report."""

    source: dict[str, Any]
    output: dict[str, Any]
    segments: int
    skipped: int
    audio: str  # "copied", "re-encoded once", or "none"
    report: Any = None
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        src, out = self.source, self.output
        line = (f"wrote {out.get('path')}: {out['frames']} frames, {out['duration']:.3f} s "
                f"(input {src['frames']} frames, {src['duration']:.3f} s), {self.segments} segments")
        if self.skipped:
            line += f" ({self.skipped} already encoded)"
        if self.report is not None:
            line += f", {self.report.size} rank{'s' if self.report.size > 1 else ''}, {self.report.wall:.1f} s"
        return line + f", audio {self.audio}"

    def to_dict(self) -> dict[str, Any]:
        data = {"source": self.source, "output": self.output, "segments": self.segments,
                "skipped": self.skipped, "audio": self.audio, "notes": self.notes}
        if self.report is not None:
            data["schedule"] = self.report.to_dict()
        return data


def check_job(job: TranscodeJob) -> None:
    """Usage problems found without running anything (ValueError naming the value)."""
    if not job.src.is_file():
        raise ValueError(f"no such input video: {str(job.src)!r}")
    if not job.dst.suffix:
        raise ValueError(f"output {str(job.dst)!r} needs an extension (e.g. .mp4)")
    if job.dst.exists() and job.dst.resolve() == job.src.resolve():
        raise ValueError("output and input are the same file")
    if job.dst.exists() and not job.force:
        raise ValueError(f"output {str(job.dst)!r} exists (use --force to overwrite)")
    if job.segment_seconds <= 0:
        raise ValueError(f"segment length must be > 0 s, got {job.segment_seconds}")
    if job.preset not in X264_PRESETS:
        raise ValueError(f"--preset {job.preset!r}: not a preset (choose from {', '.join(X264_PRESETS)})")
    encoders = video_encoders()
    if job.codec not in encoders:
        like = sorted(e for e in encoders if job.codec.lower() in e or e in job.codec.lower())[:4]
        raise ValueError(f"--codec {job.codec!r}: this ffmpeg has no such video encoder"
                         + (f" (similar: {', '.join(like)})" if like else " (see ffmpeg -encoders)"))
    problem = media_problem(job.src)
    if problem:
        raise ValueError(f"input {str(job.src)!r} {problem}")


def work_folder(dst: Path) -> Path:
    """Where segments live while the job runs: beside DST, hidden (an absolute path)."""
    return dst.absolute().with_name(f".{dst.name}.pimpi-transcode")


def split_segments(src: Path, folder: Path, seconds: float, ffmpeg: str | None = None) -> list[Path]:
    """Cut the first video stream of `src` into `folder/src_NNNNN.mkv` at keyframes (no re-encode)."""
    for old in folder.glob("src_*.mkv"):
        old.unlink()
    run_ffmpeg(["-loglevel", "error", "-i", str(src), "-map", "0:v:0", "-c", "copy", "-an", "-sn", "-dn",
                "-f", "segment", "-segment_time", f"{seconds:g}", "-reset_timestamps", "1",
                str(folder / "src_%05d.mkv")], ffmpeg=ffmpeg)
    found = sorted(folder.glob("src_*.mkv"))
    if not found:
        raise FFmpegError(f"cutting {str(src)!r} produced no segments")
    return found


def _encoded_suffix(dst: Path) -> str:
    suffix = dst.suffix.lower()
    return suffix if suffix in _SEGMENT_CONTAINERS else ".mkv"


def encode_segment(segment: Path, target: Path, codec: str, crf: int, preset: str,
                   timeout: float | None = None, ffmpeg: str | None = None, threads: int | None = None) -> None:
    """Encode one segment's video (no audio), every frame kept as it is, written atomically.

    `threads` caps the encoder's threads: with several ranks on one node, each rank's
    encoder would otherwise start a thread per core."""
    args = ["-loglevel", "error", "-i", str(segment), "-map", "0:v:0", "-an", "-sn", "-dn",
            "-vf", EVEN_PAD, "-c:v", codec, "-crf", str(crf)]
    if codec in PRESET_CODECS:
        args += ["-preset", preset]
    if threads:
        args += ["-threads", str(threads)]
    args += ["-pix_fmt", "yuv420p", "-fps_mode", "passthrough"]
    with atomic_path(target) as tmp:
        run_ffmpeg([*args, str(tmp)], timeout=timeout, ffmpeg=ffmpeg)


def join_segments(parts: list[Path], src: Path, out: Path, has_audio: bool,
                  ffmpeg: str | None = None) -> str:
    """Concatenate encoded `parts` (stream copy) and mux `src`'s first audio stream once.

    The audio is copied; if the output container refuses that codec, it is encoded ONCE
    for the whole track (never per segment). Returns "copied", "re-encoded once" or "none".
    """
    listing = out.with_name(f".{out.name}.concat.txt")
    lines = []
    for part in parts:
        escaped = str(part.resolve()).replace("'", "'\\''")
        lines.append(f"file '{escaped}'")
    listing.write_text("\n".join(lines) + "\n")
    base = ["-loglevel", "error", "-f", "concat", "-safe", "0", "-i", str(listing)]
    try:
        if not has_audio:
            run_ffmpeg([*base, "-map", "0:v", "-c", "copy", str(out)], ffmpeg=ffmpeg)
            return "none"
        with_audio = [*base, "-i", str(src), "-map", "0:v", "-map", "1:a:0", "-c:v", "copy"]
        try:
            run_ffmpeg([*with_audio, "-c:a", "copy", str(out)], ffmpeg=ffmpeg)
            return "copied"
        except FFmpegError:
            run_ffmpeg([*with_audio, str(out)], ffmpeg=ffmpeg)
            return "re-encoded once"
    finally:
        listing.unlink(missing_ok=True)


def verify_output(source: dict[str, Any], output: dict[str, Any]) -> str:
    """'' when `output` matches `source` (frames equal, durations within one frame)."""
    frame = 1.0 / source["fps"] if source.get("fps") else 0.05
    tolerance = frame + 1e-3
    if output["frames"] != source["frames"]:
        return f"FRAME MISMATCH: output has {output['frames']} frames, input {source['frames']}"
    if abs(output["duration"] - source["duration"]) > tolerance:
        return (f"DURATION MISMATCH: output video {output['duration']:.3f} s, "
                f"input {source['duration']:.3f} s")
    if output["has_audio"] != source["has_audio"]:
        return "AUDIO MISMATCH: " + ("audio lost" if source["has_audio"] else "audio appeared")
    if source["has_audio"] and abs(output["audio_duration"] - source["audio_duration"]) > tolerance:
        return (f"AUDIO DURATION MISMATCH: output {output['audio_duration']:.3f} s, "
                f"input {source['audio_duration']:.3f} s")
    return ""


def _prepare(job: TranscodeJob, ffmpeg: str) -> tuple[Any, dict[str, Any], list[Path]]:
    """Rank 0: probe the input, open the journal, cut (unless journaled). -> (journal, facts, segments)."""
    from pimpi.journal import Journal

    source = probe(job.src)
    folder = work_folder(job.dst)
    journal = Journal.open(folder, job.signature(), force=job.force)
    if journal.done("split"):
        segments = [folder / name for name in sorted(journal.entries["split"])]
    else:
        segments = split_segments(job.src, folder, job.segment_seconds, ffmpeg)
        journal.record("split", segments)
    for stale in stale_temps(folder):
        stale.unlink(missing_ok=True)
    return journal, source, segments


def _encoded_name(segment: Path, dst: Path) -> str:
    return "enc" + segment.stem[3:] + _encoded_suffix(dst)


def run_transcode(comm: Any, job: TranscodeJob,
                  progress: Callable[[int, int], None] | None = None) -> TranscodeResult:
    """Encode `job.src` into `job.dst` across `comm` (collective); see the module docstring.

    Raises RuntimeError on every rank when a segment fails for good, ffmpeg fails, or the
    output does not match the input (DST is then not written); ValueError when the work
    folder is not shared.
    """
    from pimpi.mpi import agree, check_shared_folder, root_decides
    from pimpi.tasks import Task, run_dynamic

    rank = comm.rank
    ffmpeg, missing = "", ""
    try:
        ffmpeg = find_ffmpeg()
    except FFmpegError as exc:
        missing = str(exc)
    agree(comm, missing)
    folder = work_folder(job.dst)
    journal, source, segments, problem = None, {}, [], ""
    if rank == 0:
        try:
            journal, source, segments = _prepare(job, ffmpeg)
        except Exception as exc:  # noqa: BLE001 - every rank must hear about it, or they wait
            problem = f"cannot prepare {str(job.src)!r}: {exc}"
    problem, names, source = root_decides(comm, (problem, [s.name for s in segments], source))
    if problem:
        raise RuntimeError(problem)
    check_shared_folder(comm, folder, "transcode needs a work folder on storage all ranks share")

    def work(task: Any) -> None:
        encode_segment(folder / task.data, folder / _encoded_name(Path(task.data), job.dst), job.codec,
                       job.crf, job.preset, timeout=job.task_timeout, ffmpeg=ffmpeg, threads=job.threads)

    def on_result(task: Any, array: Any, source_rank: int) -> None:
        journal.record(task.key, [folder / task.key])

    tasks = []
    if rank == 0:
        for seg in segments:
            key = _encoded_name(seg, job.dst)
            if not journal.done(key):
                tasks.append(Task(key, cost=float(seg.stat().st_size), data=seg.name))
    with job_status(comm, Path(job.dst).parent, "transcode", Path(job.dst).name, total=len(tasks),
                    skipped=len(names) - len(tasks) if rank == 0 else 0, stem=Path(job.dst).name) as status:
        report = run_dynamic(comm, tasks, work, on_result=on_result, retries=job.retries, progress=progress,
                             status=status)
        if report.failed:
            key, reason = sorted(report.failed.items())[0]
            raise RuntimeError(f"{len(report.failed)} of {len(names)} segments failed for good "
                               f"(first: {key}: {reason}); rerun to retry only those (work folder {str(folder)!r})")

        outcome: Any = None
        if rank == 0:
            outcome = assemble(job, source, segments, ffmpeg)
        outcome = root_decides(comm, outcome)
        if isinstance(outcome, str):
            raise RuntimeError(outcome)
        if status is not None:
            status.output(Path(job.dst).name)
    output, audio = outcome
    return TranscodeResult(source=source, output=output, segments=len(names), skipped=len(names) - len(report.done),
                           audio=audio, report=report)


class _Mismatch(Exception):
    """The joined video does not match the source: it must not be renamed into place."""


def assemble(job: TranscodeJob, source: dict[str, Any], segments: list[Path],
             ffmpeg: str | None = None) -> tuple[dict[str, Any], str] | str:
    """Rank 0: join the encoded `segments`, mux audio, verify against `source`, rename into
    place. Returns (output facts, audio mode), or a one-line error (DST then not written;
    the work folder is kept so a rerun does not encode again)."""
    folder = work_folder(job.dst)
    parts = [folder / _encoded_name(s, job.dst) for s in segments]
    try:
        with atomic_path(job.dst) as tmp:
            audio = join_segments(parts, job.src, tmp, source["has_audio"], ffmpeg)
            output = probe(tmp)
            mismatch = verify_output(source, output)
            if mismatch:
                raise _Mismatch(f"{mismatch}; {str(job.dst)!r} not written")
    except _Mismatch as exc:
        return str(exc)
    except Exception as exc:  # noqa: BLE001 - returned to every rank as the job's error
        return f"joining segments failed: {exc}"
    shutil.rmtree(folder, ignore_errors=True)
    output["path"] = str(job.dst)
    return output, audio
