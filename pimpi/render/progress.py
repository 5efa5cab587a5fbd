"""Progress on rank 0: a live bar on a terminal, plain lines in a log (done/total, rate, ETA)."""

from __future__ import annotations

import os
import sys
import threading
import time
from typing import TextIO

__all__ = ["Progress", "format_eta"]


def format_eta(seconds: float) -> str:
    """'42s', '3m05s', '1h02m' (or '?' when unknown)."""
    if seconds != seconds or seconds < 0 or seconds == float("inf"):
        return "?"
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{(seconds % 3600) // 60:02d}m"


class Progress:
    """Callable `progress(done, total)`: redraws a bar on a TTY, prints a line now and then otherwise.

    Plain mode prints at most one line per `interval` seconds (and the last one), so a log
    of a long render stays readable. Thread-safe: results arrive from a writer thread.
    """

    def __init__(self, total: int, label: str = "render", unit: str = "frames",
                 stream: TextIO | None = None, interval: float = 5.0, width: int = 30,
                 tty: bool | None = None) -> None:
        self.total = total
        self.label = label
        self.unit = unit
        self.stream = stream if stream is not None else sys.stderr
        self.interval = interval
        self.width = width
        self.tty = self._is_terminal() if tty is None else tty
        self.start = time.monotonic()
        self.last_print = float("-inf")
        self.done = 0
        self.lock = threading.Lock()
        self.closed = False

    def _is_terminal(self) -> bool:
        """Our stream is a terminal, or the launcher said its own is (PIMPI_TTY=1).

        Under mpirun a rank's stderr is a pipe even when the user watches a terminal, so
        `pimpi run` (or the user) passes the answer down in PIMPI_TTY.
        """
        flag = os.environ.get("PIMPI_TTY", "")
        if flag in ("0", "1"):
            return flag == "1"
        try:
            return self.stream.isatty()
        except (AttributeError, ValueError):
            return False

    def line(self, done: int, total: int) -> str:
        """The text of one update."""
        elapsed = max(time.monotonic() - self.start, 1e-9)
        rate = done / elapsed
        eta = (total - done) / rate if rate > 0 else float("inf")
        pct = 100.0 * done / total if total else 100.0
        text = f"{self.label}: {done}/{total} {self.unit} ({pct:3.0f}%) {rate:.2f} {self.unit}/s ETA {format_eta(eta)}"
        if self.tty:
            filled = int(self.width * done / total) if total else self.width
            bar = "#" * filled + "-" * (self.width - filled)
            text = f"[{bar}] " + text
        return text

    def __call__(self, done: int, total: int | None = None) -> None:
        with self.lock:
            if done == 0:  # the work starts now: rates count from here
                self.start = time.monotonic()
            total = self.total if total is None else total
            self.total = total
            self.done = done
            now = time.monotonic()
            if done == 0:
                return
            if self.tty:
                if done < total and now - self.last_print < 0.1:
                    return  # at most ten redraws a second
                self.last_print = now
                self.stream.write("\r\x1b[K" + self.line(done, total))
                self.stream.flush()
            elif done >= total or now - self.last_print >= self.interval:
                self.last_print = now
                self.stream.write(self.line(done, total) + "\n")
                self.stream.flush()

    def close(self) -> None:
        """End the bar's line (on a terminal)."""
        with self.lock:
            if self.tty and not self.closed:
                self.stream.write("\n")
                self.stream.flush()
            self.closed = True
