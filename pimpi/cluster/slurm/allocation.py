"""The Slurm allocation this process runs in, read from the environment (no Slurm command needed)."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Mapping

__all__ = ["Allocation", "current", "expand_nodelist"]


@dataclass(frozen=True)
class Allocation:
    """A job's allocation: id, nodes (expanded) and the tasks it asked for (None: not given)."""

    job_id: str
    nodes: list[str]
    ntasks: int | None


def expand_nodelist(text: str) -> list[str]:
    """Slurm's compressed host list: 'pi[1-3,5],head' -> ['pi1', 'pi2', 'pi3', 'pi5', 'head'].

    Zero padding is kept ('n[01-03]' -> n01, n02, n03). Raises ValueError on a malformed list.
    """
    names: list[str] = []
    for match in re.finditer(r"([^,\[]+)(?:\[([^\]]*)\])?([^,]*)(?:,|$)", text.strip()):
        prefix, ranges, suffix = match.group(1), match.group(2), match.group(3)
        if not prefix and ranges is None:
            continue
        if ranges is None:
            names.append(prefix + suffix)
            continue
        for part in ranges.split(","):
            low, _, high = part.partition("-")
            if not low.isdigit() or (high and not high.isdigit()):
                raise ValueError(f"bad Slurm node list {text!r}: range {part!r}")
            width = len(low)
            for number in range(int(low), int(high or low) + 1):
                names.append(f"{prefix}{number:0{width}d}{suffix}")
    if not names and text.strip():
        raise ValueError(f"bad Slurm node list {text!r}")
    return names


def current(env: Mapping[str, str] | None = None) -> Allocation | None:
    """The allocation of this job (SLURM_JOB_ID set), or None outside Slurm."""
    env = os.environ if env is None else env
    job = env.get("SLURM_JOB_ID") or env.get("SLURM_JOBID")
    if not job:
        return None
    nodelist = env.get("SLURM_JOB_NODELIST") or env.get("SLURM_NODELIST") or ""
    ntasks = env.get("SLURM_NTASKS") or env.get("SLURM_NPROCS")
    return Allocation(job, expand_nodelist(nodelist), int(ntasks) if ntasks and ntasks.isdigit() else None)
