"""Resume journals: what a job finished, on disk, checked by SHA-256, so a rerun skips it.

A dead MPI rank kills the whole job, so resume cannot depend on MPI: the journal on disk
says which units are finished. Only the rank that writes outputs opens one. Two shapes share
the checksums, the durable writes and the rule that a damaged or torn record is skipped
(recomputed), never trusted:

* `Journal` (render, command farms, transcode): units whose output FILES are in a folder.

    journal = Journal.open(out_dir, {"scene": "mandelbrot", "size": [640, 480]})
    if not journal.done("f0007"):
        ... render, write frame_00007.png atomically ...
        journal.record("f0007", ["frame_00007.png"])

  File format (`.pimpi-journal`, one JSON object per line):
      {"pimpi-journal": 1, "signature": "<sha256 of the job description>"}
      {"key": "f0007", "files": {"frame_00007.png": "<sha256>"}}
  A torn last line (the job was killed mid-write) is ignored. A different signature (other
  scene, size or options) starts a fresh journal, so frames of two jobs are never mixed;
  `force=True` does the same on purpose.

* `ResultJournal` (pimpi.futures' resumable map): Python RESULTS of one function, one
  record file per finished batch in a folder (`journal.json` names the function; each
  `*.rec` is a magic line with the SHA-256 of its pickled payload, then the payload).
  A folder of another function is refused (ValueError), never overwritten.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import secrets
from pathlib import Path
from typing import Any, Callable, Iterable

from pimpi.fileio import atomic_write

__all__ = ["Journal", "JOURNAL_NAME", "signature_of", "file_sha256",
           "ResultJournal", "item_key", "function_name"]

JOURNAL_NAME = ".pimpi-journal"
_VERSION = 1


def signature_of(job: Any) -> str:
    """A stable hash of a JSON-able job description (scene, size, options...)."""
    if isinstance(job, str):
        text = job
    else:
        text = json.dumps(job, sort_keys=True, separators=(",", ":"), default=str)
    return _sha256(text.encode())


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def file_sha256(path: str | os.PathLike) -> str:
    """SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class Journal:
    """Finished units of one job in one output folder (see the module docstring)."""

    def __init__(self, out_dir: Path, signature: str, entries: dict[str, dict[str, str]],
                 fresh: bool) -> None:
        self.out_dir = out_dir
        self.path = out_dir / JOURNAL_NAME
        self.signature = signature
        self.entries = entries
        self.fresh = fresh  # True when this job starts over (no journal, new signature, force)

    @classmethod
    def open(cls, out_dir: str | os.PathLike, job_signature: Any, force: bool = False) -> "Journal":
        """Open (or start) the journal of `out_dir` for a job; creates `out_dir` if needed."""
        folder = Path(out_dir)
        folder.mkdir(parents=True, exist_ok=True)
        signature = signature_of(job_signature)
        entries: dict[str, dict[str, str]] = {}
        path = folder / JOURNAL_NAME
        if not force and path.exists():
            old_signature, entries = cls._read(path)
            if old_signature == signature:
                return cls(folder, signature, entries, fresh=False)
        journal = cls(folder, signature, {}, fresh=True)
        journal._start()
        return journal

    @staticmethod
    def _read(path: Path) -> tuple[str | None, dict[str, dict[str, str]]]:
        """(signature, entries) from a journal file; torn or foreign lines are skipped."""
        signature = None
        entries: dict[str, dict[str, str]] = {}
        with open(path, "rb") as handle:
            lines = handle.read().split(b"\n")
        for number, raw in enumerate(lines):
            if not raw.strip():
                continue
            try:
                item = json.loads(raw)
            except ValueError:
                continue  # a torn line (killed mid-write)
            if not isinstance(item, dict):
                continue
            if number == 0:
                if item.get("pimpi-journal") != _VERSION:
                    return None, {}
                signature = item.get("signature")
                continue
            key, files = item.get("key"), item.get("files")
            if isinstance(key, str) and isinstance(files, dict):
                entries[key] = {str(k): str(v) for k, v in files.items()}
        return signature, entries

    def _start(self) -> None:
        """Write a new journal with only the header, atomically."""
        header = json.dumps({"pimpi-journal": _VERSION, "signature": self.signature})
        atomic_write(self.path, header + "\n")
        _fsync_dir(self.out_dir)

    def done(self, key: str) -> bool:
        """True when `key` was recorded AND each of its files still exists with its checksum."""
        files = self.entries.get(key)
        if not files:
            return False
        for name, digest in files.items():
            path = self.out_dir / name
            try:
                if file_sha256(path) != digest:
                    return False
            except OSError:
                return False
        return True

    def record(self, key: str, files: Iterable[str | os.PathLike]) -> None:
        """Append `key` with the checksums of its finished `files` (paths in or under out_dir)."""
        sums: dict[str, str] = {}
        for name in files:
            path = Path(name)
            if not path.is_absolute():
                path = self.out_dir / path
            sums[os.path.relpath(path, self.out_dir)] = file_sha256(path)
        line = json.dumps({"key": key, "files": sums}, sort_keys=True) + "\n"
        with open(self.path, "ab") as handle:
            if handle.tell() > 0 and not self._ends_with_newline():
                handle.write(b"\n")  # close a torn last line so this one parses
            handle.write(line.encode())
            handle.flush()
            os.fsync(handle.fileno())
        self.entries[key] = sums

    def _ends_with_newline(self) -> bool:
        with open(self.path, "rb") as handle:
            handle.seek(-1, os.SEEK_END)
            return handle.read(1) == b"\n"

    def keys(self) -> list[str]:
        """Recorded keys (not re-verified)."""
        return list(self.entries)


# --- results of a function (pimpi.futures) ----------------------------------------

_HEADER = "journal.json"
_MAGIC = b"pimpi-futures-record 1 "
_RESULTS_VERSION = 1


def function_name(fn: Callable[..., Any]) -> str:
    """'module.qualname' of a function (what a journal belongs to)."""
    module = getattr(fn, "__module__", None) or "?"
    if module in ("__main__", "__worker__", "__mp_main__"):
        module = "__main__"  # the user's script, whichever way it was started
    return f"{module}.{getattr(fn, '__qualname__', type(fn).__qualname__)}"


def item_key(args: tuple[Any, ...]) -> str | None:
    """SHA-256 of an item's pickled arguments (None when they cannot be pickled: not resumable)."""
    try:
        payload = pickle.dumps(args, protocol=4)
    except Exception:  # noqa: BLE001 - any pickling failure just means "recompute"
        return None
    return _sha256(payload)


class ResultJournal:
    """Results of one function's map in folder `path`: `load()` what earlier runs finished,
    `record()` each new batch. Each record file is written whole under a temporary name and
    renamed (pimpi.fileio), so a kill leaves finished records intact and no half record.

    Records hold pickles: open only journals you (or your job) wrote.
    """

    def __init__(self, path: Path, function: str) -> None:
        self.path = path
        self.function = function

    @classmethod
    def open(cls, path: str | os.PathLike, fn: Callable[..., Any]) -> "ResultJournal":
        """Open (or start) the journal folder for `fn`; ValueError when it belongs to another function
        or is not a folder."""
        if not isinstance(path, (str, os.PathLike)):
            raise TypeError(f"journal must be a folder path, got {path!r}")
        folder = Path(path)
        name = function_name(fn)
        if folder.exists() and not folder.is_dir():
            raise ValueError(f"journal {str(folder)!r} is not a folder")
        folder.mkdir(parents=True, exist_ok=True)
        header = folder / _HEADER
        if header.exists():
            try:
                recorded = json.loads(header.read_text()).get("function")
            except (ValueError, AttributeError):
                recorded = None
            if recorded != name:
                raise ValueError(f"journal {str(folder)!r} holds results of {recorded!r}, not {name!r}:"
                                 " give another path or remove it")
        else:
            atomic_write(header, json.dumps({"pimpi-futures-journal": _RESULTS_VERSION, "function": name}) + "\n")
        for stale in folder.glob(".*.tmp.rec"):  # a record being written when the job was killed
            stale.unlink(missing_ok=True)
        return cls(folder, name)

    def load(self) -> dict[str, Any]:
        """Every recorded result by item key; damaged or foreign records are skipped."""
        results: dict[str, Any] = {}
        for record in sorted(self.path.glob("[!.]*.rec")):  # not the temporary names
            try:
                data = record.read_bytes()
            except OSError:
                continue
            head, _, payload = data.partition(b"\n")
            if not head.startswith(_MAGIC) or head[len(_MAGIC):].decode(errors="replace") != _sha256(payload):
                continue
            try:
                items = pickle.loads(payload)
            except Exception:  # noqa: BLE001 - a record we cannot read is recomputed
                continue
            if isinstance(items, dict):
                results.update(items)
        return results

    def record(self, results: dict[str, Any]) -> None:
        """Write one record holding `results` (item key -> result), atomically and fsync'd."""
        if not results:
            return
        payload = pickle.dumps(results, protocol=4)
        data = _MAGIC + _sha256(payload).encode() + b"\n" + payload
        first = min(results)
        atomic_write(self.path / f"{first[:16]}-{secrets.token_hex(4)}.rec", data)
        _fsync_dir(self.path)
