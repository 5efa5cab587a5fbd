"""The Slurm view for `pimpi doctor`: partitions, node states, nodes down or drained, munge."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from pimpi import procs
from pimpi.cluster.slurm.allocation import current

__all__ = ["SlurmView", "configured", "gather", "problems", "parse_nodes", "text"]

# sinfo's short states that mean a node takes no work (a trailing * means not responding).
_BAD = ("down", "drain", "drng", "fail", "failg", "maint", "boot", "unk", "inval", "futr", "npc")


@dataclass
class SlurmView:
    """What Slurm says: partitions (name, up), nodes (name -> state, cpus, memory, reason), munge."""

    partitions: list[tuple[str, str]] = field(default_factory=list)
    nodes: dict[str, dict[str, str]] = field(default_factory=dict)
    munge: str | None = None  # None: works; otherwise why not
    error: str | None = None  # sinfo itself failed
    job_nodes: list[str] = field(default_factory=list)  # this job's allocation, when inside one


def configured(env: Mapping[str, str] | None = None) -> bool:
    """Slurm is set up here: its client is installed and a config or an allocation exists."""
    env = os.environ if env is None else env
    if shutil.which("sinfo") is None:
        return False
    return bool(env.get("SLURM_CONF") or env.get("SLURM_JOB_ID")) or Path("/etc/slurm/slurm.conf").exists()


def _run(cmd: list[str], input: str | None = None) -> tuple[str | None, str]:
    """(stdout, '') when CMD worked, (None, its one-line error) when not."""
    try:
        return procs.output(cmd, timeout=15, input=input), ""
    except procs.CommandError as exc:
        return None, str(exc)


def parse_nodes(text: str) -> dict[str, dict[str, str]]:
    """`sinfo -h -N -o '%N|%t|%c|%m|%E'` lines -> node -> fields (a node in two partitions once)."""
    nodes: dict[str, dict[str, str]] = {}
    for line in text.splitlines():
        parts = line.split("|")
        if len(parts) >= 5:
            nodes.setdefault(parts[0], {"state": parts[1], "cpus": parts[2], "memory": parts[3],
                                        "reason": "|".join(parts[4:])})
    return nodes


def _munge_socket() -> str | None:
    """The munge socket Slurm uses (AuthInfo socket=...), or None for munge's default."""
    config, _ = _run(["scontrol", "show", "config"])
    for line in (config or "").splitlines():
        if line.strip().startswith("AuthInfo"):
            for item in line.split("=", 1)[1].split(","):
                key, _, value = item.strip().partition("=")
                if key == "socket":
                    return value
    return None


def _check_munge() -> str | None:
    """None when a credential made here decodes here (munged runs, its key is readable)."""
    socket = _munge_socket()
    extra = [f"--socket={socket}"] if socket else []
    cred, error = _run(["munge", "-n", *extra])
    if cred is None:
        return error
    back, error = _run(["unmunge", *extra], input=cred)
    return None if back is not None else error


def gather() -> SlurmView:
    """Ask sinfo and munge (each command with a timeout); never raises for a broken Slurm."""
    view = SlurmView()
    allocation = current()
    if allocation is not None:
        view.job_nodes = allocation.nodes
    parts, error = _run(["sinfo", "-h", "-o", "%P|%a"])
    nodes, error2 = _run(["sinfo", "-h", "-N", "-o", "%N|%t|%c|%m|%E"]) if parts is not None else (None, "")
    if parts is None or nodes is None:
        view.error = error or error2
    else:
        view.partitions = [tuple(line.split("|")[:2]) for line in parts.splitlines() if "|" in line]
        view.nodes = parse_nodes(nodes)
    view.munge = _check_munge()
    return view


def problems(view: SlurmView, rank_hosts: list[str] = ()) -> list[str]:
    """Problem lines: sinfo failing, nodes down/drained/not responding, munge broken, and inside a
    job, allocated nodes where no rank ran."""
    found = []
    if view.error:
        found.append(f"Slurm: {view.error}")
    for name, node in sorted(view.nodes.items()):
        state = node["state"]
        if state.endswith("*") or state.rstrip("*~#!%$@^-") in _BAD:
            reason = "" if node["reason"] in ("", "none") else f" ({node['reason']})"
            found.append(f"Slurm node {name} is {state}{reason}")
    for name, up in view.partitions:
        if up != "up":
            found.append(f"Slurm partition {name.rstrip('*')} is {up}")
    if view.munge:
        found.append(f"munge does not work: {view.munge}")
    if view.job_nodes and rank_hosts:
        missing = [n for n in view.job_nodes if n not in set(rank_hosts)]
        if missing:
            found.append(f"no rank ran on allocated node(s) {', '.join(missing)}")
    return found


def text(view: SlurmView) -> str:
    """The view as a few lines for the doctor's report."""
    lines = []
    if view.partitions:
        lines.append("slurm: partitions " + ", ".join(f"{n} {a}" for n, a in view.partitions)
                     + f"; munge {'ok' if view.munge is None else 'FAILING'}")
    if view.job_nodes:
        lines.append(f"slurm: this job's nodes {', '.join(view.job_nodes)}")
    if view.nodes:
        rows = [["node", "state", "cpus", "memory", "reason"]]
        rows += [[n, d["state"], d["cpus"], d["memory"], d["reason"]] for n, d in sorted(view.nodes.items())]
        widths = [max(len(r[i]) for r in rows) for i in range(5)]
        lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    return "\n".join(lines)
