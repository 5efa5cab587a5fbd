"""Jobs write the status file the monitor reads: a scene render, a render cmd with a failing frame, a stopped job."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pimpi.jobstatus import STATUS_NAME, read_status

RENDERER = """\
import sys, time
from pathlib import Path
start, end, out = int(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3])
for frame in range(start, end + 1):
    time.sleep(float(sys.argv[4]))
    if frame == 3:
        sys.exit(f"frame {frame}: texture wood.png is missing")
    (out / f"f{frame:03d}.txt").write_text(str(frame))
"""


def _pimpi(*args: str, cwd: Path, timeout: float = 150) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pimpi", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout)


@pytest.mark.parametrize("schedule", ["dynamic", "static"])
def test_a_scene_render_ends_done_with_every_frame_and_its_newest_image(tmp_path, schedule):
    proc = _pimpi("run", "-n", "3", "--timeout", "120", "--", "render", "scene", "mandelbrot", "--frames", "7",
                  "--width", "48", "--height", "32", "--schedule", schedule, "-o", "out", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    data = read_status(tmp_path / "out" / STATUS_NAME)
    assert (data["state"], data["done"], data["total"], data["ranks"]) == ("done", 7, 7, 3)
    assert (tmp_path / "out" / data["latest"]).is_file() and data["latest"].endswith(".png")
    if schedule == "dynamic":
        assert sorted(e[0] for e in data["events"]) == [f"f{i}" for i in range(7)]
    rerun = _pimpi("run", "-n", "2", "--timeout", "120", "--", "render", "scene", "mandelbrot", "--frames", "7",
                   "--width", "48", "--height", "32", "--schedule", schedule, "-o", "out", cwd=tmp_path)
    assert rerun.returncode == 0, rerun.stderr
    again = read_status(tmp_path / "out" / STATUS_NAME)
    assert (again["state"], again["done"], again["total"], again["skipped"]) == ("done", 0, 0, 7)


def test_a_render_cmd_with_a_frame_that_fails_for_good_ends_failed_naming_it(tmp_path):
    (tmp_path / "r.py").write_text(RENDERER)
    proc = _pimpi("run", "-n", "2", "--timeout", "120", "--", "render", "cmd", "--frames", "0-5", "--chunk", "1",
                  "--retries", "1", "--out", "out", "--expect", "f{frame:03d}.txt", "--",
                  sys.executable, str(tmp_path / "r.py"), "{start}", "{end}", "{out}", "0", cwd=tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    data = read_status(tmp_path / "out" / STATUS_NAME)
    assert data["state"] == "failed" and data["done"] == 5 and data["total"] == 6
    assert "texture wood.png is missing" in data["failed"]["3"] or \
        any("texture wood.png is missing" in m for m in data["failed"].values()), data["failed"]
    assert data["attempts_failed"] == 2  # the first try and the retry on another rank


def test_a_stopped_job_says_stopped(tmp_path):
    (tmp_path / "r.py").write_text(RENDERER.replace("if frame == 3:", "if False:"))
    proc = subprocess.Popen([sys.executable, "-m", "pimpi", "run", "-n", "2", "--timeout", "120", "--", "render",
                             "cmd", "--frames", "0-40", "--chunk", "1", "--out", "out", "--expect", "f{frame:03d}.txt",
                             "--", sys.executable, str(tmp_path / "r.py"), "{start}", "{end}", "{out}", "0.5"],
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    status = tmp_path / "out" / STATUS_NAME
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (status.exists() and read_status(status)["done"] >= 2):
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=60)
    data = read_status(status)
    assert data["state"] in ("stopped", "failed"), data["state"]
    assert data["state"] == "stopped" or "stop" in data["error"], data["error"]
    assert 2 <= data["done"] < 41
