"""The versioned JSON envelope of every benchmark result, written atomically."""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

__all__ = ["SCHEMA", "document", "write_json", "read_json", "temp_beside", "write_text_atomic"]

SCHEMA = "pimpi.bench/1"


def document(kind: str, machine: dict[str, Any], results: Any, **extra: Any) -> dict[str, Any]:
    """The result envelope: {"schema", "kind", "machine", "results", ...extra}."""
    if not kind:
        raise ValueError("a result needs a kind, got an empty one")
    return {"schema": SCHEMA, "kind": kind, "machine": machine, "results": results, **extra}


def _clean(value: Any) -> Any:
    """NaN/inf become null: strict JSON readers (browsers, jq) refuse them."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        return _clean(value.item())
    return value


def temp_beside(target: Path, suffix: str = ".tmp") -> str:
    """A new temporary file next to `target`, readable like any file we create (mkstemp
    alone would leave it 0600, and the rename would keep that)."""
    folder = target.parent if str(target.parent) else Path(".")
    if not folder.is_dir():
        raise ValueError(f"folder does not exist: {str(folder)!r}")
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=suffix, dir=folder)
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_umask())
    return tmp


def _umask() -> int:
    """The process umask, read without changing it (os.umask would, for every thread)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    return 0o022


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    """Write `text` to `path` through a temporary file in the same folder, then rename."""
    target = Path(path)
    tmp = temp_beside(target)
    try:
        with open(tmp, "w") as fh:
            fh.write(text)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def write_json(path: str | os.PathLike, doc: dict[str, Any]) -> Path:
    """Write `doc` to `path` atomically (ValueError when its folder does not exist)."""
    return write_text_atomic(path, json.dumps(_clean(doc), indent=1) + "\n")


def read_json(path: str | os.PathLike, kind: str | None = None) -> dict[str, Any]:
    """Read a result file, refusing other schemas (and other kinds when `kind` is given)."""
    try:
        doc = json.loads(Path(path).read_text())
    except OSError as exc:
        raise ValueError(f"cannot read {str(path)!r}: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"{str(path)!r} is not JSON: {exc}") from None
    if not isinstance(doc, dict) or doc.get("schema") != SCHEMA:
        found = doc.get("schema") if isinstance(doc, dict) else type(doc).__name__
        raise ValueError(f"{str(path)!r} is not a {SCHEMA} result (schema {found!r})")
    if kind is not None and doc.get("kind") != kind:
        raise ValueError(f"{str(path)!r} holds a {doc.get('kind')!r} result, expected {kind!r}")
    return doc
