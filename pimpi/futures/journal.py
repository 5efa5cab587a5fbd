"""A map's results on disk, one atomically written record per finished batch, checked by SHA-256."""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import secrets
from pathlib import Path
from typing import Any, Callable

from pimpi.fileio import atomic_write

__all__ = ["ResultJournal", "item_key", "function_name"]

_HEADER = "journal.json"
_MAGIC = b"pimpi-futures-record 1 "
_VERSION = 1


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
    return hashlib.sha256(payload).hexdigest()


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
            atomic_write(header, json.dumps({"pimpi-futures-journal": _VERSION, "function": name}) + "\n")
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
            if not head.startswith(_MAGIC) or head[len(_MAGIC):].decode(errors="replace") != hashlib.sha256(payload).hexdigest():
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
        data = _MAGIC + hashlib.sha256(payload).hexdigest().encode() + b"\n" + payload
        first = min(results)
        atomic_write(self.path / f"{first[:16]}-{secrets.token_hex(4)}.rec", data)
