"""What many tests need: run `pimpi`, read a program's RESULT line, find the processes a job
left behind, and the ssh command line into a virtual node."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

__all__ = ["PIMPI", "pimpi", "result", "processes", "leftovers", "ssh_command"]

PIMPI = [sys.executable, "-m", "pimpi"]  # the command line as users run it, from this venv


def pimpi(*args: str, timeout: float = 120, **options: Any) -> subprocess.CompletedProcess:
    """`python -m pimpi ARGS`, output captured as text, no stdin (a test never waits on a prompt)."""
    kwargs = {"capture_output": True, "text": True, "stdin": subprocess.DEVNULL, **options}
    return subprocess.run([*PIMPI, *args], timeout=timeout, **kwargs)


def result(proc: subprocess.CompletedProcess, prefix: str = "RESULT ") -> Any:
    """The JSON after 'RESULT ' in a run's output (the test programs print one such line)."""
    line = next((l for l in proc.stdout.splitlines() if l.startswith(prefix)), None)
    assert line is not None, f"no {prefix.strip()} line (exit {proc.returncode}): {proc.stderr[-2000:]}"
    return json.loads(line[len(prefix):])


def processes(match: Callable[[list[str]], bool]) -> list[tuple[int, list[str]]]:
    """(pid, argv) of every process but this one whose argv `match` accepts."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            words = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        argv = [w.decode(errors="replace") for w in words]
        if match(argv):
            found.append((int(entry), argv))
    return found


def leftovers(marker: str, wait: float = 10.0) -> list[str]:
    """'pid: command line' of processes (other than this one) that mention `marker`, after
    `wait` s at most (processes that are ending get the time to end)."""
    deadline = time.monotonic() + wait
    while True:
        found = [f"{pid}: {' '.join(argv)}" for pid, argv in processes(lambda argv: marker in " ".join(argv))]
        if not found or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


def ssh_command(key: str | os.PathLike, known_hosts: str | os.PathLike, *target_and_command: str,
                connect_timeout: int = 30) -> list[str]:
    """ssh with a cluster's own key and known_hosts, strictly checked and never prompting,
    then `target_and_command` (user@host and the command; none: the options alone)."""
    return ["ssh", "-i", str(key), "-o", f"UserKnownHostsFile={known_hosts}", "-o", "StrictHostKeyChecking=yes",
            "-o", "BatchMode=yes", "-o", f"ConnectTimeout={connect_timeout}", *target_and_command]
