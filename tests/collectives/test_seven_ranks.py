"""The MPI tests once more at 7 ranks (the harness stops at 5): non-powers of two past the fold."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]


@pytest.mark.timeout(200)
def test_all_algorithms_at_seven_ranks():
    cmd = [sys.executable, "-m", "pimpi", "run", "-n", "7", "--timeout", "120", "--",
           "-m", "pytest", "--with-mpi", "-m", "mpi", "-q", "-x", "-p", "no:cacheprovider",
           str(HERE / "test_algorithms_mpi.py")]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=180)
    tail = (proc.stdout + proc.stderr)[-3000:]
    assert proc.returncode == 0, tail
    assert " passed" in proc.stdout and "failed" not in proc.stdout, tail
