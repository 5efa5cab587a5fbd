"""The `jobs` fixture: run a program of progs/ under real mpirun (`pimpi run -- -m pimpi.futures`)
or locally, read its RESULT, and find processes left behind."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

PROGS = Path(__file__).resolve().parent / "progs"


def run_job(n: int, prog: str, *args: str, timeout: float = 120, module: bool = True,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """`pimpi run -n N --timeout T -- [-m pimpi.futures] PROG ARGS` (PROG: a progs/ file or a path)."""
    path = prog if os.path.sep in prog else str(PROGS / prog)
    target = ["-m", "pimpi.futures", path] if module else [path]
    return subprocess.run([sys.executable, "-m", "pimpi", "run", "-n", str(n), "--timeout", str(timeout),
                           "--", *target, *args], capture_output=True, text=True, timeout=timeout + 30,
                          stdin=subprocess.DEVNULL, env=env)


def run_local(prog: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """The program with plain Python on this machine (local processes)."""
    path = prog if os.path.sep in prog else str(PROGS / prog)
    return subprocess.run([sys.executable, path, *args], capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL,
                          env={**os.environ, "PIMPI_FUTURES": "local"})


def result(proc: subprocess.CompletedProcess) -> object:
    """The JSON after 'RESULT ' in a run's output."""
    line = next((l for l in proc.stdout.splitlines() if l.startswith("RESULT ")), None)
    assert line is not None, f"no RESULT line (exit {proc.returncode}): {proc.stderr[-2000:]}"
    return json.loads(line[len("RESULT "):])


def leftovers(marker: str, wait: float = 10.0) -> list[str]:
    """Command lines of processes (other than this one) that mention `marker`, after `wait` s at most."""
    deadline = time.monotonic() + wait
    while True:
        found = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit() or int(entry) == os.getpid():
                continue
            try:
                words = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            line = " ".join(w.decode(errors="replace") for w in words)
            if marker in line:
                found.append(f"{entry}: {line}")
        if not found or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


@pytest.fixture
def jobs() -> SimpleNamespace:
    """PROGS, run_job, run_local, result and leftovers, for the tests of this folder."""
    return SimpleNamespace(PROGS=PROGS, run_job=run_job, run_local=run_local, result=result, leftovers=leftovers)
