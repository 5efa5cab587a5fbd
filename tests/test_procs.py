"""pimpi.procs: a program runs in its own process group, and a timeout ends the whole group."""

from __future__ import annotations

import time
from pathlib import Path

from pimpi.procs import run_process


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_run_process_timeout_kills_the_whole_group(tmp_path):
    pids = tmp_path / "pids"
    script = f"sleep 60 & echo $! > {pids}; echo started; sleep 60"
    start = time.monotonic()
    res = run_process(["sh", "-c", script], timeout=1.0)
    assert res.timed_out and res.returncode != 0
    assert time.monotonic() - start < 30
    assert "started" in res.tail
    child = int(pids.read_text())
    deadline = time.monotonic() + 5
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(child), "the renderer's background child survived the timeout"


def test_run_process_reports_exit_code_and_missing_program():
    res = run_process(["sh", "-c", "echo boom >&2; exit 3"], timeout=30)
    assert res.returncode == 3 and not res.timed_out and res.tail == "boom"
    res = run_process(["/no/such/renderer"], timeout=30)
    assert res.returncode is None and "cannot start" in res.tail
