"""The MPI tests once more at 7 ranks (the harness stops at 5): non-powers of two past the fold."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]


def _run_at_seven(files: list[str], seconds: int) -> None:
    """The MPI tests in `files` under `pimpi run -n 7`; they must pass, with none failed."""
    cmd = [sys.executable, "-m", "pimpi", "run", "-n", "7", "--timeout", str(seconds - 50), "--",
           "-m", "pytest", "--with-mpi", "-m", "mpi", "-q", "-x", "-p", "no:cacheprovider",
           *(str(HERE / name) for name in files)]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=seconds + 10)
    tail = (proc.stdout + proc.stderr)[-3000:]
    assert proc.returncode == 0, tail
    assert " passed" in proc.stdout and "failed" not in proc.stdout, tail


@pytest.mark.timeout(200)
def test_all_algorithms_at_seven_ranks():
    _run_at_seven(["test_algorithms_mpi.py"], 170)


@pytest.mark.timeout(330)
def test_nonblocking_schedules_and_the_agreement_at_seven_ranks():
    """The schedules (library and drop-in Comm) and the agreement's count cells at 7 ranks."""
    _run_at_seven(["test_nonblocking_mpi.py", "test_agreement_mpi.py"], 300)
