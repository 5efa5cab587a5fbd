"""A job's status file: rank 0 writes `.pimpi-status.json` into the job's folder for `pimpi monitor`.

Written atomically, at most once a second while the job runs and once when it ends, from
what rank 0 already knows (no MPI traffic). Readers get the old file or the whole new
one. The monitor reads nothing else of a job, so the format is versioned (`pimpi_status`).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import time
from pathlib import Path
from typing import Any, Iterator

from pimpi.fileio import atomic_write

__all__ = ["StatusFile", "STATUS_NAME", "FORMAT", "read_status", "job_status", "status_name", "STATUS_GLOB", "MAX_EVENTS", "MAX_FAILURES"]

STATUS_NAME = ".pimpi-status.json"
STATUS_GLOB = ".pimpi-status*.json"


def status_name(stem: str = "") -> str:
    """`.pimpi-status.json`, or `.pimpi-status.STEM.json` for one of several jobs in a folder."""
    if "/" in stem or stem.startswith("."):
        raise ValueError(f"a status stem is a plain name, got {stem!r}")
    return f".pimpi-status.{stem}.json" if stem else STATUS_NAME

FORMAT = 1
MAX_EVENTS = 2000     # the newest attempts kept for the Gantt chart (a few hundred KB at most)
MAX_FAILURES = 200    # failed units kept with their messages
MAX_MESSAGE = 500


class StatusFile:
    """Rank 0's view of one job, written to `folder/.pimpi-status.json`.

    `kind` says what the job is (`render-scene`, `render-cmd`, `transcode`, ...), `name`
    what it renders; `total` counts the units of this run, `skipped` those a journal already
    had. Thread-safe: the scheduler and writer threads both report. A failing write (full
    disk, folder gone) never stops the job; the error is kept in `write_error`.
    """

    def __init__(self, folder: str | os.PathLike, kind: str, name: str, *, total: int,
                 skipped: int = 0, ranks: int = 1, interval: float = 1.0, stem: str = "") -> None:
        if total < 0 or skipped < 0:
            raise ValueError(f"total and skipped must be >= 0, got {total} and {skipped}")
        self.path = Path(folder) / status_name(stem)
        self.interval = interval
        self.write_error = ""
        self._lock = threading.Lock()
        self._last = 0.0
        now = time.time()
        self._data: dict[str, Any] = {
            "pimpi_status": FORMAT, "kind": kind, "name": name, "host": socket.gethostname(),
            "pid": os.getpid(), "ranks": ranks, "state": "running", "error": "",
            "started": now, "updated": now, "total": total, "skipped": skipped, "done": 0,
            "failed": {}, "attempts_failed": 0, "events": [], "latest": "",
        }
        self._write(force=True)

    def event(self, key: str, rank: int, start: float, end: float, ok: bool, error: str = "") -> None:
        """One attempt of one unit ended (seconds since the job's start, as TaskEvent has them)."""
        with self._lock:
            data = self._data
            data["events"].append([key, rank, round(start, 3), round(end, 3), ok])
            if len(data["events"]) > MAX_EVENTS:
                del data["events"][: len(data["events"]) - MAX_EVENTS]
            if ok:
                data["done"] += 1
                data["failed"].pop(key, None)
            else:
                data["attempts_failed"] += 1
                if key in data["failed"] or len(data["failed"]) < MAX_FAILURES:
                    data["failed"][key] = error[:MAX_MESSAGE]
        self._write()

    def output(self, name: str) -> None:
        """The newest finished output file, relative to the folder (the page's thumbnail)."""
        with self._lock:
            self._data["latest"] = name
        self._write()

    def progress(self, done: int) -> None:
        """Units finished so far, for schedules that report no per-unit events."""
        with self._lock:
            self._data["done"] = done
        self._write()

    def finish(self, state: str = "done", error: str = "") -> None:
        """The job ended: `done`, `failed` or `stopped`; always written."""
        if state not in ("done", "failed", "stopped"):
            raise ValueError(f"unknown final state {state!r}")
        with self._lock:
            self._data["state"] = state
            self._data["error"] = error[:MAX_MESSAGE]
        self._write(force=True)

    @property
    def finished(self) -> bool:
        return self._data["state"] != "running"

    def _write(self, force: bool = False) -> None:
        with self._lock:
            now = time.time()
            if not force and now - self._last < self.interval:
                return
            self._last = now
            self._data["updated"] = now
            text = json.dumps(self._data, separators=(",", ":"))
            try:
                atomic_write(self.path, text.encode())
                self.write_error = ""
            except OSError as exc:
                self.write_error = f"{self.path}: {exc.strerror or exc}"


@contextlib.contextmanager
def job_status(comm: Any, folder: str | os.PathLike | None, kind: str, name: str, *, total: int,
               skipped: int = 0, stem: str = "") -> Iterator[StatusFile | None]:
    """Rank 0 of a job with an output folder gets a StatusFile (other ranks, or no folder:
    None). Ends it `done` when the block ends, unless the block ended it; `stopped` on
    Ctrl-C or a stop signal, `failed` with the one-line reason on any other exception."""
    if comm.rank != 0 or folder is None:
        yield None
        return
    status = StatusFile(folder, kind, name, total=total, skipped=skipped, ranks=comm.size, stem=stem)
    try:
        yield status
    except BaseException as exc:
        if not status.finished:
            stopped = isinstance(exc, KeyboardInterrupt) or type(exc).__name__ == "Stopped"
            reason = " ".join(str(exc).split()) or type(exc).__name__
            status.finish("stopped" if stopped else "failed", reason)
        raise
    if not status.finished:
        status.finish()


def read_status(path: str | os.PathLike, max_bytes: int = 4 << 20) -> dict[str, Any]:
    """A status file's content; ValueError naming the file when it is not one we can read."""
    path = Path(path)
    try:
        with open(path, "rb") as fh:  # a regular file only (the caller checked), bounded read
            raw = fh.read(max_bytes + 1)
    except OSError as exc:
        raise ValueError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if len(raw) > max_bytes:
        raise ValueError(f"{path}: larger than {max_bytes} bytes")
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: not JSON ({exc})") from None
    if not isinstance(data, dict) or data.get("pimpi_status") != FORMAT:
        raise ValueError(f"{path}: not a pimpi status file of format {FORMAT}")
    for key, kind in (("total", int), ("done", int), ("started", (int, float)),
                      ("updated", (int, float)), ("events", list), ("failed", dict)):
        if not isinstance(data.get(key), kind) or isinstance(data.get(key), bool):
            raise ValueError(f"{path}: field {key!r} is missing or of the wrong type")
    return data
