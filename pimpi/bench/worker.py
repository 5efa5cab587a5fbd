"""`bench render-job`: one timed distributed render, the unit `bench scaling` launches per rank count."""

from __future__ import annotations

from typing import Any

from pimpi.bench.registry import register
from pimpi.bench.text import fmt_seconds

__all__ = ["render_job", "summarise_report"]


def summarise_report(report: Any) -> dict[str, Any]:
    """The render report without its per-task events (they can be long): imbalance, busy, idle."""
    data = report.to_dict() if hasattr(report, "to_dict") else dict(report or {})
    data.pop("events", None)
    data.pop("done", None)
    return data


def _text(result: dict[str, Any]) -> str:
    return (f"{result['workload']}: {result['frames']} frames {result['width']}x{result['height']}"
            f" on {result['ranks']} ranks in {fmt_seconds(result['seconds'])}"
            f" (imbalance {result['imbalance']})")


@register("render-job", text=_text)
def render_job(comm: Any, *, workload: str, frames: int, width: int, height: int,
               schedule: str = "dynamic", template: str | None = None) -> dict[str, Any]:
    """Render `frames` frames of `workload` on every rank of `comm`, timed between barriers."""
    from mpi4py import MPI

    if frames < 1 or width < 1 or height < 1:
        raise ValueError(f"need frames, width, height >= 1, got {frames}, {width}, {height}")
    render = _job(workload, template)
    if workload != "cmd":
        from pimpi.bench.baseline import warm_up

        warm_up(workload)  # imports and JIT compilation stay out of the timing, as for Pool
    comm.Barrier()
    start = MPI.Wtime()
    report = render(comm, frames, width, height, schedule)
    comm.Barrier()
    seconds = MPI.Wtime() - start
    summary = summarise_report(report)
    return {"workload": workload, "ranks": comm.size, "frames": frames, "width": width,
            "height": height, "schedule": schedule, "seconds": seconds,
            "imbalance": getattr(report, "imbalance", None) or summary.get("imbalance"),
            "report": summary}


def _job(workload: str, template: str | None):
    """A callable (comm, frames, width, height, schedule) -> report for the workload."""
    if workload == "cmd":
        if not template:
            raise ValueError("workload 'cmd' needs --template (e.g. 'convert in.png out{frame}.png')")
        from pimpi.render import render_commands

        return lambda comm, frames, w, h, schedule: render_commands(
            comm, template, frames, schedule=schedule)
    from pimpi.render.job import render_frames

    return lambda comm, frames, w, h, schedule: render_frames(
        comm, workload, frames, w, h, schedule=schedule)
