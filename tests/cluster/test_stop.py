"""A stopped job leaves nothing: real `pimpi run -- render cmd` jobs whose renderers start
process trees in their own sessions are stopped every way a user or the system stops them
(Ctrl-C, SIGTERM, SIGHUP, --timeout, the launcher's parent or the launcher itself killed
with SIGKILL); afterwards no process of the job runs and no staging folder remains.

The job's processes are found by a unique environment marker every one of them inherits
(launcher, mpirun, ranks, guards, renderers and their children), not by name.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from pimpi.testing import marked_processes, wait_for

# The renderer: says it started (in its chunk's staging folder), then waits in a process
# tree of its own session: a shell, a background child, a foreground child, and a grandchild
# that left for a session of its own (setsid): only the environment marker still finds it.
RENDERER = ["sh", "-c", 'touch "$1/started"; setsid sleep 300 & sleep 300 & sleep 300', "sh", "{out}"]
RANKS = 2


def _render_cmd(out: Path) -> list[str]:
    return ["render", "cmd", "--frames", "1-8", "--out", str(out), "--expect", "f{frame}.png",
            "--retries", "0", "-q", "--", *RENDERER]



def _left(marker: str, wait: float = 30) -> list[str]:
    """The job's processes still running once they had `wait` s to end (polled, not timed)."""
    deadline = time.monotonic() + wait
    while True:
        found = marked_processes(marker)
        if not found or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


def _renderers_started(out: Path, count: int) -> bool:
    return len(list(out.glob(".pimpi-chunk-*/started"))) >= count


def _stage_folders(out: Path) -> list[str]:
    return sorted(p.name for p in out.glob(".pimpi-chunk-*"))


WAYS = {
    # how the job is stopped: (extra pimpi run options, signal to the launcher, expected exit)
    "ctrl-c": ([], signal.SIGINT, 130),
    "sigterm": ([], signal.SIGTERM, 143),
    "sighup": ([], signal.SIGHUP, 129),
}


@pytest.mark.timeout(240)
@pytest.mark.parametrize("way", sorted(WAYS))
def test_a_signal_to_the_launcher_ends_every_process_and_folder(tmp_path, way):
    options, signum, expected = WAYS[way]
    marker = f"PIMPI_TEST_JOB={uuid.uuid4().hex}"
    out = tmp_path / "out"
    env = {**os.environ, marker.split("=")[0]: marker.split("=")[1]}
    launcher = subprocess.Popen(
        [sys.executable, "-m", "pimpi", "run", "-n", str(RANKS), *options, "--", *_render_cmd(out)],
        env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True)  # its own group: the Ctrl-C goes to the group, as a terminal sends it
    try:
        wait_for(lambda: _renderers_started(out, RANKS), 150, "a renderer on every rank")
        os.killpg(launcher.pid, signum) if signum == signal.SIGINT else launcher.send_signal(signum)
        _out, err = launcher.communicate(timeout=90)
    finally:
        if launcher.poll() is None:  # the test failed: do not leave the job behind
            launcher.kill()
    assert launcher.returncode == expected, err
    assert _left(marker) == []
    assert _stage_folders(out) == []


@pytest.mark.timeout(240)
def test_timeout_ends_every_process_and_folder(tmp_path):
    marker = f"PIMPI_TEST_JOB={uuid.uuid4().hex}"
    out = tmp_path / "out"
    env = {**os.environ, marker.split("=")[0]: marker.split("=")[1]}
    seen = []
    launcher = subprocess.Popen(
        [sys.executable, "-m", "pimpi", "run", "-n", str(RANKS), "--timeout", "60", "--", *_render_cmd(out)],
        env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: _renderers_started(out, 1) or launcher.poll() is not None, 150, "a renderer")
        seen = _stage_folders(out)
        _out, err = launcher.communicate(timeout=150)
    finally:
        if launcher.poll() is None:
            launcher.kill()
    assert seen, "the job timed out before any renderer started: nothing was tested"
    assert launcher.returncode == 124, err
    assert "timed out" in err
    assert _left(marker) == []
    assert _stage_folders(out) == []


@pytest.mark.timeout(240)
@pytest.mark.parametrize("victim", ["parent", "launcher"])
def test_sigkill_of_the_launchers_parent_or_the_launcher_ends_the_job(tmp_path, victim):
    """SIGKILL cannot be caught: the launcher notices its parent died (and stops as on
    SIGTERM); if the launcher itself is killed, its guard ends mpirun and the ranks' guards
    end their renderers and remove their folders."""
    marker = f"PIMPI_TEST_JOB={uuid.uuid4().hex}"
    out = tmp_path / "out"
    env = {**os.environ, marker.split("=")[0]: marker.split("=")[1]}
    pid_file = tmp_path / "launcher.pid"
    # a shell that keeps running as the launcher's parent (`; :` stops it from exec'ing)
    script = '"$@" & echo $! > "$PIDFILE"; wait; :'
    parent = subprocess.Popen(
        ["sh", "-c", script, "sh", sys.executable, "-m", "pimpi", "run", "-n", str(RANKS), "--",
         *_render_cmd(out)], env={**env, "PIDFILE": str(pid_file)}, stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_for(lambda: _renderers_started(out, RANKS), 150, "a renderer on every rank")
        launcher = int(pid_file.read_text())
        os.kill(parent.pid if victim == "parent" else launcher, signal.SIGKILL)
        parent.wait(timeout=30)
        left = _left(marker, wait=60)
    finally:
        for pid in [int(line.split()[0]) for line in marked_processes(marker)]:
            try:  # the test failed: do not leave the job behind
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    assert left == []
    assert _stage_folders(out) == []


@pytest.mark.timeout(240)
@pytest.mark.parametrize("signum, expected", [(signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_exercises_check_ends_its_job_and_folder_on_sigterm_and_sighup(tmp_path, signum, expected):
    """The grader's mpirun (a deadlocking learner file, a long case timeout) ends on SIGTERM
    or SIGHUP and its temporary folder is removed; it exits 143/129 like `pimpi run`."""
    marker = f"PIMPI_TEST_JOB={uuid.uuid4().hex}"
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    deadlock = Path(__file__).resolve().parents[1] / "collectives" / "buggy" / "deadlock_ring.py"
    env = {**os.environ, marker.split("=")[0]: marker.split("=")[1], "TMPDIR": str(tmp)}
    grader = subprocess.Popen(
        [sys.executable, "-m", "pimpi", "exercises", "check", "ring_pass", str(deadlock), "-n", "3",
         "--timeout", "200"], env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)
    try:
        # its folder exists and its mpirun's ranks have written their first progress record
        wait_for(lambda: any(tmp.glob("pimpi-check-*/**/rank0.jsonl")), 150, "the grader's job")
        grader.send_signal(signum)
        _out, err = grader.communicate(timeout=90)
    finally:
        if grader.poll() is None:
            grader.kill()
    assert grader.returncode == expected, err
    assert _left(marker) == []
    assert list(tmp.iterdir()) == []
