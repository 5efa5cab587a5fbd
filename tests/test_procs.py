"""pimpi.procs: a program runs in its own process group, a timeout ends the whole group, and a
stopped or killed owner leaves nothing behind (the guard, the parent watch, exit codes)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pimpi.cluster.launch import exit_status
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


def _new_session_child(pid_file: Path) -> str:
    """Shell text: a grandchild that leaves the program's process group and session (setsid)
    and writes its pid to `pid_file`."""
    return f"setsid sh -c 'echo $$ > {pid_file}.tmp; mv {pid_file}.tmp {pid_file}; exec sleep 300' &"


@pytest.mark.parametrize("ending", ["exit", "timeout"])
def test_run_process_ends_a_grandchild_that_left_the_group_with_setsid(tmp_path, ending):
    pid_file = tmp_path / "pid"
    wait = "while [ ! -e {0} ]; do sleep 0.05; done".format(pid_file)
    script = _new_session_child(pid_file) + wait + ("; exit 0" if ending == "exit" else "; sleep 60")
    res = run_process(["sh", "-c", script], timeout=None if ending == "exit" else 5.0)
    assert res.timed_out == (ending == "timeout")
    grandchild = int(pid_file.read_text())
    assert not _alive(grandchild), "the renderer's setsid grandchild survived its program"


@pytest.mark.timeout(120)
def test_the_guard_ends_a_setsid_grandchild_of_an_owner_killed_with_sigkill(tmp_path):
    pid_file = tmp_path / "pid"
    code = ("import sys\nfrom pimpi.procs import run_process\n"
            "run_process(['sh', '-c', sys.argv[1] + ' sleep 300'])\n")
    owner = subprocess.Popen([sys.executable, "-c", code, _new_session_child(pid_file)])
    try:
        assert _gone(lambda: not pid_file.exists())
        grandchild = int(pid_file.read_text())
        assert _alive(grandchild)
        owner.kill()  # SIGKILL: only its guard can clean up
        owner.wait(timeout=30)
        assert _gone(lambda: _alive(grandchild)), "the setsid grandchild outlived its killed owner"
    finally:
        if owner.poll() is None:
            owner.kill()


def test_run_process_reports_exit_code_and_missing_program():
    res = run_process(["sh", "-c", "echo boom >&2; exit 3"], timeout=30)
    assert res.returncode == 3 and not res.timed_out and res.tail == "boom"
    res = run_process(["/no/such/renderer"], timeout=30)
    assert res.returncode is None and "cannot start" in res.tail


# -- stops: the guard, the parent watch, exit codes ------------------------------------------

_OWNER = r'''
import sys, time
from pimpi import procs
proc = procs.start(["sh", "-c", "sleep 300 & sleep 300"], guard=True)
with procs.temporary_folder("pimpi-test-", sys.argv[1]) as folder:
    print(proc.pid, folder, procs.guard_pid(), flush=True)
    time.sleep(300)
'''


def _gone(test, timeout: float = 30) -> bool:
    deadline = time.monotonic() + timeout
    while test() and time.monotonic() < deadline:
        time.sleep(0.05)
    return not test()


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return any(_alive(int(p)) for p in os.listdir("/proc") if p.isdigit() and _pgid(int(p)) == pgid)


def _pgid(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[2])
    except (OSError, IndexError, ValueError):
        return -1


@pytest.mark.timeout(120)
def test_the_guard_ends_groups_and_removes_folders_of_an_owner_killed_with_sigkill(tmp_path):
    owner = subprocess.Popen([sys.executable, "-c", _OWNER, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        pgid, folder, guard = owner.stdout.readline().split()
        assert _group_alive(int(pgid)) and Path(folder).is_dir()
        owner.kill()  # SIGKILL: no clean-up of its own can run
        owner.wait(timeout=30)
        assert _gone(lambda: _group_alive(int(pgid)))
        assert _gone(lambda: Path(folder).exists())
        assert _gone(lambda: _alive(int(guard)))  # and the guard itself ends
    finally:
        if owner.poll() is None:
            owner.kill()


@pytest.mark.timeout(120)
def test_a_process_whose_parent_dies_is_stopped_and_cleans_up(tmp_path):
    """A parent SIGKILLed: the child's watch turns that into SIGTERM -> Stopped -> exit 143."""
    child = ("import sys, time\nfrom pimpi import procs\n"
             "try:\n    with procs.stopping():\n        print('ready', flush=True)\n        time.sleep(300)\n"
             "except procs.Stopped as stop:\n    open(sys.argv[1], 'w').write(str(stop.exit_code))\n")
    done = tmp_path / "stopped"
    parent = subprocess.Popen(["sh", "-c", '"$@" & wait; :', "sh", sys.executable, "-c", child, str(done)],
                              stdout=subprocess.PIPE, text=True)
    assert parent.stdout.readline().strip() == "ready"
    parent.kill()
    parent.wait(timeout=30)
    assert _gone(lambda: not done.exists())
    assert done.read_text() == "143"


def test_stopping_keeps_a_signal_ignored_under_nohup():
    previous = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        from pimpi import procs

        with procs.stopping():
            assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
            assert signal.getsignal(signal.SIGTERM) not in (signal.SIG_DFL, signal.SIG_IGN)
            with procs.stop_signals():  # as `pimpi run` nests it
                assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGHUP, previous)


@pytest.mark.parametrize("raw, mapped", [(0, 0), (1, 1), (2, 2), (124, 124), (213, 1), (250, 1), (255, 1),
                                         (-9, 1), (-15, 1), (130, 1), (143, 1)])
def test_mpiruns_raw_exit_codes_become_pimpis(raw, mapped):
    assert exit_status(raw) == mapped
