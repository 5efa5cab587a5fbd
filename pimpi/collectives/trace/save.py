"""Write a traced run's report as SVG, PNG or JSON files, each atomically (pimpi.fileio)."""

from __future__ import annotations

import json
import os

from pimpi.fileio import atomic_write

from .draw import trace_png, trace_svg
from .run import TraceReport

__all__ = ["FORMATS", "save_report"]

FORMATS = ("svg", "png", "json")


def save_report(report: TraceReport, path: str | os.PathLike, fmt: str) -> None:
    """Write `report` to `path` as 'svg', 'png' (needs matplotlib) or 'json'."""
    if fmt == "svg":
        atomic_write(path, trace_svg(report.trace, report.title))
    elif fmt == "png":
        atomic_write(path, trace_png(report.trace, report.title))
    elif fmt == "json":
        atomic_write(path, json.dumps(report.to_dict(), indent=1) + "\n")
    else:
        raise ValueError(f"unknown trace format {fmt!r}; choose from {', '.join(FORMATS)}")
