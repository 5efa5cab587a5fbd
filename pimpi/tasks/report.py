"""What a task farm run returns: tasks, attempts, per-rank stats and the run's report.

Shared by every schedule (the dynamic farm here, render's static split): whatever splits
the work, the same `ScheduleReport` comes back, so summaries, `--stats` JSON and Gantt
charts read one shape.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["Task", "TaskFailed", "TaskEvent", "RankStats", "ScheduleReport", "one_line"]


@dataclass(frozen=True)
class Task:
    """One unit of work: a unique `key`, an expected relative `cost`, small picklable `data`."""

    key: str
    cost: float = 1.0
    data: Any = None


class TaskFailed(Exception):
    """Raise from `work` to fail a task with a clean one-line reason (no traceback kept)."""


@dataclass
class TaskEvent:
    """One attempt of one task: where it ran and when (seconds since the job's start)."""

    key: str
    rank: int
    start: float
    end: float
    ok: bool
    error: str = ""


@dataclass
class RankStats:
    """What one rank did: units finished, time busy in `work`, time idle, failures."""

    rank: int
    units: int = 0
    busy: float = 0.0
    idle: float = 0.0
    failures: int = 0
    blocked: bool = False
    cpu: float = 0.0  # CPU seconds of the whole process during the run (threads included)


@dataclass
class ScheduleReport:
    """The outcome of a run: per-rank stats, every attempt (for a Gantt chart), failures."""

    size: int
    wall: float
    ranks: list[RankStats]
    events: list[TaskEvent]
    done: list[str]
    failed: dict[str, str]  # key -> last error, for tasks that failed for good
    rank0_works: bool
    error: str = ""

    @property
    def imbalance(self) -> float:
        """max busy / mean busy over the ranks that worked (1.0 is perfect)."""
        busy = [r.busy for r in self.ranks if r.rank > 0 or self.rank0_works]
        if not busy or sum(busy) <= 0:
            return 1.0
        return max(busy) / (sum(busy) / len(busy))

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON."""
        data = asdict(self)
        data["imbalance"] = self.imbalance
        return data


def one_line(exc: BaseException) -> str:
    """A failure as one line: TaskFailed's own message, otherwise 'Type: first line'."""
    if isinstance(exc, TaskFailed):
        return str(exc) or "failed"
    text = f"{type(exc).__name__}: {exc}"
    return text.splitlines()[0] if text else type(exc).__name__
