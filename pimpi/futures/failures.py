"""What a resumable map reports when items failed for good."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

__all__ = ["Failure", "MapError"]

_SHOWN = 5  # failures whose traceback the message shows in full


@dataclass
class Failure:
    """One item that failed for good: its index, arguments, last exception and where it ran."""

    index: int
    args: tuple[Any, ...]
    exception: BaseException
    traceback: str
    workers: list[str]

    def call(self, function: str) -> str:
        """'f(3)': the call that failed, its arguments shortened."""
        from pimpi.futures.noted import call_text

        return call_text(function, self.args)


class MapError(Exception):
    """Items of a map failed for good; `failures` lists them (the other results are recorded)."""

    def __init__(self, function: str, total: int, failures: Sequence[Failure], reason: str = "") -> None:
        self.function = function
        self.total = total
        self.failures = list(failures)
        self.reason = reason
        lines = [f"{len(self.failures)} of {total} items failed for good{reason}:"]
        for failure in self.failures:
            exc = failure.exception
            lines.append(f"  item {failure.index}: {failure.call(function)} raised {type(exc).__name__}: {exc}"
                         f" (on {', '.join(failure.workers) or 'no worker'})")
        for failure in self.failures[:_SHOWN]:
            if failure.traceback:
                lines.append(f"--- item {failure.index}: {failure.call(function)}, traceback on the worker:")
                lines.append(failure.traceback.rstrip("\n"))
        if len(self.failures) > _SHOWN:
            lines.append(f"--- ({len(self.failures) - _SHOWN} more tracebacks in MapError.failures)")
        super().__init__("\n".join(lines))

    def __reduce__(self) -> tuple:
        return (type(self), (self.function, self.total, self.failures, self.reason))
