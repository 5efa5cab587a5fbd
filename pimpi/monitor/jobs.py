"""The jobs' rows of the page: status files found under the given folders, read and summarised."""

from __future__ import annotations

import os
import socket
import threading
import time
from pathlib import Path
from typing import Any

from pimpi.jobstatus import STATUS_GLOB, read_status

__all__ = ["JobFinder", "summarise", "IMAGE_SUFFIXES", "inside"]

IMAGE_SUFFIXES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg",
                  ".webp": "image/webp", ".gif": "image/gif"}
SILENT_AFTER = 120.0  # a running job on another host with no update for this long is "silent"


def inside(path: Path, folder: Path) -> bool:
    """`path`, all links resolved, lies inside `folder` (also resolved)."""
    try:
        path.resolve(strict=True).relative_to(folder.resolve(strict=True))
    except (OSError, ValueError, RuntimeError):
        return False
    return True


def _pid_alive(pid: Any) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _rate(events: list[Any], done: int, elapsed: float) -> float:
    """Units per second while units were worked on (the farm's own clock), so start-up and
    a finished job's idle time do not dilute it; the job's elapsed time without events."""
    try:
        ok = [e for e in events if e[4]]
        span = max(e[3] for e in events) - min(e[2] for e in events)
    except (ValueError, TypeError, IndexError):
        ok, span = [], 0.0
    if ok and span > 0:
        return len(ok) / span
    return done / elapsed if elapsed > 0 and done else 0.0


def summarise(data: dict[str, Any], now: float, here: str) -> dict[str, Any]:
    """What the page shows of one readable status: progress, rate, ETA, a state that also
    tells a job that died without saying so (`lost`) or went quiet (`silent`)."""
    total, done = max(0, int(data["total"])), max(0, int(data["done"]))
    started, updated = float(data["started"]), float(data["updated"])
    failed = data.get("failed") or {}
    state = str(data.get("state", "running"))
    elapsed = max(0.0, (updated if state != "running" else now) - started)
    events = data.get("events") or []
    rate = _rate(events, done, elapsed)
    left = max(0, total - done - len(failed)) if state == "running" else 0
    eta = left / rate if rate > 0 and left else None
    if state == "running":
        if data.get("host") == here and not _pid_alive(data.get("pid")):
            state = "lost"
        elif now - updated > SILENT_AFTER:
            state = "silent"
    return {
        "kind": str(data.get("kind", "")), "name": str(data.get("name", "")), "state": state,
        "error": str(data.get("error", "")), "host": str(data.get("host", "")),
        "ranks": data.get("ranks"), "total": total, "done": done, "skipped": data.get("skipped", 0),
        "failed": [{"unit": str(k), "message": str(v)} for k, v in list(failed.items())[:50]],
        "failed_count": len(failed), "attempts_failed": data.get("attempts_failed", 0),
        "started": started, "updated": updated, "elapsed": elapsed, "age": max(0.0, now - updated),
        "rate": rate, "eta": eta, "events": events[-400:],
        "latest": str(data.get("latest", "")),
    }


class JobFinder:
    """Finds status files under `roots` (depth-limited, symlinks not followed, hidden folders
    skipped), re-walking at most every `rescan` seconds; a file is re-read only when it changed."""

    def __init__(self, roots: list[Path], max_depth: int = 4, rescan: float = 10.0, limit: int = 200) -> None:
        self.roots = [Path(r).resolve() for r in roots]
        self.max_depth, self.rescan, self.limit = max_depth, rescan, limit
        self._lock = threading.Lock()
        self._paths: list[tuple[int, Path]] = []
        self._walked = 0.0
        self._cache: dict[Path, tuple[tuple[int, int], dict[str, Any]]] = {}
        self.here = socket.gethostname()

    def _walk(self) -> list[tuple[int, Path]]:
        found: list[tuple[int, Path]] = []
        for index, root in enumerate(self.roots):
            stack = [(root, 0)]
            while stack and len(found) < self.limit:
                folder, depth = stack.pop()
                try:
                    entries = list(os.scandir(folder))
                except OSError:
                    continue
                for entry in entries:
                    try:
                        if entry.is_dir(follow_symlinks=False):
                            if depth < self.max_depth and not entry.name.startswith("."):
                                stack.append((Path(entry.path), depth + 1))
                        elif entry.is_file(follow_symlinks=False) and Path(entry.name).match(STATUS_GLOB):
                            found.append((index, Path(entry.path)))
                    except OSError:
                        continue
        return found

    def paths(self) -> list[tuple[int, Path]]:
        with self._lock:
            if time.monotonic() - self._walked > self.rescan:
                self._paths = self._walk()
                self._walked = time.monotonic()
            return list(self._paths)

    def job_id(self, index: int, path: Path) -> str:
        return f"{index}:{path.relative_to(self.roots[index])}"

    def locate(self, job_id: str) -> tuple[Path, Path] | None:
        """(root, status file) of a job id this finder gave out, else None."""
        for index, path in self.paths():
            if self.job_id(index, path) == job_id:
                return self.roots[index], path
        return None

    def jobs(self) -> list[dict[str, Any]]:
        now = time.time()
        rows = []
        for index, path in self.paths():
            job_id = self.job_id(index, path)
            folder = path.parent
            row: dict[str, Any] = {"id": job_id, "folder": str(folder.relative_to(self.roots[index])),
                                   "root": str(self.roots[index])}
            try:
                st = path.stat()
                key = (st.st_mtime_ns, st.st_size)
                cached = self._cache.get(path)
                data = cached[1] if cached and cached[0] == key else read_status(path)
                self._cache[path] = (key, data)
                row.update(summarise(data, now, self.here))
            except (OSError, ValueError, TypeError, KeyError) as exc:
                row.update({"state": "unreadable", "error": " ".join(str(exc).split())[:300],
                            "name": path.name, "kind": "", "updated": 0})
                self._cache.pop(path, None)
            latest = row.get("latest")
            row["thumbnail"] = bool(latest) and Path(latest).suffix.lower() in IMAGE_SUFFIXES
            rows.append(row)
        order = {"running": 0, "silent": 1, "lost": 2, "unreadable": 3}
        rows.sort(key=lambda r: (order.get(r["state"], 4), -float(r.get("updated") or 0)))
        return rows

    def image(self, job_id: str, name: str) -> Path | None:
        """The job's newest output, if `name` is it, an image, and inside the job's folder."""
        found = self.locate(job_id)
        if found is None or not name or Path(name).suffix.lower() not in IMAGE_SUFFIXES:
            return None
        root, status = found
        try:
            latest = read_status(status).get("latest")
        except ValueError:
            return None
        if latest != name or Path(name).is_absolute() or ".." in Path(name).parts:
            return None
        target = status.parent / name
        if not (inside(target, status.parent) and inside(status.parent, root)):
            return None
        return target if target.is_file() else None
