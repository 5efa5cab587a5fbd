"""Read Open MPI's own message counts (pml/coll monitoring) and compare them with a trace.

The checker runs the learner's job with `pml_monitoring_enable=2` and an output file: at
MPI_Finalize every rank writes how many point-to-point messages it really sent to each
peer ("E" lines) and how many collective messages went over each communicator, by name
("D" sections). Those counts come from inside the MPI library, below anything a Python
submission can patch, so a message sent around the recording proxy (the real
communicator, COMM_WORLD) or a built-in collective shows up as a difference.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["MonitorReport", "parse_report", "read_reports"]

_COUNT = re.compile(r"(\d+) msgs sent")
_BYTES = re.compile(r"(\d+) bytes")


@dataclass
class MonitorReport:
    """Real point-to-point sends per (src, dst) and collective messages per communicator name and rank."""

    ranks: int
    sent: dict[tuple[int, int], int] = field(default_factory=dict)
    collective: dict[str, dict[int, tuple[int, int]]] = field(default_factory=dict)  # (messages, bytes)

    def problems(self, logs: list[list[Any]], harness_dups: int, start: int, end: int,
                 baseline: dict[tuple[int, int], int] | None = None) -> list[tuple[int | None, str]]:
        """(case, or None for every case; why) for each sign of traffic the trace did not record.

        logs: every rank's recorded sends (rows kind, peer, tag, nbytes, time) in the job;
        harness_dups: Dups the harness made of its own communicator, whose collective count
        calibrates the one Dup of COMM_WORLD; baseline: point-to-point messages Open MPI
        counted in a job that only prepared the same cases (it counts large messages of
        built-in collectives among them too).
        """
        found: list[tuple[int | None, str]] = []
        blank = self.collective.get("pimpi-blank", {})  # made the same way, never used
        for index in range(start, end):
            mine = self.collective.get(f"pimpi-case-{index}", {})
            ref = self.collective.get(f"pimpi-ref-{index}", {})  # the reference (the library agrees
            for rank in range(self.ranks):  # on errors in one small Allreduce) on the same case
                got = mine.get(rank, (0, 0))
                if got not in (blank.get(rank, (0, 0)), ref.get(rank, (0, 0))):
                    found.append((index, (f"a built-in collective or a new communicator was used on `comm` "
                                   f"(Open MPI counted {got[0]} collective messages, {got[1]} bytes on rank "
                                   f"{rank}): build it from comm.Send/comm.Recv")))
                    break
        harness = self.collective.get("pimpi-harness", {})
        world = self.collective.get("MPI_COMM_WORLD", {})
        for rank in range(self.ranks):  # the harness Dups COMM_WORLD once, and itself harness_dups times
            if world.get(rank, (0, 0))[0] * harness_dups != harness.get(rank, (0, 0))[0]:
                found.append((None, ("a built-in collective or a new communicator was used outside `comm` "
                              "(on MPI.COMM_WORLD or the grader's own communicator; Open MPI counted its "
                              "messages): only `comm` and point-to-point calls are allowed")))
                break
        for name, counts in self.collective.items():
            if not name.startswith("pimpi-") and name not in ("MPI_COMM_WORLD", "MPI_COMM_SELF") \
                    and sum(msgs for msgs, _nbytes in counts.values()):
                found.append((None, (f"a built-in collective ran on a communicator of the submission's "
                                     f"own ({name}): only `comm` and point-to-point calls are allowed")))
        recorded: dict[tuple[int, int], int] = dict(baseline or {})
        for rank, log in enumerate(logs):
            for row in log:
                if row[0] == "S":
                    recorded[(rank, int(row[1]))] = recorded.get((rank, int(row[1])), 0) + 1
        for (src, dst), real in sorted(self.sent.items()):
            seen = recorded.get((src, dst), 0)
            if real > seen:
                found.append((None, (f"rank {src} really sent {real} messages to rank {dst} but only {seen} "
                                     f"went through `comm`: messages sent around the grader's communicator "
                                     f"(MPI.COMM_WORLD, another communicator) are not allowed")))
                break
        return found


def parse_report(text: str, rank: int, report: MonitorReport) -> None:
    """Add one rank's .prof file (`text`) to `report`."""
    section = None
    for line in text.splitlines():
        parts = line.split("\t")
        if parts[0] == "E" and len(parts) >= 5:
            match = _COUNT.search(parts[4])
            if match:
                key = (int(parts[1]), int(parts[2]))
                report.sent[key] = report.sent.get(key, 0) + int(match.group(1))
        elif parts[0] == "D" and len(parts) >= 2:
            section = parts[1]
            report.collective.setdefault(section, {})
        elif parts[0] in ("O2A", "A2O", "A2A") and section is not None and len(parts) >= 4:
            match, size = _COUNT.search(parts[3]), _BYTES.search(parts[2])
            if match and size:
                counts = report.collective[section]
                msgs, nbytes = counts.get(rank, (0, 0))
                counts[rank] = (msgs + int(match.group(1)), nbytes + int(size.group(1)))


def read_reports(folder: Path, ranks: int) -> MonitorReport | None:
    """Every rank's report in `folder` (prof.<rank>.prof), or None when one is missing."""
    report = MonitorReport(ranks)
    for rank in range(ranks):
        path = folder / f"prof.{rank}.prof"
        try:
            parse_report(path.read_text(encoding="utf-8", errors="replace"), rank, report)
        except OSError:
            return None
    return report
