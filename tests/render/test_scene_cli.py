"""`pimpi render scene` bad input: one line, exit 2, the value named, no traceback, nothing written."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from pimpi.cli import cli
from tests.helpers import PIMPI

SMALL = ["--frames", "2", "--width", "16", "--height", "12"]


def _invoke(args: list[str]):
    return CliRunner().invoke(cli, ["render", "scene", *args])


@pytest.mark.parametrize("args, named", [
    (["warp", "--frames", "2"], "warp"),
    (["mandelbrot", "--frames", "0"], "--frames"),
    (["mandelbrot", "--frames", "-3"], "-3"),
    (["julia", "--width", "0"], "--width"),
    (["julia", "--height", "-1"], "--height"),
    (["julia", "--tiles", "0x3"], "0x3"),
    (["julia", "--tiles", "2by3"], "2by3"),
    (["julia", "--tiles", "3"], "'3'"),
    (["julia", "--width", "8", "--tiles", "1x9"], "1x9"),
    (["julia", "--tiles", "2x2", "--schedule", "static"], "dynamic"),
    (["mandelbrot", "--max-iter", "0"], "--max-iter"),
    (["raytrace", "--max-iter", "50"], "raytrace"),
    (["julia", "--retries", "-1"], "--retries"),
    (["julia", "--fps", "0"], "--fps"),
    (["julia", "--stats", "s.txt"], "s.txt"),
    (["julia", "--schedule", "random"], "random"),
])
def test_bad_arguments(tmp_path: Path, args: list[str], named: str) -> None:
    out = tmp_path / "out"
    result = _invoke([*args, "--out", str(out)])
    assert result.exit_code == 2, result.output
    assert named in result.output
    assert "Traceback" not in result.output
    assert not out.exists(), "bad input must write nothing"


def test_out_is_a_file(tmp_path: Path) -> None:
    target = tmp_path / "taken"
    target.write_text("x")
    result = _invoke(["julia", *SMALL, "--out", str(target)])
    assert result.exit_code == 2 and "is a file" in result.output and str(target) in result.output
    assert "Traceback" not in result.output
    assert target.read_text() == "x" and sorted(os.listdir(tmp_path)) == ["taken"]


def test_out_below_a_file(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    result = _invoke(["julia", *SMALL, "--out", str(tmp_path / "f" / "sub")])
    assert result.exit_code == 2 and "not a folder" in result.output
    assert sorted(os.listdir(tmp_path)) == ["f"]


def test_out_not_writable() -> None:
    # permission bits do not stop root, so use a file system that refuses new files
    # (and that pimpi refuses by its kind before trying)
    target = "/proc/pimpi-render-out"
    result = _invoke(["julia", *SMALL, "--out", target])
    assert result.exit_code == 2 and "proc file system" in result.output and target in result.output
    assert not os.path.exists(target)


def test_serial_run_writes_frames_stats_gantt_and_video(tmp_path: Path) -> None:
    out, stats, gantt = tmp_path / "out", tmp_path / "s.json", tmp_path / "g.png"
    video = tmp_path / "v.mp4"
    cmd = [*PIMPI, "render", "scene", "julia", *SMALL, "--out", str(out),
           "--stats", str(stats), "--gantt", str(gantt), "--video", str(video), "--fps", "5"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in out.glob("*.png")) == ["frame_00000.png", "frame_00001.png"]
    assert "imbalance" in proc.stdout and "Mpixel/s" in proc.stdout
    assert "2/2 frames" in proc.stderr, "plain progress lines when stderr is not a terminal"
    assert stats.stat().st_size > 0 and gantt.read_bytes()[:4] == b"\x89PNG"
    assert video.stat().st_size > 0 and b"ftyp" in video.read_bytes()[:16]
