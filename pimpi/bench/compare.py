"""`bench compare`: predicted against measured (collective times, render speedup), within a tolerance."""

from __future__ import annotations

from typing import Any

from pimpi.bench.benchmark import benchmark
from pimpi.bench.schema import read_json
from pimpi.bench.text import fmt_bytes, fmt_num, fmt_seconds, table

__all__ = ["agreement", "compare_collectives", "compare_render", "compare", "MIN_CPU_SHARE"]

# Below this share of their cores, ranks were fighting other work: a speedup says little.
MIN_CPU_SHARE = 0.8


def agreement(predicted: float, measured: float, tolerance: float) -> dict[str, Any]:
    """{predicted, measured, error = |p - m| / m, within}: the check is relative to the measurement."""
    if measured <= 0:
        raise ValueError(f"measured value must be positive, got {measured!r}")
    error = abs(predicted - measured) / measured
    return {"predicted": predicted, "measured": measured, "ratio": predicted / measured,
            "error": error, "within": error <= tolerance}


def compare_collectives(predicted: dict[str, Any], measured: dict[str, Any],
                        tolerance: float) -> list[dict[str, Any]]:
    """Every pimpi algorithm measured by `bench collectives` that `bench predict` priced."""
    priced = {(r["op"], r["bytes"], r["ranks"]): r["algorithms"] for r in predicted.get("collectives") or []}
    ranks = measured["ranks"]
    rows = []
    for row in measured["rows"]:
        algs = priced.get((row["op"], row["bytes"], ranks))
        if not algs or row["impl"] not in algs:
            continue
        rows.append({"op": row["op"], "bytes": row["bytes"], "ranks": ranks, "algorithm": row["impl"],
                     **agreement(algs[row["impl"]]["seconds"], row["latency_s"]["median"], tolerance)})
    return rows


def compare_render(predicted: dict[str, Any], measured: dict[str, Any], tolerance: float) -> list[dict[str, Any]]:
    """Predicted speedup vs `bench scaling`'s measured speedup at the same rank counts.

    Rows where the measurement ran more ranks than cores are marked `oversubscribed`, and
    rows whose ranks got less than `MIN_CPU_SHARE` of their cores (other work on the
    machine) `contended`: the model gives every rank its own core, so both are listed
    but not judged.
    """
    render = predicted.get("render")
    if not render:
        return []
    by_ranks = {r["ranks"]: r for r in render["rows"]}
    rows = []
    for row in measured["rows"]:
        guess = by_ranks.get(row["ranks"])
        if guess is None or row["ranks"] == 1:
            continue
        share = (row.get("cpu_share") or {}).get("median")
        rows.append({"ranks": row["ranks"], "oversubscribed": row["oversubscribed"], "cpu_share": share,
                     "contended": share is not None and share < MIN_CPU_SHARE,
                     **agreement(guess["speedup"], row["speedup"], tolerance)})
    return rows


def _format(result: dict[str, Any]) -> str:
    tol = f"{result['tolerance']:.0%}"
    text = ""
    if result["collectives"]:
        rows = [[r["op"], r["ranks"], fmt_bytes(r["bytes"]), r["algorithm"], fmt_seconds(r["predicted"]),
                 fmt_seconds(r["measured"]), fmt_num(r["ratio"]), "yes" if r["within"] else "NO"]
                for r in result["collectives"]]
        text += table(["collective", "ranks", "size", "algorithm", "predicted", "measured", "pred/meas",
                       f"within {tol}"], rows, f"collectives: predicted ({result['profile']}) vs measured")
    if result["render"]:
        rows = [[f"{r['ranks']}{'*' if r['oversubscribed'] else ''}", fmt_num(r["predicted"]),
                 fmt_num(r["measured"]), fmt_num(r["ratio"]),
                 f"{r['cpu_share']:.0%}" if r.get("cpu_share") is not None else "-",
                 "-" if r["oversubscribed"] or r.get("contended") else ("yes" if r["within"] else "NO")]
                for r in result["render"]]
        text += table(["ranks", "predicted speedup", "measured speedup", "pred/meas", "cpu share", f"within {tol}"],
                      rows, f"render speedup (* more ranks than cores, or cpu share < {MIN_CPU_SHARE:.0%}: not judged)")
    return text + f"{result['within']} of {result['judged']} predictions within {tol} of the measurement\n"


@benchmark(text=_format, mpi=False)
def compare(_comm: Any, *, predicted: str, measured: list[str], tolerance: float = 0.25,
            hostfile: str | None = None) -> dict[str, Any]:
    """Compare a `predict` result with `collectives` and `scaling` results."""
    pred = read_json(predicted, kind="predict")["results"]
    coll: list[dict[str, Any]] = []
    render: list[dict[str, Any]] = []
    for path in measured:
        doc = read_json(path)
        if doc["kind"] == "collectives":
            coll += compare_collectives(pred, doc["results"], tolerance)
        elif doc["kind"] == "scaling":
            render += compare_render(pred, doc["results"], tolerance)
        else:
            raise ValueError(f"{path!r} holds a {doc['kind']!r} result; compare takes collectives or scaling")
    judged = [r for r in coll + render if not (r.get("oversubscribed") or r.get("contended"))]
    return {"predicted": predicted, "measured": list(measured), "tolerance": tolerance,
            "profile": pred["profile"]["name"], "collectives": coll, "render": render,
            "within": sum(r["within"] for r in judged), "judged": len(judged)}
