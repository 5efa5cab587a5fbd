"""Processes a virtual cluster started: telling a live one from a reused pid, and ending them."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

__all__ = ["start_time", "alive", "zombie", "kill_pids"]


def start_time(pid: int) -> int | None:
    """The process's start time in clock ticks (tells a live pid from a reused one)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[19])


def alive(pid: int, started: int | None) -> bool:
    """True while PID is still the process that was started at STARTED."""
    return started is not None and start_time(pid) == started


def kill_pids(pids: list[int], timeout: float = 10) -> list[int]:
    """SIGKILL PIDS and wait until they are gone; return those still there after TIMEOUT."""
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + timeout
    left = list(pids)
    while left and time.monotonic() < deadline:
        left = [p for p in left if Path(f"/proc/{p}").exists() and not zombie(p)]
        if left:
            time.sleep(0.05)
    return left


def zombie(pid: int) -> bool:
    """True when PID has exited but is not reaped yet (or is gone)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True
