"""`pimpi monitor` without a cluster: status files, the server's rules, bad input, a stop that leaves nothing."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from pimpi.jobstatus import STATUS_NAME, StatusFile, read_status
from pimpi.monitor.jobs import JobFinder, summarise


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(*args: str) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, "-m", "pimpi", "monitor", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    assert line.startswith("pimpi monitor: http"), line + proc.stderr.read()
    return proc, line.split()[2]


def _get(url: str, headers: dict | None = None, method: str = "GET") -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(request, timeout=20) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def _stop(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=20)


@pytest.fixture
def served(tmp_path):
    """A monitor on loopback over tmp_path, with one running job, one finished and one corrupt."""
    (tmp_path / "a").mkdir()
    running = StatusFile(tmp_path / "a", "render-scene", "mandelbrot", total=10, ranks=2, interval=0)
    for i in range(4):
        running.event(f"f{i}", i % 2, i * 0.5, i * 0.5 + 0.5, True)
    running.event("f4", 1, 2.0, 2.2, False, "renderer exited with 3: missing texture wood.png")
    (tmp_path / "a" / "frame_00003.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    running.output("frame_00003.png")
    (tmp_path / "b").mkdir()
    done = StatusFile(tmp_path / "b", "render-cmd", "blender", total=2, interval=0)
    done.event("c0", 0, 0, 1, True)
    done.event("c1", 0, 1, 2, True)
    done.finish()
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / STATUS_NAME).write_text('{"pimpi_status": 1, "total": ')
    proc, url = _start("--port", str(_free_port()), str(tmp_path))
    yield tmp_path, proc, url
    if proc.poll() is None:
        _stop(proc)


def test_state_lists_running_finished_and_corrupt_jobs_and_keeps_serving(served):
    root, proc, url = served
    status, body = _get(url + "api/state")
    assert status == 200
    state = json.loads(body)
    jobs = {Path(j["id"].split(":", 1)[1]).parent.name: j for j in state["jobs"]}
    assert jobs["a"]["state"] == "running" and jobs["a"]["done"] == 4 and jobs["a"]["total"] == 10
    assert jobs["a"]["eta"] is not None and jobs["a"]["eta"] > 0
    assert jobs["a"]["failed"] == [{"unit": "f4", "message": "renderer exited with 3: missing texture wood.png"}]
    assert jobs["b"]["state"] == "done" and jobs["b"]["done"] == 2
    assert jobs["c"]["state"] == "unreadable" and "not JSON" in jobs["c"]["error"]
    assert [n["host"] for n in state["nodes"]] == ["localhost"]
    # the corrupt file mended while the monitor runs: the job becomes readable, nothing restarted
    StatusFile(root / "c", "transcode", "film.mp4", total=1, interval=0)
    time.sleep(0.1)
    status, body = _get(url + "api/state")
    assert {j["name"]: j["state"] for j in json.loads(body)["jobs"]}["film.mp4"] == "running"
    assert proc.poll() is None


def test_only_the_jobs_latest_image_inside_its_folder_is_served(served):
    root, _proc, url = served
    job = "0:a/" + STATUS_NAME
    ok, body = _get(url + f"api/image?job={job}&name=frame_00003.png")
    assert ok == 200 and body.startswith(b"\x89PNG")
    (root / "a" / "secret.png").symlink_to("/etc/hostname")
    for name in ("frame_00002.png", "../b/" + STATUS_NAME, "/etc/passwd", "secret.png"):
        assert _get(url + f"api/image?job={job}&name={name}")[0] == 404, name
    os.replace(root / "a" / "frame_00003.png", root / "a" / "old.png")
    (root / "a" / "frame_00003.png").symlink_to("/etc/hostname")  # swapped for a link out after the fact
    assert _get(url + f"api/image?job={job}&name=frame_00003.png")[0] == 404


def test_read_only_and_no_unknown_paths(served):
    _root, _proc, url = served
    assert _get(url + "api/state", method="POST")[0] == 405
    assert _get(url + "api/state", method="DELETE")[0] == 405
    assert _get(url + "assets/../../setup.cfg")[0] == 404
    status, page = _get(url)
    assert status == 200 and b"pimpi monitor" in page and b"http" not in page.replace(b"http-equiv", b"")
    status, script = _get(url + "assets/app.js")
    assert status == 200 and b"innerHTML" not in script  # data reaches the page as text only


def test_a_token_is_required_when_given(tmp_path):
    proc, url = _start("--port", str(_free_port()), "--token", "s3cret", str(tmp_path))
    try:
        bare = url.split("?")[0]
        assert url.endswith("?token=s3cret")
        assert _get(bare + "api/state")[0] == 403
        assert _get(bare + "api/state?token=wrong")[0] == 403
        assert _get(bare + "api/state", {"X-Pimpi-Token": "s3cret"})[0] == 200
        assert _get(bare + "?token=s3cret")[0] == 200
        assert _get(bare + "api/image?job=x&name=y.png")[0] == 403
    finally:
        _stop(proc)


def test_off_loopback_a_random_token_is_made(tmp_path):
    proc, url = _start("--host", "0.0.0.0", "--port", str(_free_port()), str(tmp_path))
    try:
        token = url.split("?token=")[1]
        assert len(token) >= 16
        local = url.replace("0.0.0.0", "127.0.0.1")
        assert _get(local.split("?")[0] + "api/state")[0] == 403
        assert _get(local.replace("/?", "/api/state?"))[0] == 200
    finally:
        _stop(proc)


@pytest.mark.parametrize("args, words", [
    (["/nonexistent/pimpi-frames"], ["/nonexistent/pimpi-frames", "does not exist"]),
    (["--port", "0"], ["--port", "0"]),
    (["--port", "70000"], ["--port", "70000"]),
    (["--token", " "], ["--token", "empty"]),
    (["--hostfile", "/nonexistent/hostfile"], ["--hostfile", "/nonexistent/hostfile"]),
])
def test_bad_input_is_one_usage_error(tmp_path, args, words):
    proc = subprocess.run([sys.executable, "-m", "pimpi", "monitor", *args], capture_output=True, text=True,
                          timeout=30, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and all(w in proc.stderr for w in words), proc.stderr


def test_a_port_in_use_is_refused_by_name(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        proc = subprocess.run([sys.executable, "-m", "pimpi", "monitor", "--port", str(port), str(tmp_path)],
                              capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2 and f"port {port} on 127.0.0.1 is in use" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr


def test_status_file_is_throttled_atomic_and_ends_once(tmp_path):
    status = StatusFile(tmp_path, "render-scene", "x", total=100, interval=3600)
    first = (tmp_path / STATUS_NAME).read_bytes()
    for i in range(50):
        status.event(f"f{i}", 0, i, i + 1, True)
    assert (tmp_path / STATUS_NAME).read_bytes() == first  # at most once per interval
    status.finish("failed", "2 of 100 units failed")
    data = read_status(tmp_path / STATUS_NAME)
    assert data["state"] == "failed" and data["done"] == 50 and data["error"] == "2 of 100 units failed"
    assert not [p for p in tmp_path.iterdir() if p.name != STATUS_NAME]  # no temp file left
    with pytest.raises(ValueError, match="unknown final state 'maybe'"):
        status.finish("maybe")


def test_a_status_whose_writer_died_is_lost_and_a_quiet_remote_one_silent(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    data = {"pimpi_status": 1, "total": 4, "done": 1, "started": time.time() - 60, "updated": time.time() - 30,
            "events": [], "failed": {}, "state": "running", "host": socket.gethostname(), "pid": dead.pid}
    assert summarise(data, time.time(), socket.gethostname())["state"] == "lost"
    data.update(host="elsewhere", updated=time.time() - 600)
    assert summarise(data, time.time(), socket.gethostname())["state"] == "silent"


def test_finder_does_not_follow_links_or_enter_hidden_folders(tmp_path):
    (tmp_path / "outside").mkdir()
    StatusFile(tmp_path / "outside", "render-scene", "x", total=1)
    (tmp_path / "watched").mkdir()
    (tmp_path / "watched" / "link").symlink_to(tmp_path / "outside")
    (tmp_path / "watched" / ".pimpi-chunk-1").mkdir()
    StatusFile(tmp_path / "watched" / ".pimpi-chunk-1", "render-scene", "y", total=1)
    (tmp_path / "watched" / "job").mkdir()
    StatusFile(tmp_path / "watched" / "job", "render-scene", "z", total=1)
    assert [j["name"] for j in JobFinder([tmp_path / "watched"]).jobs()] == ["z"]
