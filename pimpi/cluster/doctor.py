"""The pre-flight doctor: gather every rank's facts, compare them, and list what will go wrong."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any, Sequence

from pimpi.cluster.facts import SAME_EVERYWHERE, local_facts, lookup
from pimpi.cluster.hostfile import is_loopback
from pimpi.cluster.pingpong import pingmatrix as measure_matrix
from pimpi.cluster.pingpong import slow_links
from pimpi.fileio import atomic_write

__all__ = ["Report", "run_doctor", "find_problems", "matrix_problems", "write_json"]



@dataclass
class Report:
    """What the doctor found: one record per rank (rank order), problems, the optional ping matrix."""

    records: list[dict[str, Any]]
    problems: list[str] = field(default_factory=list)
    matrix: dict[str, Any] | None = None

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_json(self) -> dict[str, Any]:
        return {"version": 1, "records": self.records, "problems": self.problems,
                "pingmatrix": self.matrix}


def run_doctor(
    comm: Any,
    *,
    pingmatrix: bool = False,
    hot_celsius: float = 80.0,
    sizes: Sequence[int] = (8, 1 << 20),
    loops: int | None = None,
    slow_factor: float = 3.0,
) -> Report:
    """Check every rank of `comm`; the same Report is returned on all ranks.

    Each rank reads its local facts, checks that rank 0's working directory exists
    there, and resolves every node's hostname (the `sees` map: name -> first
    address, or None). `pingmatrix` adds node-to-node ping-pong at `sizes`.
    """
    facts = local_facts(mpi=True)
    facts["rank"] = comm.Get_rank()
    root_cwd = comm.bcast(facts["cwd"], root=0)
    facts["root_cwd_exists"] = bool(root_cwd) and os.path.isdir(root_cwd)
    hosts = list(dict.fromkeys(comm.allgather(facts["hostname"])))
    facts["sees"] = {host: _first_address(host) for host in hosts if host}
    records = comm.allgather(facts)
    problems = find_problems(records, hot_celsius=hot_celsius)
    matrix = None
    if pingmatrix:
        matrix = comm.bcast(measure_matrix(comm, sizes, loops=loops), root=0)
        problems += matrix_problems(matrix, factor=slow_factor)
    return Report(records, problems, matrix)


def _first_address(host: str) -> str | None:
    try:
        addresses = lookup(host)
    except OSError:
        return None
    return addresses[0] if addresses else None


def find_problems(records: list[dict[str, Any]], *, hot_celsius: float = 80.0) -> list[str]:
    """Problems in the gathered records, one line each, in a stable order.

    Versions or MPI library differing between ranks; with several nodes, a hostname
    that does not resolve, resolves to loopback, or resolves to different addresses
    on different nodes; a working directory missing somewhere; nodes hot or throttled.
    All ranks on one machine share a hostname: that alone is never a problem.
    """
    problems = []
    for key, label in SAME_EVERYWHERE.items():
        groups: dict[Any, list[dict[str, Any]]] = {}
        for record in records:
            groups.setdefault(record.get(key), []).append(record)
        if len(groups) > 1:
            parts = [f"{_short(value)} on {_where(group)}" for value, group in groups.items()]
            problems.append(f"{label} differs between ranks: " + "; ".join(parts))
    nodes = _by_host(records)
    if len(nodes) > 1:
        problems += _resolution_problems(nodes)
    problems += _cwd_problems(records)
    for host, group in nodes.items():
        temps = [r["temp_c"] for r in group if r.get("temp_c") is not None]
        if temps and max(temps) >= hot_celsius:
            problems.append(f"{host} is hot: {max(temps):.1f} °C (limit {hot_celsius:g} °C)")
        throttled = next((r["throttled"] for r in group if (r.get("throttled") or {}).get("now")), None)
        if throttled:
            now = [f for f in throttled.get("flags", ()) if not f.endswith("-occurred")]
            problems.append(f"{host} is throttled now ({throttled.get('raw')}): {', '.join(now)}")
    return problems


def _resolution_problems(nodes: dict[str, list[dict[str, Any]]]) -> list[str]:
    """Every node resolves every node's hostname: compare what each one sees."""
    problems = []
    for name in nodes:
        seen = {host: (group[0].get("sees") or {}).get(name) for host, group in nodes.items()}
        for host, address in seen.items():
            if address is None:
                problems.append(f"{name} does not resolve on {host}")
            elif is_loopback(address):
                problems.append(
                    f"{name} resolves to loopback {address} on {host}: other nodes cannot reach it "
                    f"that way (the '127.0.1.1 {name}' line in /etc/hosts makes mpirun hang)"
                )
        real = {h: a for h, a in seen.items() if a is not None and not is_loopback(a)}
        own = [a for addrs in (nodes[name][0].get("addresses") or {}).values() for a in addrs]
        stale = {h: a for h, a in real.items() if own and a not in own}
        if stale:  # e.g. an old /etc/hosts entry: that address is not this node's any more
            where = ", ".join(f"{a} on {h}" for h, a in stale.items())
            problems.append(f"{name} resolves to an address it does not have: {where} "
                            f"({name} has {', '.join(own)})")
        elif len(set(real.values())) > 1:  # all its own, but not the same interface everywhere
            where = ", ".join(f"{a} on {h}" for h, a in real.items())
            problems.append(f"{name} resolves differently on different nodes: {where}")
    return problems


def _cwd_problems(records: list[dict[str, Any]]) -> list[str]:
    problems = []
    root_cwd = records[0].get("cwd") if records else None
    gone = [r for r in records if r.get("cwd_exists") is False]
    if gone:
        problems.append(f"working directory does not exist (deleted?) on {_where(gone)}")
    missing = [r for r in records if r.get("root_cwd_exists") is False and r.get("cwd_exists") is not False]
    if missing:
        problems.append(
            f"working directory {root_cwd} (rank 0's) does not exist on {_where(missing)}: "
            "use a path shared by every node (NFS) or create it on each"
        )
    return problems


def matrix_problems(matrix: dict[str, Any] | None, *, factor: float = 3.0) -> list[str]:
    """Slow links in a `pingmatrix` result: latency or bandwidth `factor` times off the median."""
    if not matrix:
        return []
    nodes = matrix["nodes"]
    problems = []
    for link in slow_links(matrix["latency"], factor):
        problems.append(
            f"slow link {nodes[link['a']]} <-> {nodes[link['b']]}: latency {link['value'] * 1e6:.1f} µs, "
            f"{link['value'] / link['median']:.1f}x the median {link['median'] * 1e6:.1f} µs"
        )
    for link in slow_links(matrix["bandwidth"], factor, higher_is_slower=False):
        problems.append(
            f"slow link {nodes[link['a']]} <-> {nodes[link['b']]}: bandwidth {link['value'] / 1e6:.1f} MB/s, "
            f"{link['median'] / link['value']:.1f}x below the median {link['median'] / 1e6:.1f} MB/s"
        )
    return problems


def write_json(report: Report, path: str) -> None:
    """Write the report as JSON atomically: a temporary file beside `path`, then rename."""
    atomic_write(path, json.dumps(report.to_json(), indent=1, default=str) + "\n")


def _by_host(records: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    nodes: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        nodes.setdefault(record.get("hostname") or "?", []).append(record)
    return nodes


def _where(records: list[dict[str, Any]]) -> str:
    """'pi1 (ranks 0-3), pi2 (rank 4)' for a set of records."""
    parts = []
    for host, group in _by_host(records).items():
        ranks = sorted(r.get("rank", -1) for r in group)
        parts.append(f"{host} ({'rank' if len(ranks) == 1 else 'ranks'} {_ranges(ranks)})")
    return ", ".join(parts)


def _ranges(numbers: list[int]) -> str:
    """[0, 1, 2, 5] -> '0-2,5'."""
    spans: list[list[int]] = []
    for n in numbers:
        if spans and n == spans[-1][1] + 1:
            spans[-1][1] = n
        else:
            spans.append([n, n])
    return ",".join(str(a) if a == b else f"{a}-{b}" for a, b in spans)


def _short(value: Any) -> str:
    """A version or library string for one line: the MPI library up to its first comma."""
    if value is None:
        return "(none)"
    return str(value).split(",", 1)[0]
