"""Render reports: the end-of-job summary, `--stats FILE.json` and `--gantt FILE.png`."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Any

from pimpi.fileio import atomic_write

__all__ = ["summary_lines", "write_stats", "write_gantt"]


def summary_lines(report: Any) -> list[str]:
    """Per-rank units, busy and idle time; imbalance and throughput (for rank 0 to print)."""
    rep = report.schedule_report
    lines = [
        f"{report.scene}: {len(report.rendered)} rendered, {len(report.skipped)} skipped "
        f"(already done), {len(report.failed)} failed; {report.width}x{report.height}, "
        f"{report.schedule} schedule on {rep.size} rank{'s' if rep.size != 1 else ''}"
        + (f", tiles {report.tiles[0]}x{report.tiles[1]}" if report.tiles != (1, 1) else ""),
        f"{'rank':>5} {'units':>6} {'busy s':>8} {'idle s':>8} {'failures':>8}",
    ]
    for r in rep.ranks:
        note = " (scheduler only)" if r.rank == 0 and not rep.rank0_works else ""
        note += " (blocklisted)" if r.blocked else ""
        lines.append(f"{r.rank:>5} {r.units:>6} {r.busy:>8.2f} {r.idle:>8.2f} {r.failures:>8}{note}")
    lines.append(
        f"wall {rep.wall:.2f} s, load imbalance {rep.imbalance:.3f} (max busy / mean busy), "
        f"{report.frames_per_second:.2f} frames/s, {report.mpixels_per_second:.2f} Mpixel/s"
    )
    return lines


def write_stats(path: str | os.PathLike, report: Any) -> Path:
    """The report as JSON, written atomically."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(target, (json.dumps(report.to_dict(), indent=2) + "\n").encode())
    return target


def write_gantt(path: str | os.PathLike, report: Any) -> Path:
    """A per-rank timeline of every unit (failed ones in red) as PNG (matplotlib, Agg)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rep = report.schedule_report
    fig, ax = plt.subplots(figsize=(10, 1.2 + 0.45 * rep.size), dpi=100)
    palette = plt.get_cmap("tab20")
    for n, event in enumerate(rep.events):
        colour = palette(n % 20) if event.ok else "red"
        ax.barh(event.rank, event.end - event.start, left=event.start, height=0.7,
                color=colour, edgecolor="black", linewidth=0.3)
    ax.set_yticks(range(rep.size))
    ax.set_yticklabels([f"rank {r}" for r in range(rep.size)])
    ax.invert_yaxis()
    ax.set_xlabel("seconds since start")
    ax.set_xlim(0, max(rep.wall, 1e-3))
    ax.set_title(f"{report.scene} {report.width}x{report.height}, {report.schedule} schedule, "
                 f"imbalance {rep.imbalance:.3f}, {report.frames_per_second:.2f} frames/s")
    fig.tight_layout()
    buffer = io.BytesIO()
    try:
        fig.savefig(buffer, format="png")
    finally:
        plt.close(fig)
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write(target, buffer.getvalue())
