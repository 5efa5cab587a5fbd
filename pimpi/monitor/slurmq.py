"""Slurm's queue for the page, when Slurm is there: `squeue` asked at most every few seconds."""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

__all__ = ["SlurmQueue"]

CONFIGS = ("/etc/slurm/slurm.conf", "/etc/slurm-llnl/slurm.conf", "/usr/local/etc/slurm.conf")
FIELDS = ("id", "name", "user", "state", "time", "nodes", "where")


class SlurmQueue:
    """`rows()`: None without `squeue`; else the queue, or the one-line reason it is unreadable."""

    def __init__(self, every: float = 5.0, timeout: float = 5.0) -> None:
        configured = os.environ.get("SLURM_CONF") or any(Path(p).is_file() for p in CONFIGS)
        self.squeue = shutil.which("squeue") if configured else None  # installed but unused: no section
        self.every, self.timeout = every, timeout
        self._lock = threading.Lock()
        self._last = 0.0
        self._rows: dict[str, Any] | None = None

    def rows(self) -> dict[str, Any] | None:
        if self.squeue is None:
            return None
        with self._lock:
            if time.monotonic() - self._last >= self.every:
                self._rows = self._ask()
                self._last = time.monotonic()
            return self._rows

    def _ask(self) -> dict[str, Any]:
        argv = [self.squeue, "-h", "-o", "%i|%j|%u|%T|%M|%D|%R"]
        try:
            proc = subprocess.run(argv, capture_output=True, text=True, timeout=self.timeout)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return {"error": f"squeue: {exc}", "jobs": []}
        if proc.returncode != 0:
            lines = proc.stderr.strip().splitlines()
            return {"error": lines[-1] if lines else f"squeue exited with {proc.returncode}", "jobs": []}
        jobs = [dict(zip(FIELDS, line.split("|", len(FIELDS) - 1))) for line in proc.stdout.splitlines() if line]
        return {"error": "", "jobs": jobs[:200]}
