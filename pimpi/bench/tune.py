"""`bench tune`: time every algorithm at this communicator's size and write the decision table."""

from __future__ import annotations

import os
from typing import Any, Sequence

from pimpi.bench import calls
from pimpi.bench.osu import measure, pimpi_algorithms
from pimpi.bench.benchmark import benchmark
from pimpi.bench.text import fmt_bytes, fmt_seconds, table

__all__ = ["tune", "rules_for", "merge_rules", "PER_BLOCK"]

# Benchmark sizes are one rank's block for these; the decision table compares the whole vector.
PER_BLOCK = ("scatter", "gather", "allgather", "alltoall", "reduce_scatter_block")


def rules_for(winners: Sequence[tuple[int, str]], size: int) -> list[dict[str, Any]]:
    """Decision rules for communicator `size` from (vector bytes, fastest algorithm) pairs.

    Neighbouring sizes with the same winner merge; each rule covers up to the largest size
    it won, and the last winner also takes every larger message.
    """
    rules: list[dict[str, Any]] = []
    ordered = sorted(winners)
    for i, (nbytes, algorithm) in enumerate(ordered):
        last = i == len(ordered) - 1
        if not last and ordered[i + 1][1] == algorithm:
            continue
        rule = {"min_size": size, "max_size": size, "algorithm": algorithm}
        if not last:
            rule = {"max_bytes": nbytes, **rule}
        rules.append(rule)
    return rules


def merge_rules(old: list[dict[str, Any]], new: list[dict[str, Any]], size: int) -> list[dict[str, Any]]:
    """`new` rules for `size` first, then the old rules that were not for exactly `size`."""
    kept = [r for r in old if not (r.get("min_size") == size and r.get("max_size") == size)]
    return new + kept


def _format(result: dict[str, Any]) -> str:
    rows = [[c["op"], fmt_bytes(c["bytes"]), c["best"], fmt_seconds(c["latency_s"][c["best"]])]
            for c in result["choices"]]
    text = table(["collective", "size", "fastest", "latency"], rows,
                 f"fastest algorithm per size on {result['ranks']} ranks")
    how = ("algorithm=None uses it from now on" if result["active"]
           else f"to use it: export PIMPI_TUNING={result['table']}")
    return text + f"decision table written: {result['table']} ({how})\n"


@benchmark(text=_format)
def tune(comm: Any, *, ops: Sequence[str], sizes: Sequence[int], repeats: int = 3,
         skip: int = 10, loop: int = 100, out: str | None = None) -> dict[str, Any]:
    """Measure each algorithm (median of `repeats`), pick the fastest per size, save the table.

    Rank 0 writes the table; every rank returns the choices and the path.
    """
    from pimpi.collectives import tuning

    path = str(out) if out else str(tuning.user_table_path())
    choices = []
    new_rules: dict[str, list[dict[str, Any]]] = {}
    for op in ops:
        algorithms = [a for a in pimpi_algorithms(op) if a != calls.AUTO]
        if not algorithms:
            raise ValueError(f"pimpi has no algorithms for {op!r}")
        op_sizes = [0] if op == "barrier" else [n for n in sizes if calls.valid_size(op, n)]
        winners = []
        for nbytes in op_sizes:
            samples: dict[str, list[float]] = {a: [] for a in algorithms}
            for _ in range(repeats):
                for alg in algorithms:
                    samples[alg].append(measure(comm, op, nbytes, alg, skip, loop))
            medians = {a: sorted(v)[len(v) // 2] for a, v in samples.items()}
            best = min(medians, key=medians.__getitem__)
            vector = nbytes * comm.size if op in PER_BLOCK else nbytes
            winners.append((vector, best))
            choices.append({"op": op, "bytes": nbytes, "vector_bytes": vector, "best": best,
                            "latency_s": medians})
        new_rules[op] = rules_for(winners, comm.size)
    if comm.rank == 0:
        try:
            old = tuning.load_table(path)
        except (OSError, ValueError):
            old = tuning.load_table(tuning.DEFAULT_TABLE_PATH)
        merged = dict(old)
        for op, rules in new_rules.items():
            merged[op] = merge_rules(list(old.get(op, [])), rules, comm.size)
        tuning.save_table(merged, path)
    comm.Barrier()
    active = os.path.abspath(path) == os.path.abspath(tuning.user_table_path())
    return {"ranks": comm.size, "table": path, "active": active, "rules": new_rules, "choices": choices}
