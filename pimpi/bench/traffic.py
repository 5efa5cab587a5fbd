"""`bench traffic`: count what each algorithm really sends (messages, bytes, rounds) by tracing it."""

from __future__ import annotations

from typing import Any, Sequence

from pimpi.bench import calls
from pimpi.bench.benchmark import benchmark
from pimpi.bench.text import fmt_bytes, table

__all__ = ["traffic", "traffic_index"]


def _format(result: dict[str, Any]) -> str:
    rows = [[r["op"], fmt_bytes(r["bytes"]), r["algorithm"], r["rounds"], r["path_messages"],
             fmt_bytes(r["path_bytes"]), r["messages"], fmt_bytes(r["total_bytes"])] for r in result["rows"]]
    return table(["collective", "size", "algorithm", "rounds", "path msgs", "path bytes", "all msgs",
                  "all bytes"], rows, f"traffic of each algorithm on {result['ranks']} ranks (traced)")


@benchmark(text=_format)
def traffic(comm: Any, *, ops: Sequence[str], sizes: Sequence[int]) -> dict[str, Any]:
    """Trace one run of every algorithm of `ops` at each size (bytes per rank's block, as OSU).

    `path_*` is the one-port critical path (what cost() predicts, what a switch pays);
    `messages`/`total_bytes` is everything sent (what one shared medium must carry).
    """
    from pimpi.collectives import ALGORITHMS
    from pimpi.collectives.trace import trace_collective

    rows = []
    for op in ops:
        if op not in ALGORITHMS:
            raise ValueError(f"unknown collective {op!r}; known: {', '.join(ALGORITHMS)}")
        dtype = "float32" if op in calls.REDUCING else "uint8"
        itemsize = 4 if dtype == "float32" else 1
        for nbytes in ([0] if op == "barrier" else [n for n in sizes if calls.valid_size(op, n)]):
            for alg in ALGORITHMS[op]:
                report = trace_collective(comm, op, alg, max(1, nbytes // itemsize), dtype=dtype)
                if report is not None:
                    totals = report.trace.to_dict()["totals"]
                    rows.append({"op": op, "bytes": nbytes, "algorithm": alg, "rounds": totals["rounds"],
                                 "path_messages": totals["critical_path_messages"],
                                 "path_bytes": totals["critical_path_bytes"],
                                 "messages": totals["messages"], "total_bytes": totals["bytes"]})
    return comm.bcast({"ranks": comm.size, "rows": rows}, root=0)


def traffic_index(result: dict[str, Any]) -> dict[tuple[str, int, str], dict[str, Any]]:
    """{(op, bytes, algorithm): row} of a traffic result."""
    return {(r["op"], r["bytes"], r["algorithm"]): r for r in result["rows"]}
