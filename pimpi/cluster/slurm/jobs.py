"""Submit a batch script and follow the job: state changes and its log, until it ends."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import TextIO

from pimpi import procs

__all__ = ["SlurmError", "submit", "job_info", "follow", "FINAL_STATES", "exit_code", "log_path"]

# States a job does not leave (a requeued job goes back to PENDING instead).
FINAL_STATES = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "OUT_OF_MEMORY", "BOOT_FAIL", "DEADLINE",
                "NODE_FAIL", "PREEMPTED"}


class SlurmError(RuntimeError):
    """A Slurm command failed or answered something unexpected; the message says which."""


def _slurm(cmd: list[str], timeout: float = 30, input: str | None = None) -> str:
    try:
        return procs.output(cmd, timeout=timeout, input=input)
    except procs.CommandError as exc:
        if exc.missing:
            raise SlurmError(f"{cmd[0]} not found: run this on a Slurm node (apt-get install slurm-client)") from None
        raise SlurmError(str(exc)) from None


def submit(script: str) -> str:
    """sbatch the SCRIPT text (on its stdin); return the job id."""
    out = _slurm(["sbatch", "--parsable"], input=script).strip()
    job = out.split(";", 1)[0]
    if not job.isdigit():
        raise SlurmError(f"sbatch printed {out!r}, not a job id")
    return job


def job_info(job: str) -> dict[str, str] | None:
    """`scontrol show job` as a dict (JobState, Reason, NodeList, Restarts, ExitCode, StdOut, ...),
    or None once Slurm has forgotten the job."""
    try:
        out = _slurm(["scontrol", "-o", "show", "job", job])
    except SlurmError as exc:
        if "Invalid job id" in str(exc):
            return None
        raise
    info: dict[str, str] = {}
    for word in out.split():
        key, eq, value = word.partition("=")
        if eq and key not in info:
            info[key] = value
    return info or None


def exit_code(info: dict[str, str]) -> int:
    """The job's exit code: its script's, 128+signal when killed, 1 when it never ran right."""
    state = info.get("JobState", "")
    code, _, signal = info.get("ExitCode", "0:0").partition(":")
    if state == "COMPLETED":
        return 0
    if state == "TIMEOUT":
        return 124
    if code.isdigit() and int(code):
        return int(code)
    if signal.isdigit() and int(signal):
        return 128 + int(signal)
    return 1


def _describe(job: str, info: dict[str, str]) -> str:
    state = info.get("JobState", "?")
    text = f"job {job} {state}"
    if state == "PENDING" and info.get("Reason", "None") != "None":
        text += f" ({info['Reason']})"
    elif state in ("RUNNING", "COMPLETING"):
        text += f" on {info.get('NodeList', '?')}"
    restarts = info.get("Restarts", "0")
    if restarts not in ("", "0"):
        text += f", restart {restarts}"
    return text


class _Tail:
    """New complete lines of a file that may not exist yet."""

    def __init__(self, path: Path) -> None:
        self.path, self.offset, self.partial = path, 0, b""

    def lines(self) -> list[str]:
        try:
            with open(self.path, "rb") as handle:
                handle.seek(self.offset)
                data = handle.read()
        except OSError:
            return []
        self.offset += len(data)
        *done, self.partial = (self.partial + data).split(b"\n")
        return [line.decode(errors="replace").rstrip("\r") for line in done]


def follow(job: str, log: Path | None, out: TextIO = sys.stdout, poll: float = 1.0) -> dict[str, str]:
    """Print the job's state whenever it changes and every new line of its log, until it ends.
    Returns the last `scontrol show job` record. KeyboardInterrupt stops following only."""
    tail = _Tail(log) if log is not None else None
    last = ""
    info: dict[str, str] | None = None
    failed_since: float | None = None
    while True:
        fresh = job_info(job)
        if fresh is None:
            if info is None:
                raise SlurmError(f"Slurm does not know job {job}")
            raise SlurmError(f"job {job} vanished from Slurm before it ended (last seen {last})")
        info = fresh
        if tail is not None:
            for line in tail.lines():
                out.write(line + "\n")
        text = _describe(job, info)
        if text != last:
            out.write(text + "\n")
            last = text
        out.flush()
        coming = _requeue_coming(info)
        failed_since = (failed_since or time.monotonic()) if coming else None
        if coming and time.monotonic() - failed_since > 120:
            coming = False  # Slurm did not put it back in the queue after all
        if info.get("JobState") in FINAL_STATES and not coming:
            if tail is not None:
                time.sleep(min(poll, 0.5))  # the last lines may land after the state
                for line in tail.lines():
                    out.write(line + "\n")
                out.flush()
            return info
        time.sleep(poll)


def _requeue_coming(info: dict[str, str]) -> bool:
    """A node failure or preemption of a requeueable job: Slurm puts it back in the queue."""
    return info.get("JobState") in ("NODE_FAIL", "PREEMPTED") and info.get("Requeue") == "1"


def log_path(info: dict[str, str]) -> Path | None:
    """The job's output file as Slurm resolved it (StdOut)."""
    path = info.get("StdOut")
    return Path(path) if path and path != "(null)" else None
