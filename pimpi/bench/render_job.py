"""The render-job benchmark: one timed distributed render, what `bench scaling` launches per rank count."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from pimpi.bench.benchmark import benchmark
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


@benchmark(text=_text)
def render_job(comm: Any, *, workload: str, frames: int, width: int, height: int,
               schedule: str = "dynamic", template: str | None = None,
               expect: str | None = None) -> dict[str, Any]:
    """Render `frames` frames of `workload` on every rank of `comm`, timed between barriers."""
    from mpi4py import MPI

    if frames < 1 or width < 1 or height < 1:
        raise ValueError(f"need frames, width, height >= 1, got {frames}, {width}, {height}")
    from pimpi.bench.baseline import warm_up

    render = _job(comm, workload, template, expect)
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


def _job(comm: Any, workload: str, template: str | None, expect: str | None):
    """A callable (comm, frames, width, height, schedule) -> report for the workload."""
    if workload != "cmd":
        from pimpi.render.job import render_frames

        return lambda comm, frames, w, h, schedule: render_frames(
            comm, workload, frames, w, h, schedule=schedule)
    if not template or not expect:
        raise ValueError("workload 'cmd' needs --template and --expect"
                         " (e.g. --template 'convert rose: {out}/f{frame}.png' --expect 'f{frame}.png')")
    import shlex

    from pimpi.render.cmd import CmdJob, Template, parse_expect, run_cmd

    parsed, patterns = Template.parse(shlex.split(template)), parse_expect([expect])

    def run(comm: Any, frames: int, w: int, h: int, schedule: str) -> Any:
        # Rank 0 collects every file (no shared storage needed) into a folder it then removes.
        folder = tempfile.mkdtemp(prefix="pimpi-bench-cmd-") if comm.rank == 0 else None
        folder = comm.bcast(folder, root=0)
        try:
            result = run_cmd(comm, CmdJob(template=parsed, expect=patterns, out_dir=Path(folder),
                                          frames=list(range(frames)), collect=True, force=True))
        finally:
            if comm.rank == 0:
                shutil.rmtree(folder, ignore_errors=True)
        if result.failed:
            raise RuntimeError(f"render cmd failed: {next(iter(result.failed.values()))}")
        return result.report

    return run
