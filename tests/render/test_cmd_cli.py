"""`pimpi render cmd` end to end through `pimpi run` (real mpirun, real ffmpeg): exit codes, report, timeouts."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from pimpi.render.cmd import check_output_file
from tests.helpers import pimpi, processes

pytestmark = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs ffmpeg")


def _pimpi(args: list[str], ranks: int | None, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    launcher = ["run", "-n", str(ranks), "--timeout", str(timeout - 10), "--"] if ranks else []
    return pimpi(*launcher, *args, cwd=cwd, timeout=timeout)


def _testsrc(seconds: float, extra: list[str] | None = None) -> list[str]:
    return ["ffmpeg", "-nostdin", "-loglevel", "error", *(extra or []), "-f", "lavfi", "-i",
            f"testsrc=size=32x24:rate=10:duration={seconds:g}", "-vf", r"select=between(n\,{start}\,{end})",
            "-fps_mode", "passthrough", "-start_number", "{start}", "{out}/frame_%04d.png"]


def test_renders_frames_writes_stats_and_reports_per_rank(tmp_path):
    args = ["render", "cmd", "--frames", "0-5,8-9", "--chunk", "2", "--out", "out",
            "--expect", "frame_{frame:04d}.png", "--stats", "stats.json", "--", *_testsrc(1.0)]
    proc = _pimpi(args, 3, tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    frames = [0, 1, 2, 3, 4, 5, 8, 9]
    assert all(check_output_file(tmp_path / "out" / f"frame_{f:04d}.png") == "" for f in frames)
    assert sorted(p.name for p in (tmp_path / "out").glob("frame_*")) == [f"frame_{f:04d}.png" for f in frames]
    assert "rendered 4 of 4 chunks on 3 ranks" in proc.stdout
    assert proc.stdout.count("rendered") == 1  # only rank 0 reports
    stats = json.loads((tmp_path / "stats.json").read_text())
    assert stats["frames"] == "0-5,8-9" and stats["schedule"]["size"] == 3
    assert sum(r["units"] for r in stats["schedule"]["ranks"]) == 4


def test_chunk_that_always_fails_gives_exit_1_and_names_the_frames(tmp_path):
    args = ["render", "cmd", "--frames", "0-11", "--chunk", "4", "--out", "out", "--retries", "1",
            "--expect", "frame_{frame:04d}.png", "--", *_testsrc(0.8)]
    proc = _pimpi(args, 2, tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "FAILED frames 8-11: frame_0008.png: missing" in proc.stdout
    assert "failed for good (frames 8-11)" in proc.stderr and "Traceback" not in proc.stderr
    assert sorted(p.name for p in (tmp_path / "out").glob("frame_*")) == [f"frame_{f:04d}.png" for f in range(8)]


def _processes_with(token: str) -> list[int]:
    return [pid for pid, argv in processes(lambda argv: token in "\0".join(argv))]


def test_task_timeout_kills_the_renderer(tmp_path):
    token = f"pimpi-test-{uuid.uuid4().hex}"
    slow = _testsrc(60, extra=["-re"])  # -re: ffmpeg produces frames in real time (1 min)
    slow[slow.index("-vf"):slow.index("-vf")] = ["-metadata", f"comment={token}"]
    args = ["render", "cmd", "--frames", "0-1", "--chunk", "2", "--out", "out", "--retries", "0",
            "--task-timeout", "1.5", "--expect", "frame_{frame:04d}.png", "--", *slow]
    proc = _pimpi(args, 2, tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "timed out after 1.5 s" in proc.stdout
    assert _processes_with(token) == []
    assert not list((tmp_path / "out").glob("frame_*")) and not list((tmp_path / "out").glob(".pimpi-chunk*"))


def test_missing_renderer_is_a_usage_error_and_writes_nothing(tmp_path):
    args = ["render", "cmd", "--frames", "1-3", "--out", "out", "--expect", "f{frame}.png", "--",
            "no-such-renderer-pimpi", "{out}/f{frame}.png"]
    proc = _pimpi(args, None, tmp_path, timeout=60)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "renderer 'no-such-renderer-pimpi' not found" in proc.stderr
    assert os.listdir(tmp_path) == []


@pytest.mark.timeout(150)
@pytest.mark.parametrize("make, named", [
    ('ln -s "$SECRET" "$1/f$2.txt"', "is a symbolic link to"),
    ('mkfifo "$1/f$2.txt"', "is a FIFO"),
])
def test_collect_never_copies_what_a_renderer_links_from_outside(tmp_path, make, named):
    secret = tmp_path / "secret.txt"
    secret.write_text("top secret\n")
    script = tmp_path / "render.sh"
    script.write_text(f"#!/bin/sh\n{make}\n")
    env_args = ["render", "cmd", "--frames", "1-4", "--chunk", "1", "--out", "out", "--collect",
                "--retries", "0", "--expect", "f{frame}.txt", "--", "sh", str(script), "{out}", "{frame}"]
    proc = subprocess.run([sys.executable, "-m", "pimpi", "run", "-n", "2", "--timeout", "120", "--", *env_args],
                          cwd=tmp_path, capture_output=True, text=True, timeout=140,
                          env={**os.environ, "SECRET": str(secret)})
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert named in proc.stdout and "Traceback" not in proc.stderr
    assert "failed for good (frames 1-4)" in proc.stderr
    # the secret's content, never copied (its path may be named: the job's status file says why it failed)
    leaked = [p for p in (tmp_path / "out").rglob("*") if not p.is_dir() and b"top secret" in p.read_bytes()]
    assert not list((tmp_path / "out").glob("f*")) and leaked == []
