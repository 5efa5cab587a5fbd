"""`bench collectives`: OSU-style latency per size, MPI's built-in beside each pimpi algorithm."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from pimpi.bench import calls
from pimpi.bench.benchmark import benchmark
from pimpi.bench.text import fmt_bytes, fmt_num, fmt_seconds, table
from pimpi.bench.timing import loops_for, summary, timed_loop

__all__ = ["collectives", "pimpi_algorithms", "format_collectives"]


def pimpi_algorithms(op: str, wanted: Sequence[str] | None = None) -> list[str]:
    """pimpi's algorithm names for `op` (empty when pimpi.collectives has none for it).

    "auto" (what algorithm=None picks from the decision table) comes first; `wanted`
    keeps only the names it lists.
    """
    from pimpi.collectives import ALGORITHMS

    if op in calls.NONBLOCKING_OPS:  # one schedule each: "auto" is it
        names = [calls.AUTO]
    else:
        names = [calls.AUTO, *ALGORITHMS.get(op, ())] if op in ALGORITHMS else []
    return [n for n in names if wanted is None or n in wanted]


def _average_over_ranks(comm: Any, seconds: float) -> float:
    """OSU's reported latency: the mean over ranks of each rank's mean time."""
    from mpi4py import MPI

    buf = np.array([seconds], dtype=np.float64)
    comm.Allreduce(MPI.IN_PLACE, buf, op=MPI.SUM)
    return float(buf[0]) / comm.size


def measure(comm: Any, op: str, nbytes: int, algorithm: str | None, skip: int, loop: int,
            check: bool = True) -> float:
    """One repetition: average latency in seconds of `op` at `nbytes` (None: built-in)."""
    call = calls.make_call(comm, op, nbytes, algorithm, check)
    skip, loop = loops_for(nbytes, skip, loop)
    return _average_over_ranks(comm, timed_loop(comm, call, skip, loop))


def _ratio(pimpi: float, builtin: float) -> float | None:
    return pimpi / builtin if builtin > 0 else None


def format_collectives(results: dict[str, Any]) -> str:
    """One table per collective: median latency of each implementation and its ratio; with
    `check_cost`, each algorithm's unchecked latency and checked/unchecked beside it."""
    out = []
    ops: dict[str, list[dict[str, Any]]] = {}
    for row in results["rows"]:
        ops.setdefault(row["op"], []).append(row)
    for op, rows in ops.items():
        impls = list(dict.fromkeys(r["impl"] for r in rows if r.get("check", True)))
        algs = [i for i in impls if i != "builtin"]
        unchecked = [a for a in algs if any(r["impl"] == a and r.get("check") is False for r in rows)]
        headers = ["size", *impls, *(f"{a} unchecked" for a in unchecked), *(f"{a}/mpi" for a in algs),
                   *(f"{a} chk/unchk" for a in unchecked)]
        body = []
        for nbytes in dict.fromkeys(r["bytes"] for r in rows):
            at = {r["impl"]: r for r in rows if r["bytes"] == nbytes and r.get("check", True)}
            bare = {r["impl"]: r for r in rows if r["bytes"] == nbytes and r.get("check") is False}
            body.append([fmt_bytes(nbytes),
                         *(fmt_seconds(at[i]["latency_s"]["median"]) for i in impls),
                         *(fmt_seconds(bare[a]["latency_s"]["median"]) for a in unchecked),
                         *(fmt_num(at[a]["ratio"]) for a in algs),
                         *(fmt_num(at[a].get("check_ratio")) for a in unchecked)])
        title = f"{op} latency (median of {results['repeats']}) on {results['ranks']} ranks"
        out.append(table(headers, body, title))
    return "\n".join(out)


@benchmark(text=format_collectives)
def collectives(comm: Any, *, ops: Sequence[str], sizes: Sequence[int],
                algorithms: Sequence[str] | None = None, repeats: int = 3,
                skip: int = 10, loop: int = 100, check: bool = True,
                check_cost: bool = False) -> dict[str, Any]:
    """Latency rows {op, bytes, impl, latency_s{min,median,max}, ratio} for every op and size.

    Implementations alternate inside each repetition, so drift (heat, other load) hits all
    alike; ratio = pimpi median / built-in median from this same run. check=False times
    pimpi's trusted fast path (no agreement on the arguments before each call).
    `check_cost` times every pimpi algorithm both ways, interleaved, and adds
    check_ratio = checked median / unchecked median (rows carry "check").
    """
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, got {repeats!r}")
    known = (*calls.OPS, *calls.NONBLOCKING_OPS)
    for op in ops:
        if op not in known:
            raise ValueError(f"unknown collective {op!r}; known: {', '.join(known)}")
    rows: list[dict[str, Any]] = []
    for op in ops:
        algs = pimpi_algorithms(op, algorithms)
        impls: list[tuple[str | None, bool]] = [(None, check), *((a, check) for a in algs)]
        if check_cost:
            impls = [(None, True), *((a, True) for a in algs), *((a, False) for a in algs)]
        op_sizes = [0] if op in ("barrier", "ibarrier") else [n for n in sizes if calls.valid_size(op, n)]
        for nbytes in op_sizes:
            samples: dict[tuple[str | None, bool], list[float]] = {impl: [] for impl in impls}
            for _ in range(repeats):
                for impl, checked in impls:
                    samples[impl, checked].append(measure(comm, op, nbytes, impl, skip, loop, checked))
            base = summary(samples[None, impls[0][1]])
            for impl, checked in impls:
                stats = summary(samples[impl, checked])
                row = {"op": op, "bytes": nbytes, "impl": impl or "builtin", "latency_s": stats,
                       "ratio": None if impl is None else _ratio(stats["median"], base["median"])}
                if check_cost:
                    row["check"] = checked
                    if impl is not None and checked:
                        row["check_ratio"] = _ratio(stats["median"], summary(samples[impl, False])["median"])
                rows.append(row)
    return {"ranks": comm.size, "skip": skip, "loop": loop, "repeats": repeats,
            "check": "both" if check_cost else check,
            "size_meaning": "bytes per rank's block (OSU); reductions sum float32",
            "rows": rows}
