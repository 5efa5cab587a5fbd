"""The `jobs` fixture: run a program of progs/ under real mpirun (`pimpi run -- -m pimpi.futures`)
or locally, read its RESULT, and find processes left behind."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.helpers import leftovers, pimpi, result

PROGS = Path(__file__).resolve().parent / "progs"


def run_job(n: int, prog: str, *args: str, timeout: float = 120, module: bool = True,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """`pimpi run -n N --timeout T -- [-m pimpi.futures] PROG ARGS` (PROG: a progs/ file or a path)."""
    path = prog if os.path.sep in prog else str(PROGS / prog)
    target = ["-m", "pimpi.futures", path] if module else [path]
    return pimpi("run", "-n", str(n), "--timeout", str(timeout), "--", *target, *args,
                 timeout=timeout + 30, env=env)


def run_local(prog: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """The program with plain Python on this machine (local processes)."""
    path = prog if os.path.sep in prog else str(PROGS / prog)
    return subprocess.run([sys.executable, path, *args], capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL,
                          env={**os.environ, "PIMPI_FUTURES": "local"})


@pytest.fixture
def jobs() -> SimpleNamespace:
    """PROGS, run_job, run_local, result and leftovers, for the tests of this folder."""
    return SimpleNamespace(PROGS=PROGS, run_job=run_job, run_local=run_local, result=result, leftovers=leftovers)
