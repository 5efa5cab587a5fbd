"""Write a traced run's report as SVG, PNG or JSON files, each atomically (pimpi.fileio)."""

from __future__ import annotations

import json
import os

from pimpi.fileio import atomic_write

from .draw import trace_png, trace_svg
from .rounds import Trace
from .run import TraceReport

__all__ = ["FORMATS", "save_report", "save_trace"]

FORMATS = ("svg", "png", "json")


def save_report(report: TraceReport, path: str | os.PathLike, fmt: str) -> None:
    """Write `report` to `path` as 'svg', 'png' (needs matplotlib) or 'json'."""
    if fmt == "json":
        atomic_write(path, json.dumps(report.to_dict(), indent=1) + "\n")
    else:
        _picture(report.trace, report.title, path, fmt, report.meta.get("phases", ()))


def save_trace(trace: Trace, path: str | os.PathLike, title: str = "") -> None:
    """Write `trace` to `path` in the format its suffix names (.svg, .png or .json)."""
    fmt = os.path.splitext(str(path))[1].lstrip(".").lower()
    if fmt == "json":
        atomic_write(path, json.dumps(trace.to_dict(), indent=1) + "\n")
    else:
        _picture(trace, title, path, fmt)


def _picture(trace: Trace, title: str, path: str | os.PathLike, fmt: str, phases=()) -> None:
    if fmt == "svg":
        atomic_write(path, trace_svg(trace, title, phases))
    elif fmt == "png":
        atomic_write(path, trace_png(trace, title, phases))
    else:
        raise ValueError(f"unknown trace format {fmt!r}; choose from {', '.join(FORMATS)}")
