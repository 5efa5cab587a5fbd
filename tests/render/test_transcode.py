"""Chunked transcode without MPI: keyframe cuts, segment encodes, the join, and the frame/duration check."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from pimpi.render import ffmpeg as ff
from pimpi.render.transcode import (
    TranscodeJob,
    assemble,
    check_job,
    encode_segment,
    split_segments,
    verify_output,
    work_folder,
)


def make_clip(path: Path, seconds: float = 4.0, audio: bool = True) -> Path:
    """testsrc (+ a sine tone), 48x32, 25 fps, a keyframe every 25 frames."""
    args = [ff.find_ffmpeg(), "-hide_banner", "-nostdin", "-loglevel", "error", "-y",
            "-f", "lavfi", "-i", f"testsrc=size=48x32:rate=25:duration={seconds:g}"]
    if audio:
        args += ["-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds:g}", "-c:a", "aac"]
    args += ["-c:v", "libx264", "-preset", "ultrafast", "-g", "25", "-keyint_min", "25", str(path)]
    subprocess.run(args, check=True, timeout=60)
    return path


_SRC = {"frames": 100, "duration": 4.0, "fps": 25.0, "has_audio": True, "audio_duration": 4.0}


def test_verify_output_accepts_one_frame_of_slack():
    assert verify_output(_SRC, dict(_SRC, duration=4.039, audio_duration=3.97)) == ""


@pytest.mark.parametrize(
    "change, word",
    [({"frames": 99}, "FRAME MISMATCH"), ({"duration": 4.1}, "DURATION MISMATCH"),
     ({"has_audio": False}, "audio lost"), ({"audio_duration": 3.5}, "AUDIO DURATION")],
)
def test_verify_output_names_the_mismatch(change, word):
    assert word in verify_output(_SRC, dict(_SRC, **change))


def test_check_job_refuses_before_anything_runs(tmp_path):
    src = tmp_path / "in.mp4"
    with pytest.raises(ValueError, match="no such input"):
        check_job(TranscodeJob(src=src, dst=tmp_path / "out.mp4"))
    src.write_bytes(b"x")
    (tmp_path / "out.mp4").write_bytes(b"old")
    with pytest.raises(ValueError, match="--force"):
        check_job(TranscodeJob(src=src, dst=tmp_path / "out.mp4"))
    with pytest.raises(ValueError, match="same file"):
        check_job(TranscodeJob(src=src, dst=src, force=True))
    with pytest.raises(ValueError, match="extension"):
        check_job(TranscodeJob(src=src, dst=tmp_path / "out"))
    check_job(TranscodeJob(src=make_clip(tmp_path / "clip.mp4"), dst=tmp_path / "out.mp4", force=True))


def _bad_inputs(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    """name -> (a file named .mp4 that is no video to transcode, what the refusal says)."""
    text = tmp_path / "notes.mp4"
    text.write_text("these are my notes, not a video\n")
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    whole = make_clip(tmp_path / "whole.mp4", seconds=2.0)
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(whole.read_bytes()[: whole.stat().st_size // 3])
    audio = tmp_path / "audio.mp4"
    subprocess.run([ff.find_ffmpeg(), "-hide_banner", "-nostdin", "-loglevel", "error", "-y", "-f", "lavfi",
                    "-i", "sine=frequency=440:duration=2", "-c:a", "aac", str(audio)], check=True, timeout=60)
    return {"text": (text, "not a video"), "empty": (empty, "is empty"),
            "truncated": (truncated, "not a video"), "audio": (audio, "no video stream (audio only)")}


def test_a_file_that_is_no_video_is_refused_by_check_job(tmp_path):
    for name, (path, says) in _bad_inputs(tmp_path).items():
        with pytest.raises(ValueError, match=re.escape(says)):
            check_job(TranscodeJob(src=path, dst=tmp_path / f"out-{name}.mp4"))


@pytest.mark.timeout(300)
def test_a_file_that_is_no_video_exits_2_in_one_line_before_any_work_also_under_mpirun(tmp_path):
    under_mpirun = ["run", "-n", "2", "--timeout", "100", "--"]
    for name, (path, says) in _bad_inputs(tmp_path).items():
        for launch in ([], under_mpirun) if name in ("text", "audio") else ([],):
            proc = subprocess.run([sys.executable, "-m", "pimpi", *launch, "render", "transcode", str(path),
                                   f"out-{name}.mp4", "-q"], cwd=tmp_path, capture_output=True, text=True,
                                  timeout=150, stdin=subprocess.DEVNULL)
            assert proc.returncode == 2, (name, launch, proc.stderr)
            errors = [line for line in proc.stderr.splitlines() if line.startswith("Error:")]
            assert len(errors) == 1 and says in errors[0] and str(path) in errors[0], (name, proc.stderr)
            assert "Traceback" not in proc.stderr
            assert not (tmp_path / f"out-{name}.mp4").exists() and not list(tmp_path.glob(f"*out-{name}*"))


def test_pieces_join_exactly_and_a_missing_segment_is_caught(tmp_path):
    src = make_clip(tmp_path / "in.mp4")
    job = TranscodeJob(src=src, dst=tmp_path / "out.mp4", crf=30, preset="ultrafast")
    folder = work_folder(job.dst)
    folder.mkdir()
    segments = split_segments(src, folder, 1.0)
    assert len(segments) == 4  # cut at the keyframes, one per second
    for seg in segments:
        encode_segment(seg, folder / ("enc" + seg.stem[3:] + ".mp4"), job.codec, job.crf, job.preset)
    source = ff.probe(src)

    broken = assemble(job, source, segments[:-1])  # one segment lost: must not pass
    assert isinstance(broken, str) and "FRAME MISMATCH" in broken and "not written" in broken
    assert not job.dst.exists() and not list(tmp_path.glob(".out.*tmp*"))

    output, audio = assemble(job, source, segments)
    assert audio == "copied" and job.dst.exists() and not folder.exists()
    assert output["frames"] == source["frames"] == 100
    assert abs(output["duration"] - source["duration"]) <= 1 / 25
    assert output["has_audio"] and abs(output["audio_duration"] - source["audio_duration"]) <= 1 / 25


def test_cli_under_mpirun_with_audio(tmp_path):
    make_clip(tmp_path / "in.mp4")
    cmd = [sys.executable, "-m", "pimpi", "run", "-n", "2", "--timeout", "100", "--", "render", "transcode",
           "in.mp4", "out.mp4", "--segment-seconds", "1", "--preset", "ultrafast", "--crf", "30", "--threads", "1", "-q"]
    proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "wrote out.mp4: 100 frames" in proc.stdout and "audio copied" in proc.stdout
    info = ff.probe(tmp_path / "out.mp4")
    assert info["frames"] == 100 and info["has_audio"]
    # the work folder is gone; the job's status file (for pimpi monitor) stays beside the output
    assert sorted(p.name for p in tmp_path.iterdir()) == [".pimpi-status.out.mp4.json", "in.mp4", "out.mp4"]
    again = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert again.returncode == 2 and "--force" in again.stderr
