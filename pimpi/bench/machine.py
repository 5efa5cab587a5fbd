"""The machine's state attached to every result: CPU, Pi model, heat and throttling before/after."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

__all__ = ["facts", "machine_state", "finish_state", "git_commit", "volatile", "node_states"]

# Facts that drift during a run (heat, throttling, clocks, load): recorded before AND after.
_VOLATILE_WORDS = ("temp", "throttl", "load", "governor", "freq")


def facts() -> dict[str, Any]:
    """This machine's facts, as `pimpi doctor` reads them (pimpi.cluster.facts.local_facts)."""
    from pimpi.cluster.facts import local_facts

    return dict(local_facts())


def volatile(found: dict[str, Any]) -> dict[str, Any]:
    """The drifting part of `found` facts (temperature, throttling, governor, load, frequency)."""
    return {key: value for key, value in found.items()
            if any(word in key.lower() for word in _VOLATILE_WORDS)}


def git_commit() -> str | None:
    """pimpi's git commit when it runs from a checkout, else None."""
    root = Path(__file__).resolve().parents[2]
    if not (root / ".git").exists():
        return None
    try:
        out = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True,
                             text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0:
        return None
    return out.stdout.strip() or None


def _hostfile(path: str | None) -> dict[str, Any] | None:
    """The hostfile's path and its meaningful lines (comments dropped)."""
    if not path:
        return None
    try:
        lines = Path(path).read_text().splitlines()
    except OSError:
        return {"path": str(path), "lines": None}
    kept = [ln.strip() for ln in lines if ln.strip() and not ln.strip().startswith("#")]
    return {"path": str(path), "lines": kept}


def machine_state(*, ranks: int | None = None, hostfile: str | None = None) -> dict[str, Any]:
    """Everything a reader needs to trust (or doubt) a result, taken BEFORE the run.

    The MPI library is included when MPI is already running in this process.
    """
    found = facts()
    return {
        **found,
        "cores": found.get("cpus_usable") or found.get("cpus"),
        "hostfile": _hostfile(hostfile),
        "ranks": ranks,
        "pimpi_commit": git_commit(),
        "before": volatile(found),
        "after": None,
    }


def finish_state(state: dict[str, Any]) -> dict[str, Any]:
    """Add the AFTER snapshot: heat and throttling may have changed during the run."""
    state["after"] = volatile(facts())
    return state


def node_states(comm: Any, when: str, nodes: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """Each node's CPU, Pi model and drifting state (read by its lowest rank), on every rank.

    Call with when="before" (returns the list), then when="after" with that list: a hot or
    throttled node anywhere in the cluster slows everyone, so every node is recorded.
    """
    import socket

    hosts = comm.allgather(socket.gethostname())
    mine = None
    if hosts.index(hosts[comm.rank]) == comm.rank:
        found = facts()
        mine = {"hostname": hosts[comm.rank], "ranks": hosts.count(hosts[comm.rank]),
                "cpu_model": found.get("cpu_model"), "pi_model": found.get("pi_model"),
                when: volatile(found)}
    gathered = [n for n in comm.allgather(mine) if n is not None]
    if nodes is None:
        return gathered
    for node, new in zip(nodes, gathered):
        node[when] = new[when]
    return nodes
