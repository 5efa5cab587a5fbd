"""The MPI benchmarks in quick mode: structure and internal consistency, never absolute times."""

from __future__ import annotations

import json

import numpy as np
import pytest

from pimpi.bench import network, osu, registry
from pimpi.testing import assert_all_ranks


@pytest.mark.mpi
def test_collectives_rows_and_ratio_column(comm, shared_tmp_path):
    path = shared_tmp_path / "coll.json"
    doc = registry.run("collectives", json_path=str(path), quiet=True, ops=["allreduce", "bcast", "barrier"],
                       sizes=[1, 64], repeats=2, skip=1, loop=2)
    rows = doc["results"]["rows"]
    problems = []
    for row in rows:
        lat = row["latency_s"]
        if not 0 < lat["min"] <= lat["median"] <= lat["max"]:
            problems.append(f"bad latency {row}")
        base = next(r for r in rows if r["op"] == row["op"] and r["bytes"] == row["bytes"]
                    and r["impl"] == "builtin")
        expected = None if row["impl"] == "builtin" else lat["median"] / base["latency_s"]["median"]
        if (row["ratio"] is None) != (expected is None) or (
                expected is not None and abs(row["ratio"] - expected) > 1e-9 * expected):
            problems.append(f"ratio {row['ratio']} != {expected} for {row['op']}/{row['impl']}")
    sizes = {(r["op"], r["bytes"]) for r in rows}
    if sizes != {("allreduce", 64), ("bcast", 1), ("bcast", 64), ("barrier", 0)}:
        problems.append(f"sizes measured: {sorted(sizes)}")  # allreduce sums float32: no 1-byte row
    impls = {r["impl"] for r in rows if r["op"] == "allreduce"}
    if impls != {"builtin", *osu.pimpi_algorithms("allreduce")}:
        problems.append(f"implementations {impls}")
    comm.Barrier()
    on_disk = json.loads(path.read_text())
    machine = on_disk["machine"]
    if on_disk["schema"] != "pimpi.bench/1" or on_disk["kind"] != "collectives" or machine["ranks"] != comm.size:
        problems.append(f"envelope {on_disk['schema']} {on_disk['kind']} {machine['ranks']}")
    if machine["before"] is None or machine["after"] is None or "cpu_model" not in machine:
        problems.append("machine state incomplete")
    nodes = machine["nodes"]
    if sum(n["ranks"] for n in nodes) != comm.size or any("before" not in n or "after" not in n for n in nodes):
        problems.append(f"per-node state incomplete: {nodes}")
    assert_all_ranks(comm, not problems, "; ".join(problems))


@pytest.mark.mpi
@pytest.mark.timeout(120)
def test_collectives_times_the_nonblocking_schedules_and_the_trusted_path(comm):
    """iallreduce/ibarrier: MPI's Ixxx().Wait() beside pimpi's schedule ("auto"); --no-check
    runs the blocking algorithms without the agreement and says so in the result."""
    doc = registry.run("collectives", json_path=None, quiet=True, ops=["iallreduce", "ibarrier", "bcast"],
                       sizes=[4], algorithms=["auto", "binomial"], repeats=1, skip=0, loop=2, check=False)
    results = doc["results"]
    got = {(r["op"], r["bytes"], r["impl"]) for r in results["rows"]}
    want = {("iallreduce", 4, "builtin"), ("iallreduce", 4, "auto"), ("ibarrier", 0, "builtin"),
            ("ibarrier", 0, "auto"), ("bcast", 4, "builtin"), ("bcast", 4, "auto"), ("bcast", 4, "binomial")}
    assert_all_ranks(comm, got == want and results["check"] is False, f"rows {sorted(got)}")
    with pytest.raises(ValueError, match="unknown collective 'inosuch'"):
        registry.run("collectives", json_path=None, quiet=True, ops=["inosuch"], sizes=[4])


@pytest.mark.mpi(min_size=2)
def test_pingpong_fits_positive_alpha_and_beta(comm):
    result = network.pingpong_bench(comm, sizes=[1, 1024, 16384, 131072], repeats=2, loops=30, skip=3)
    fit = result["hockney"]
    ok = [r["size"] for r in result["rows"]] == [1, 1024, 16384, 131072]
    if comm.size == 2:  # with more ranks than cores, bystanders preempt the pair: times are noise
        ok = ok and fit["alpha_s"] > 0 and fit["beta_s_per_byte"] > 0
    else:
        ok = ok and all(np.isfinite([fit["alpha_s"], fit["beta_s_per_byte"]]))
    bw_ok = all(r["bandwidth_Bps"] == pytest.approx(r["size"] / r["latency_s"]["median"]) for r in result["rows"])
    assert_all_ranks(comm, ok and bw_ok, f"fit {fit}, rows {result['rows']}")


@pytest.mark.mpi(min_size=2)
def test_pingmatrix_covers_every_pair(comm):
    result = network.pingmatrix_bench(comm, sizes=[8, 65536], loops=3, skip=1)
    n = len(result["nodes"])
    ok = len(result["links"]) == n * (n - 1) // 2 and isinstance(result["slow_links"], list)
    ok = ok and all(link["beta"] is not None for link in result["links"])
    assert_all_ranks(comm, ok, f"{result['nodes']} {len(result['links'])} links")


@pytest.mark.mpi(min_size=2)
def test_traffic_critical_path_never_exceeds_the_total(comm):
    from pimpi.bench import traffic

    result = traffic.traffic(comm, ops=["bcast"], sizes=[64])
    rows = result["rows"]
    ok = bool(rows) and all(r["path_bytes"] <= r["total_bytes"] and r["path_messages"] <= r["messages"]
                            for r in rows)
    linear = next(r for r in rows if r["algorithm"] == "linear")
    ok = ok and linear["messages"] == comm.size - 1 and linear["total_bytes"] == 64 * (comm.size - 1)
    assert_all_ranks(comm, ok, f"{rows}")


@pytest.mark.mpi
@pytest.mark.timeout(120)
def test_check_cost_times_each_algorithm_checked_and_unchecked(comm):
    """--check-cost: every pimpi algorithm twice (checked, unchecked) in the same run, the
    built-in once, and check_ratio = checked median / unchecked median shown in the table."""
    doc = registry.run("collectives", json_path=None, quiet=True, ops=["bcast", "allreduce"], sizes=[8],
                       algorithms=["auto"], repeats=2, skip=1, loop=2, check_cost=True)
    rows = doc["results"]["rows"]
    problems = []
    got = sorted((r["op"], r["impl"], r["check"]) for r in rows)
    want = sorted((op, impl, chk) for op in ("bcast", "allreduce")
                  for impl, chk in (("builtin", True), ("auto", True), ("auto", False)))
    if got != want:
        problems.append(f"rows {got} != {want}")
    for row in rows:
        if row["impl"] == "auto" and row["check"]:
            bare = next(r for r in rows if r["op"] == row["op"] and r["impl"] == "auto" and not r["check"])
            expected = row["latency_s"]["median"] / bare["latency_s"]["median"]
            if row.get("check_ratio") != pytest.approx(expected):
                problems.append(f"{row['op']} check_ratio {row.get('check_ratio')} != {expected}")
    text = osu.format_collectives(doc["results"])
    if "auto chk/unchk" not in text or "auto unchecked" not in text:
        problems.append(f"table lacks the checked/unchecked columns:\n{text}")
    if doc["results"]["check"] != "both":
        problems.append(f"check recorded as {doc['results']['check']!r}")
    assert_all_ranks(comm, not problems, "; ".join(problems))
