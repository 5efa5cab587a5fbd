"""The sbatch script for a pimpi job: readable, requeueable, running the job through `pimpi run`."""

from __future__ import annotations

import re
import shlex
import sys
from dataclasses import dataclass, field

from pimpi.cluster.launch import python_target

__all__ = ["Batch", "check_time", "job_name", "script_text"]

# Slurm's time formats: M, M:S, H:M:S, D-H, D-H:M, D-H:M:S
_TIME = re.compile(r"^(\d+-)?\d+(:\d{1,2}){0,2}$")


MAX_TIME_DAYS = 366


def _minutes(text: str) -> float:
    """Minutes of a Slurm time limit already matched by _TIME."""
    days, dash, rest = text.partition("-")
    if not dash:
        days, rest = "0", text
    parts = [int(p) for p in rest.split(":")]
    if dash:  # D-H, D-H:M, D-H:M:S
        hours, minutes, seconds = (parts + [0, 0])[:3]
    elif len(parts) == 3:  # H:M:S
        hours, minutes, seconds = parts
    else:  # M, M:S
        hours, minutes, seconds = 0, parts[0], (parts[1] if len(parts) > 1 else 0)
    return int(days) * 1440 + hours * 60 + minutes + seconds / 60


def check_time(limit: str) -> str:
    """Return LIMIT when it is a Slurm time limit (e.g. 30, 1:30:00, 2-00:00:00); ValueError otherwise."""
    text = limit.strip()
    if text in ("infinite", "UNLIMITED"):
        return text
    if _TIME.match(text) and len(text) <= 20:
        if _minutes(text) > MAX_TIME_DAYS * 1440:
            raise ValueError(f"--time {limit!r} is over {MAX_TIME_DAYS} days (use 'infinite' for no limit)")
        return text
    raise ValueError(f"--time {limit!r} is not a Slurm time limit (minutes, H:MM:SS or D-HH:MM:SS)")


def job_name(target: list[str]) -> str:
    """'pimpi-render-scene' for `render scene ...`, 'pimpi-myscript' for `myscript.py`."""
    words = [w for w in target if w not in ("pimpi", "--")]
    if not words:
        return "pimpi"
    first = words[0]
    if first.endswith(".py"):
        base = first.rsplit("/", 1)[-1][:-3]
    elif first == "-m" and len(words) > 1:
        base = words[1].rsplit(".", 1)[-1]
    else:
        base = "-".join(w for w in words[:2] if re.fullmatch(r"[A-Za-z][\w-]*", w))
    return "pimpi-" + (re.sub(r"[^\w-]", "_", base) or "job")


@dataclass
class Batch:
    """What `pimpi submit` asked for."""

    target: list[str]
    nodes: int = 1
    ntasks: int | None = None
    time: str = "1:00:00"
    name: str | None = None
    partition: str | None = None
    log: str = "pimpi-%j.out"  # stdout and stderr, appended across requeues
    chdir: str = "."
    requeue: bool = True
    exclusive: bool = False
    launcher: str = "auto"
    run_timeout: float | None = None
    extra: list[str] = field(default_factory=list)  # more #SBATCH lines, verbatim


def _quoted(option: str) -> str:
    """--output=/a b/x -> --output='/a b/x' (sbatch reads #SBATCH lines like a shell)."""
    key, eq, value = option.partition("=")
    return f"{key}={shlex.quote(value)}" if eq else option


def script_text(batch: Batch, python: str = sys.executable) -> str:
    """The sbatch script. Raises ValueError for bad values before anything is written."""
    if batch.nodes < 1:
        raise ValueError(f"--nodes must be at least 1, got {batch.nodes}")
    if batch.ntasks is not None and batch.ntasks < batch.nodes:
        raise ValueError(f"--ntasks {batch.ntasks} is less than --nodes {batch.nodes}")
    check_time(batch.time)
    python_target(batch.target)  # a missing script is refused now, not in the queue
    name = batch.name or job_name(batch.target)
    if not re.fullmatch(r"[\w.-]+", name):
        raise ValueError(f"--name {name!r}: use letters, digits, '.', '_' and '-'")
    options = [f"--job-name={name}", f"--nodes={batch.nodes}"]
    if batch.ntasks is not None:
        options.append(f"--ntasks={batch.ntasks}")
    options += [f"--time={batch.time}", f"--output={batch.log}", f"--error={batch.log}",
                "--open-mode=append", f"--chdir={batch.chdir}"]
    if batch.partition:
        options.append(f"--partition={batch.partition}")
    options.append("--requeue" if batch.requeue else "--no-requeue")
    if batch.exclusive:
        options.append("--exclusive")
    options += batch.extra
    run = [python, "-m", "pimpi", "run"]
    if batch.launcher != "auto":
        run += ["--launcher", batch.launcher]
    if batch.run_timeout is not None:
        run += ["--timeout", f"{batch.run_timeout:g}"]
    run += ["--", *batch.target]
    lines = [
        "#!/bin/bash",
        f"# Written by `pimpi submit`: {shlex.join(batch.target)}",
        *(f"#SBATCH {_quoted(opt)}" for opt in options),
        "#",
        "# Slurm runs this script again from the top when it requeues the job (a node failed, the",
        "# job was preempted, or `scontrol requeue`). Render jobs keep a journal in their output",
        "# folder, so the rerun skips every frame already finished.",
        'echo "pimpi job $SLURM_JOB_ID start ${SLURM_RESTART_COUNT:-0} on $SLURM_JOB_NODELIST at $(date -Is)"',
        f"exec {shlex.join(run)}",
        "",
    ]
    return "\n".join(lines)
