"""The versioned JSON envelope of every benchmark result, written atomically."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

from pimpi.fileio import atomic_write

__all__ = ["SCHEMA", "document", "write_json", "read_json", "write_text_atomic"]

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


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    """Write `text` to `path` atomically (pimpi.fileio); ValueError when its folder does not exist."""
    target = Path(path)
    folder = target.parent if str(target.parent) else Path(".")
    if not folder.is_dir():
        raise ValueError(f"folder does not exist: {str(folder)!r}")
    return atomic_write(target, text)


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
