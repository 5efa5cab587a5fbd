"""ffmpeg helpers: find the binaries, frames to a video (written atomically), exact probing."""

from __future__ import annotations

import functools
import glob
import json
import os
import re
import shutil
import subprocess
from fractions import Fraction
from pathlib import Path
from typing import Any, Sequence

from pimpi.fileio import atomic_path
from pimpi.procs import CommandError, output, run_process, temporary_folder

__all__ = [
    "FFmpegError",
    "EVEN_PAD",
    "PRESET_CODECS",
    "X264_PRESETS",
    "video_encoders",
    "find_ffmpeg",
    "find_ffprobe",
    "media_problem",
    "run_ffmpeg",
    "frames_to_video",
    "probe",
]

EVEN_PAD = "pad=ceil(iw/2)*2:ceil(ih/2)*2"  # yuv420p (and libx264 with it) needs even sizes
PRESET_CODECS = ("libx264", "libx265", "libx264rgb")  # encoders that take -preset
X264_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow",
                "placebo")  # what x264 and x265 know (ffmpeg passes -preset on unchecked)
_PROBE_TIMEOUT = 300.0


class FFmpegError(RuntimeError):
    """ffmpeg or ffprobe is missing, or failed (the message ends with its last output lines)."""


def find_ffmpeg() -> str:
    """imageio-ffmpeg's bundled binary when installed, else `ffmpeg` on PATH."""
    try:
        import imageio_ffmpeg

        exe = imageio_ffmpeg.get_ffmpeg_exe()
        if exe and os.access(exe, os.X_OK):
            return exe
    except (ImportError, RuntimeError, OSError):
        pass
    exe = shutil.which("ffmpeg")
    if exe:
        return exe
    raise FFmpegError("no ffmpeg found: pip install imageio-ffmpeg, or install ffmpeg (apt install ffmpeg)")


def find_ffprobe() -> str | None:
    """`ffprobe` on PATH (imageio-ffmpeg ships none), or None: `probe` then parses ffmpeg."""
    return shutil.which("ffprobe")


@functools.lru_cache(maxsize=None)
def video_encoders(ffmpeg: str | None = None) -> frozenset[str]:
    """Names of the video encoders this ffmpeg has (asked once: `ffmpeg -encoders`)."""
    try:
        text = output([ffmpeg or find_ffmpeg(), "-hide_banner", "-encoders"], timeout=60)
    except CommandError as exc:
        raise FFmpegError(str(exc)) from None
    names = set()
    for line in text.splitlines():
        fields = line.split()
        if len(fields) >= 2 and len(fields[0]) == 6 and fields[0].startswith("V") and fields[0] != "V.....":
            names.add(fields[1])
    return frozenset(names)


def run_ffmpeg(args: Sequence[str], timeout: float | None = None, ffmpeg: str | None = None) -> None:
    """Run ffmpeg with `args` (no shell, own process group, killed on timeout)."""
    exe = ffmpeg or find_ffmpeg()
    argv = [exe, "-hide_banner", "-nostdin", "-y", *map(str, args)]
    res = run_process(argv, timeout=timeout)
    if res.timed_out:
        raise FFmpegError(f"ffmpeg timed out after {timeout:g} s")
    if res.returncode != 0:
        raise FFmpegError(f"ffmpeg failed (exit {res.returncode}): {res.tail}")


def _pattern_files(pattern: str) -> list[str]:
    """Files matching a printf pattern (`frame_%04d.png`) in number order, or a glob in name order."""
    if "%" not in pattern:
        return sorted(glob.glob(pattern))
    folder, name = os.path.split(pattern)
    match = re.fullmatch(r"(.*)%0?(\d*)d(.*)", name)
    if match is None or "%" in match.group(1) + match.group(3):
        raise ValueError(f"frame pattern {pattern!r}: expected one %d or %0Nd")
    head, width, tail = match.groups()
    digits = rf"\d{{{width},}}" if width else r"\d+"
    regex = re.compile(re.escape(head) + f"({digits})" + re.escape(tail))
    found = []
    for entry in os.listdir(folder or "."):
        got = regex.fullmatch(entry)
        if got:
            found.append((int(got.group(1)), os.path.join(folder, entry)))
    return [path for _, path in sorted(found)]


def _fps_text(fps: Any) -> str:
    try:
        value = Fraction(str(fps))
    except (ValueError, ZeroDivisionError):
        raise ValueError(f"fps must be a positive number, got {fps!r}") from None
    if value <= 0:
        raise ValueError(f"fps must be a positive number, got {fps!r}")
    return f"{value.numerator}/{value.denominator}"


def frames_to_video(frames: Sequence[str | os.PathLike] | str, out_path: str | os.PathLike, fps: float | str = 25,
                    crf: int = 20, preset: str = "medium", codec: str = "libx264",
                    timeout: float | None = None) -> Path:
    """Encode image files into a video at `out_path`, atomically; returns the path.

    `frames` is a list of image paths (in playing order) or one pattern: printf style
    (`out/frame_%04d.png`, any start number) or a glob (`out/*.png`). Odd sizes are
    padded to even and the pixel format is yuv420p, so every player can show it.
    """
    files = _pattern_files(frames) if isinstance(frames, str) else [os.fspath(f) for f in frames]
    if not files:
        raise ValueError(f"no frames to encode: {frames!r}")
    exts = {Path(f).suffix.lower() for f in files}
    if len(exts) != 1 or not next(iter(exts)):
        raise ValueError(f"frames must all have one image extension, got {sorted(exts)}")
    missing = [f for f in files if not os.path.isfile(f)]
    if missing:
        raise ValueError(f"frame not found: {missing[0]!r}")
    rate = _fps_text(fps)
    out = Path(out_path)
    if not out.suffix:
        raise ValueError(f"video path {str(out)!r} needs an extension (e.g. .mp4)")
    ext = exts.pop()
    exe = find_ffmpeg()
    out.parent.mkdir(parents=True, exist_ok=True)
    with temporary_folder("pimpi-frames-") as links:  # removed by the guard if this process is killed
        for number, path in enumerate(files):
            os.symlink(os.path.abspath(path), os.path.join(links, f"{number:08d}{ext}"))
        args = ["-loglevel", "error", "-framerate", rate, "-start_number", "0",
                "-i", os.path.join(links, f"%08d{ext}"),
                "-vf", f"{EVEN_PAD},format=yuv420p", "-c:v", codec, "-crf", str(int(crf))]
        if codec in PRESET_CODECS:
            args += ["-preset", preset]
        args += ["-pix_fmt", "yuv420p", "-an"]
        if out.suffix.lower() in (".mp4", ".mov", ".m4v"):
            args += ["-movflags", "+faststart"]
        with atomic_path(out) as tmp:
            run_ffmpeg([*args, str(tmp)], timeout=timeout, ffmpeg=exe)
    return out


def _fraction(text: Any) -> float:
    try:
        value = Fraction(str(text))
    except (ValueError, ZeroDivisionError):
        return 0.0
    return float(value)


def _capture(argv: list[str], path: str) -> subprocess.CompletedProcess:
    """Run a short probing command, output captured as text; FFmpegError when it hangs."""
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=_PROBE_TIMEOUT, check=False)
    except subprocess.TimeoutExpired:
        raise FFmpegError(f"probing {path!r} took over {_PROBE_TIMEOUT:g} s") from None


def _packet_span(path: str, stream: str, ffmpeg: str | None = None) -> tuple[int, float]:
    """(packets, seconds from the first pts to the end of the last packet) of one stream,
    read without decoding (`-c copy -f framecrc`)."""
    exe = ffmpeg or find_ffmpeg()
    out = _capture([exe, "-hide_banner", "-nostdin", "-loglevel", "error", "-i", path,
                    "-map", f"0:{stream}", "-c", "copy", "-f", "framecrc", "-"], path)
    if out.returncode != 0:
        raise FFmpegError(f"cannot read {path!r}: {out.stderr.strip()[-300:]}")
    base = Fraction(1)
    count, first, last = 0, None, None
    for line in out.stdout.splitlines():
        if line.startswith("#tb"):
            base = Fraction(line.split(":", 1)[1].strip())
            continue
        if line.startswith("#") or not line.strip():
            continue
        parts = [p.strip() for p in line.split(",")]
        pts, dur = int(parts[2]), int(parts[3])
        count += 1
        first = pts if first is None else min(first, pts)
        last = pts + dur if last is None else max(last, pts + dur)
    seconds = float((last - first) * base) if count else 0.0
    return count, seconds


_STREAM = re.compile(r"Stream #\d+:\d+.*?: (Video|Audio): (.*)")


def _probe_with_ffmpeg(path: str) -> dict[str, Any]:
    """probe() without ffprobe: stream lines of `ffmpeg -i`, packets for counts and times."""
    exe = find_ffmpeg()
    info = _capture([exe, "-hide_banner", "-nostdin", "-i", path], path).stderr
    video = audio = None
    for kind, desc in _STREAM.findall(info):
        if kind == "Video" and video is None:
            video = desc
        elif kind == "Audio" and audio is None:
            audio = desc
    if video is None:
        raise FFmpegError(f"no video stream in {path!r}")
    size = re.search(r"(?:^|[ ,])(\d{2,5})x(\d{2,5})(?:[ ,\[]|$)", video)
    rate = re.search(r"([\d.]+) (?:fps|tbr)", video)
    frames, duration = _packet_span(path, "v:0", exe)
    result = {
        "frames": frames,
        "duration": duration,
        "width": int(size.group(1)) if size else 0,
        "height": int(size.group(2)) if size else 0,
        "fps": float(rate.group(1)) if rate else (frames / duration if duration else 0.0),
        "has_audio": audio is not None,
        "audio_duration": _packet_span(path, "a:0", exe)[1] if audio is not None else 0.0,
    }
    return result


def media_problem(path: str | os.PathLike) -> str:
    """Why `path` is no video to work on ('' when it is one), found cheaply (streams are
    listed, nothing decoded), so bad input is refused before any work: an empty or
    truncated file, one that is not media at all (a text file named .mp4), audio only."""
    path = os.fspath(path)
    if os.path.getsize(path) == 0:
        return "is empty (0 bytes)"
    exe = find_ffprobe()
    if exe is not None:
        out = _capture([exe, "-v", "error", "-show_entries", "stream=codec_type", "-of", "json", path], path)
        kinds = [s.get("codec_type") for s in json.loads(out.stdout or "{}").get("streams", [])] \
            if out.returncode == 0 else None
    else:
        out = _capture([find_ffmpeg(), "-hide_banner", "-nostdin", "-i", path], path)
        found = _STREAM.findall(out.stderr)
        kinds = [kind.lower() for kind, _ in found] if found else None
    if kinds is None:
        last = (out.stderr.strip().splitlines() or ["unreadable"])[-1]
        return f"is not a video ffmpeg can read (truncated or not media: {last.split(': ')[-1].strip()})"
    if "video" not in kinds:
        return "has no video stream" + (" (audio only)" if "audio" in kinds else "")
    return ""


def probe(path: str | os.PathLike, ffprobe: str | None = "auto") -> dict[str, Any]:
    """{frames, duration, width, height, fps, has_audio, audio_duration} of a video file.

    `frames` is counted exactly (ffprobe `-count_frames` decodes the stream; without
    ffprobe the packets are counted). Durations are per stream, in seconds.
    `ffprobe=None` forces the ffmpeg-only path.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ValueError(f"no such video: {path!r}")
    exe = find_ffprobe() if ffprobe == "auto" else ffprobe
    if exe is None:
        return _probe_with_ffmpeg(path)
    argv = [exe, "-v", "error", "-count_frames", "-show_entries",
            "stream=index,codec_type,width,height,avg_frame_rate,r_frame_rate,duration,nb_read_frames"
            ":format=duration", "-of", "json", path]
    out = _capture(argv, path)
    if out.returncode != 0:
        raise FFmpegError(f"ffprobe cannot read {path!r}: {out.stderr.strip()[-300:]}")
    data = json.loads(out.stdout or "{}")
    streams = data.get("streams", [])
    video = next((s for s in streams if s.get("codec_type") == "video"), None)
    audio = next((s for s in streams if s.get("codec_type") == "audio"), None)
    if video is None:
        raise FFmpegError(f"no video stream in {path!r}")
    fps = _fraction(video.get("avg_frame_rate")) or _fraction(video.get("r_frame_rate"))

    def seconds(stream: dict[str, Any], spec: str) -> float:
        if "duration" in stream:  # mp4/mov keep it per stream; mkv does not
            return float(stream["duration"])
        return _packet_span(path, spec)[1]

    return {
        "frames": int(video.get("nb_read_frames", 0)),
        "duration": seconds(video, "v:0"),
        "width": int(video.get("width", 0)),
        "height": int(video.get("height", 0)),
        "fps": fps,
        "has_audio": audio is not None,
        "audio_duration": seconds(audio, "a:0") if audio is not None else 0.0,
    }
