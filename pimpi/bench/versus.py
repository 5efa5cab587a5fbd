"""`bench versus`: this run's result file against the previous run's, row by row, with a verdict.

Only ratios measured inside one run are compared (pimpi against Pool in `scaling`; a pimpi
algorithm against the built-in, and checked against unchecked, in `collectives`): both
sides of a ratio saw the same load, so a busy machine moves them far less than it moves
seconds. A ratio where lower is better (latency ratios) or higher is better (vs Pool,
speedup) is "better" or "worse" only beyond `tolerance`, else "same".
"""

from __future__ import annotations

from typing import Any, Iterator

from pimpi.bench.benchmark import benchmark
from pimpi.bench.schema import read_json
from pimpi.bench.text import fmt_bytes, fmt_num, table

__all__ = ["versus", "judge", "ratios"]

KINDS = ("scaling", "collectives")


def judge(before: float, after: float, tolerance: float, higher_is_better: bool) -> str:
    """"better", "worse" or "same": the relative change of a ratio against `tolerance`."""
    if before <= 0:
        raise ValueError(f"a previous ratio must be positive, got {before!r}")
    change = after / before - 1
    if abs(change) <= tolerance:
        return "same"
    return "better" if (change > 0) == higher_is_better else "worse"


def ratios(doc: dict[str, Any]) -> Iterator[tuple[str, float, bool]]:
    """(name, value, higher_is_better) of every in-run ratio of a result document."""
    res = doc["results"]
    if doc["kind"] == "scaling":
        for row in res["rows"]:
            for key in ("vs_pool", "speedup"):
                if row.get(key) and not (key == "speedup" and row["ranks"] == 1):  # 1 by definition
                    yield f"{res['workload']} {row['ranks']} ranks {key}", row[key], True
        return
    for row in res["rows"]:
        where = f"{row['op']} {fmt_bytes(row['bytes'])} {res['ranks']} ranks {row['impl']}"
        unchecked = " unchecked" if row.get("check") is False else ""
        if row.get("ratio"):
            yield f"{where}{unchecked} /mpi", row["ratio"], False
        if row.get("check_ratio"):
            yield f"{where} checked/unchecked", row["check_ratio"], False


def _load(doc: dict[str, Any]) -> tuple[str, bool]:
    """The load averages recorded before the run, as text ("?" when none were), and
    whether the 1-minute one exceeded the machine's cores (both sides shared them)."""
    machine = doc.get("machine") or {}
    before = machine.get("before") or {}
    loads = [v for k, v in before.items() if "load" in k.lower()]
    first = loads[0] if loads else None
    minute = first[0] if isinstance(first, list) and first else first
    busy = isinstance(minute, (int, float)) and minute > (machine.get("cpus") or 1)
    return (" ".join(str(v) for v in loads) or "?"), busy


def _format(result: dict[str, Any]) -> str:
    rows = [[r["name"], fmt_num(r["previous"]), fmt_num(r["now"]), f"{r['change']:+.0%}", r["verdict"]]
            for r in result["rows"]]
    text = table(["ratio", "previous", "now", "change", "verdict"], rows,
                 f"{result['kind']}: {result['now']} against {result['previous']}"
                 f" (load before: previous {result['load']['previous']}, now {result['load']['now']})")
    counts = result["counts"]
    if result["busy"]:
        text += "a run had a load average above its cores: ratios shift with what else ran; judge on a quiet machine\n"
    return text + (f"verdict: {result['verdict']} ({counts['better']} better, {counts['same']} same within"
                   f" {result['tolerance']:.0%}, {counts['worse']} worse, {counts['unmatched']} unmatched)\n")


@benchmark(text=_format, mpi=False)
def versus(_comm: Any, *, previous: str, now: str, tolerance: float = 0.1,
           hostfile: str | None = None) -> dict[str, Any]:
    """Compare the in-run ratios of two result files of the same kind; verdict "worse" when
    any ratio got worse beyond `tolerance`, else "better" when any improved, else "same"."""
    if not 0 <= tolerance < 1:
        raise ValueError(f"tolerance must be in [0, 1), got {tolerance!r}")
    old, new = read_json(previous), read_json(now)
    if old["kind"] != new["kind"] or new["kind"] not in KINDS:
        raise ValueError(f"{now!r} ({new['kind']}) and {previous!r} ({old['kind']}) must both be one of"
                         f" {', '.join(KINDS)}")
    before = {name: (value, hib) for name, value, hib in ratios(old)}
    rows = []
    unmatched = 0
    for name, value, hib in ratios(new):
        if name not in before:
            unmatched += 1
            continue
        prev = before[name][0]
        rows.append({"name": name, "previous": prev, "now": value, "change": value / prev - 1,
                     "verdict": judge(prev, value, tolerance, hib)})
    counts = {v: sum(r["verdict"] == v for r in rows) for v in ("better", "same", "worse")}
    counts["unmatched"] = unmatched + sum(1 for name in before if name not in {r["name"] for r in rows})
    verdict = "worse" if counts["worse"] else ("better" if counts["better"] else "same")
    if not rows:
        verdict = "nothing in common"
    (load_old, busy_old), (load_new, busy_new) = _load(old), _load(new)
    return {"kind": new["kind"], "previous": previous, "now": now, "tolerance": tolerance,
            "load": {"previous": load_old, "now": load_new}, "busy": busy_old or busy_new,
            "rows": rows, "counts": counts, "verdict": verdict}
