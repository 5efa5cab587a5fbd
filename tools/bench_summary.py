"""docs/results/SUMMARY.md from the result files: the tables people read, and the checks."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

from pimpi.bench.schema import read_json, write_text_atomic
from pimpi.bench.text import fmt_bytes, fmt_num, fmt_seconds

__all__ = ["write_summary", "collective_checks", "scaling_checks"]

SMALL, LARGE = 1024, 1 << 20


def _cell(value: Any) -> str:
    """A table cell: control characters dropped (MPI library strings can end in a NUL)."""
    return "".join(ch for ch in str(value) if ch.isprintable()).strip()


def _md(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def _load(folder: Path, name: str) -> dict[str, Any] | None:
    path = folder / name
    return read_json(path) if path.is_file() else None


def collective_checks(results: dict[str, Any]) -> list[dict[str, Any]]:
    """pimpi's own choice ("auto") against MPI's built-in: ≤3× below 1 KiB, ≤1.0× from 1 MiB."""
    out = []
    for row in results["rows"]:
        if row["impl"] != "auto" or row["ratio"] is None:
            continue
        if row["bytes"] < SMALL:
            limit = 3.0
        elif row["bytes"] >= LARGE:
            limit = 1.0
        else:
            continue
        out.append({"op": row["op"], "bytes": row["bytes"], "ratio": row["ratio"], "limit": limit,
                    "ok": row["ratio"] <= limit})
    return out


def scaling_checks(results: dict[str, Any]) -> list[tuple[str, float | None, str, bool]]:
    """The render targets: 2 ranks ≥ 1.8× one rank and ≥ 0.95× Pool(2)."""
    rows = {r["ranks"]: r for r in results["rows"]}
    two = rows.get(2)
    if two is None:
        return []
    checks = [("2-rank speedup over 1 rank", two["speedup"], ">= 1.8", two["speedup"] >= 1.8)]
    if results["baselines"]["pool"]["processes"] == 2:
        checks.append(("2 ranks vs Pool(2)", two["vs_pool"], ">= 0.95", two["vs_pool"] >= 0.95))
    imb = two.get("imbalance")
    if imb:
        checks.append(("2-rank imbalance (max/mean busy)", imb["median"], "close to 1", imb["median"] <= 1.1))
    return checks


def _machine(doc: dict[str, Any]) -> str:
    m = doc["machine"]
    before, after = m.get("before") or {}, m.get("after") or {}
    rows = [["CPU", m.get("cpu_model")], ["Pi model", m.get("pi_model") or "-"], ["cores", m.get("cores")],
            ["MPI", m.get("mpi_library")], ["Python / mpi4py / numpy", f"{m.get('python')} / {m.get('mpi4py')} / {m.get('numpy')}"],
            ["governor", before.get("governor") or "-"],
            ["temperature before/after", f"{before.get('temp_c')} / {after.get('temp_c')}"],
            ["throttling before/after", f"{before.get('throttled')} / {after.get('throttled')}"],
            ["load average before/after", f"{before.get('loadavg')} / {after.get('loadavg')}"],
            ["pimpi commit", m.get("pimpi_commit")]]
    return _md(["", "this machine (from pingpong.json)"], rows)


def _collectives(doc: dict[str, Any]) -> str:
    """Grids (collective × size) of auto/MPI against the targets, and of the fastest algorithm."""
    res = doc["results"]
    checks = collective_checks(res)
    sizes = sorted({c["bytes"] for c in checks})
    ops = list(dict.fromkeys(c["op"] for c in checks))
    at = {(c["op"], c["bytes"]): c for c in checks}
    cell = lambda c: "-" if c is None else (fmt_num(c["ratio"]) if c["ok"] else f"**{fmt_num(c['ratio'])}**")  # noqa: E731
    passed = sum(c["ok"] for c in checks)
    text = (f"#### {res['ranks']} ranks: pimpi's automatic choice / MPI built-in (same run), median of"
            f" {res.get('repeats', '?')}\n\nTargets: <= 3 below 1 KiB, <= 1.0 from 1 MiB; **bold** misses"
            f" ({passed} of {len(checks)} met).\n\n")
    text += _md(["collective", *(fmt_bytes(n) for n in sizes)],
                [[op, *(cell(at.get((op, n))) for n in sizes)] for op in ops])
    best: dict[tuple[str, int], tuple[str, float]] = {}
    for row in res["rows"]:
        if row["impl"] not in ("builtin", "auto") and row["ratio"] is not None:
            key = (row["op"], row["bytes"])
            if key not in best or row["ratio"] < best[key][1]:
                best[key] = (row["impl"], row["ratio"])
    rows = [[op, *(f"{best[(op, n)][0]} {fmt_num(best[(op, n)][1])}" if (op, n) in best else "-" for n in sizes)]
            for op in ops]
    text += "\nFastest pimpi algorithm and its ratio at the same sizes:\n\n"
    return text + _md(["collective", *(fmt_bytes(n) for n in sizes)], rows)


def _scaling(doc: dict[str, Any]) -> str:
    res = doc["results"]
    base = res["baselines"]
    rows = [["serial", "-", fmt_seconds(base["serial"]["seconds"]["median"]), fmt_num(base["serial"]["frames_per_s"]),
             "-", "-", "-", "-", "-"],
            [f"Pool({base['pool']['processes']})", "-", fmt_seconds(base["pool"]["seconds"]["median"]),
             fmt_num(base["pool"]["frames_per_s"]), "-", "-", "1.00", "-", "-"]]
    for r in res["rows"]:
        imb = r.get("imbalance")
        share = r.get("cpu_share")
        rows.append([f"MPI{' (oversubscribed)' if r['oversubscribed'] else ''}", r["ranks"],
                     f"{fmt_seconds(r['seconds']['median'])} ({fmt_seconds(r['seconds']['min'])}–{fmt_seconds(r['seconds']['max'])})",
                     fmt_num(r["frames_per_s"]), fmt_num(r["speedup"]), fmt_num(r["efficiency"]),
                     fmt_num(r["vs_pool"]), fmt_num(imb["median"]) if imb else "-",
                     f"{share['median']:.0%}" if share else "-"])
    text = (f"{res['workload']}, {res['frames']} frames {res['width']}x{res['height']}, {res['schedule']} schedule,"
            f" median (min–max) of {res['repeats']}; speedup vs {res['speedup_base']}.\n\n")
    text += _md(["run", "ranks", "time", "frames/s", "speedup", "efficiency", "vs Pool", "imbalance", "cpu share"],
                rows)
    text += ("\ncpu share = CPU time the ranks got / (ranks × time); well below 100 % means other work"
             " on the machine took the cores, so the speedup measures contention, not the program.\n")
    fraction = res["amdahl"]["serial_fraction"]
    text += f"\nAmdahl serial fraction (fitted on ranks {res['amdahl']['fitted_on']}): {fmt_num(fraction, 3)}\n\n"
    checks = scaling_checks(res)
    if checks:
        share = next((r.get("cpu_share") for r in res["rows"] if r["ranks"] == 2), None)
        note = "" if not share else f"2 ranks got {share['median']:.0%} of their cores"
        text += _md(["render check", "value", "target", "", "note"],
                    [[name, fmt_num(v), t, "ok" if ok else "**missed**", note] for name, v, t, ok in checks])
    return text


def _predict(docs: dict[str, dict[str, Any]]) -> str:
    rows = []
    for name, doc in docs.items():
        res = doc["results"]
        coll = {(c["op"], c["bytes"], c["ranks"]): c for c in res.get("collectives") or []}
        for r in (res.get("render") or {}).get("rows", []):
            ar = coll.get(("allreduce", 1 << 20, r["ranks"]))
            rows.append([name, r["nodes"], r["ranks"], fmt_num(r["speedup"]), fmt_num(r["efficiency"]),
                         fmt_num(r["vs_one_node"]), fmt_seconds(ar["best_seconds"]) + f" ({ar['best']})" if ar else "-"])
    return _md(["profile", "nodes", "ranks", "render speedup vs 1 core", "efficiency", "vs 1 node",
                "allreduce 1 MiB"], rows)


def _compare(doc: dict[str, Any]) -> str:
    """Predicted / measured per algorithm and size (bold: outside the tolerance)."""
    res = doc["results"]
    tol = res["tolerance"]
    text = f"{res['within']} of {res['judged']} predictions within {tol:.0%} (profile `{res['profile']}`).\n\n"
    ops: dict[str, list[dict[str, Any]]] = {}
    for r in res["collectives"]:
        ops.setdefault(r["op"], []).append(r)
    cell = lambda r: fmt_num(r["ratio"]) if r["within"] else f"**{fmt_num(r['ratio'])}**"  # noqa: E731
    for op, rows in ops.items():
        sizes = list(dict.fromkeys(r["bytes"] for r in rows))
        algs = list(dict.fromkeys(r["algorithm"] for r in rows))
        at = {(r["algorithm"], r["bytes"]): r for r in rows}
        body = [[alg, *(cell(at[(alg, n)]) if (alg, n) in at else "-" for n in sizes)] for alg in algs]
        text += f"{op} on {rows[0]['ranks']} ranks, predicted / measured time:\n\n"
        text += _md(["algorithm", *(fmt_bytes(n) for n in sizes)], body) + "\n"
    if res["render"]:
        def verdict(r: dict[str, Any]) -> str:
            if r["oversubscribed"]:
                return "not judged (more ranks than cores)"
            if r.get("contended"):
                return "not judged (the ranks got too little CPU)"
            return "yes" if r["within"] else "**no**"

        rows = [[r["ranks"], fmt_num(r["predicted"]), fmt_num(r["measured"]), fmt_num(r["ratio"]),
                 f"{r['cpu_share']:.0%}" if r.get("cpu_share") is not None else "-", verdict(r)]
                for r in res["render"]]
        text += "Render speedup:\n\n" + _md(["ranks", "predicted", "measured", "pred/meas", "cpu share",
                                              f"within {tol:.0%}"], rows)
    return text


def shaping_note(pingpong: dict[str, Any], predicted: dict[str, Any]) -> str | None:
    """A warning when the virtual links carried messages faster than the profile's rate."""
    rate = 8.0 / predicted["results"]["profile"]["beta_s_per_byte"]  # bits per second
    fast = [(r["size"], 8 * r["size"] / r["latency_s"]["median"]) for r in pingpong["results"]["rows"]
            if r["size"] >= 64 << 10 and r["latency_s"]["median"] > 0]
    over = [(n, bps) for n, bps in fast if bps > 1.2 * rate]
    if not over:
        return None
    top = max(bps for _, bps in over)
    return (f"Note: the shaped virtual links carried messages up to {fmt_bytes(max(n for n, _ in over))} at up to"
            f" {top / 1e6:.0f} Mbit/s, above the profile's {rate / 1e6:.0f} Mbit/s (the rate limiter lets"
            " a burst through at full speed), so messages that small arrive sooner than on a real link.\n")


def write_summary(folder: str | os.PathLike) -> Path:
    """Write SUMMARY.md in `folder` (atomically) from whichever result files are there."""
    folder = Path(folder)
    parts = ["# Benchmark results on this machine\n",
             "Regenerate with `.venv/bin/python -m tools.bench_results` (see docs/benchmarks.md). "
             "Every number comes from the JSON files beside this one, which also hold each run's "
             "machine state before and after.\n"]
    pp = _load(folder, "pingpong.json")
    if pp:
        parts += ["## Machine\n", _machine(pp)]
        fit = pp["results"]["hockney"]
        parts.append(f"\nPing-pong (2 ranks, shared memory): α = {fmt_seconds(fit['alpha_s'])},"
                     f" 1/β = {8 / fit['beta_s_per_byte'] / 1e9:.1f} Gbit/s.\n")
    colls = [d for d in (_load(folder, f"collectives-{n}.json") for n in (2, 4)) if d]
    if colls:
        parts.append("## Collectives: pimpi vs MPI built-in\n")
        parts += [_collectives(d) for d in colls]
    sc = _load(folder, "scaling.json")
    if sc:
        parts += ["## Render scaling (cluster vs one machine)\n", _scaling(sc), "\n![scaling](scaling.png)\n"]
    preds = {p: d for p in ("pi3", "pi4", "pi5") if (d := _load(folder, f"predict-{p}.json"))}
    if preds:
        parts += ["## Predictions for Pi clusters (α–β model; assumptions in each predict-*.json)\n", _predict(preds)]
    for name, title in (("vcluster-compare-profile.json",
                         "Honesty check: the pi4 profile's figures vs the shaped virtual cluster"),
                        ("vcluster-compare.json",
                         "Honesty check: prediction from the virtual cluster's measured ping-pong vs measurement"),
                        ("compare-local.json", "Honesty check: prediction vs measurement on local ranks")):
        doc = _load(folder, name)
        if doc:
            parts += [f"## {title}\n", _compare(doc)]
            vpp, vpred = _load(folder, "vcluster-pingpong.json"), _load(folder, "vcluster-predict-profile.json")
            if name == "vcluster-compare-profile.json" and vpp and vpred:
                note = shaping_note(vpp, vpred)
                if note:
                    parts.append(note)
    text = "\n".join(parts)
    return write_text_atomic(folder / "SUMMARY.md", text)
