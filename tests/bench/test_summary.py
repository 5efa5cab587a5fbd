"""The results summary and the performance checks read from result files (synthetic ones here)."""

from __future__ import annotations

from pathlib import Path

from pimpi.bench import schema
from tools import bench_results as results
from tools import bench_summary as summary


def _lat(seconds: float) -> dict:
    return {"min": seconds, "median": seconds, "max": seconds, "n": 1}


def test_collective_checks_use_the_auto_column_and_the_two_limits():
    rows = [{"op": "allreduce", "bytes": 8, "impl": "auto", "ratio": 2.5},
            {"op": "allreduce", "bytes": 8, "impl": "ring", "ratio": 9.0},
            {"op": "allreduce", "bytes": 4096, "impl": "auto", "ratio": 5.0},
            {"op": "allreduce", "bytes": 1 << 20, "impl": "auto", "ratio": 1.2}]
    checks = summary.collective_checks({"rows": rows})
    assert [(c["bytes"], c["limit"], c["ok"]) for c in checks] == [(8, 3.0, True), (1 << 20, 1.0, False)]


def test_scaling_checks_and_summary_file(tmp_path: Path):
    scaling = {"workload": "mandelbrot", "frames": 4, "width": 8, "height": 8, "schedule": "dynamic",
               "repeats": 1, "speedup_base": "1 rank", "slots": 2,
               "baselines": {"serial": {"seconds": _lat(4.0), "frames_per_s": 1.0},
                             "pool": {"seconds": _lat(2.0), "processes": 2, "frames_per_s": 2.0}},
               "rows": [{"ranks": 1, "seconds": _lat(4.0), "frames_per_s": 1.0, "speedup": 1.0, "efficiency": 1.0,
                         "vs_pool": 0.5, "oversubscribed": False, "imbalance": None},
                        {"ranks": 2, "seconds": _lat(2.1), "frames_per_s": 1.9, "speedup": 1.9, "efficiency": 0.95,
                         "vs_pool": 0.952, "oversubscribed": False, "imbalance": _lat(1.02)}],
               "amdahl": {"serial_fraction": 0.05, "fitted_on": [1, 2]}}
    checks = summary.scaling_checks(scaling)
    assert [(name, ok) for name, _, _, ok in checks] == [
        ("2-rank speedup over 1 rank", True), ("2 ranks vs Pool(2)", True),
        ("2-rank imbalance (max/mean busy)", True)]
    schema.write_json(tmp_path / "scaling.json", schema.document("scaling", {}, scaling))
    schema.write_json(tmp_path / "collectives-2.json", schema.document("collectives", {}, {
        "ranks": 2, "rows": [{"op": "bcast", "bytes": 8, "impl": "builtin", "latency_s": _lat(1.0), "ratio": None},
                             {"op": "bcast", "bytes": 8, "impl": "auto", "latency_s": _lat(4.0), "ratio": 4.0}]}))
    text = summary.write_summary(tmp_path).read_text()
    assert "| bcast | **4.00** |" in text and "(0 of 1 met)" in text
    assert "| 2-rank speedup over 1 rank | 1.90 | >= 1.8 | ok |" in text
    assert "Honesty check" not in text  # no compare file: no section


def test_results_plan_covers_every_kind_and_one_folder(tmp_path: Path):
    steps = results.plan(tmp_path, quick=True)
    kinds = {argv[argv.index("bench") + 1] for _, argv in steps}
    assert kinds == {"pingpong", "collectives", "scaling", "predict", "compare"}
    assert len({name for name, _ in steps}) == len(steps)


def test_shaping_note_flags_links_faster_than_the_profile():
    predicted = {"results": {"profile": {"beta_s_per_byte": 8 / 1e9}}}  # 1 Gbit/s
    rows = [{"size": 1 << 20, "latency_s": _lat((1 << 20) * 8 / 2e9)},  # 2 Gbit/s: too fast
            {"size": 8 << 20, "latency_s": _lat((8 << 20) * 8 / 1e9)}]  # the rate itself
    note = summary.shaping_note({"results": {"rows": rows}}, predicted)
    assert note is not None and "up to 1M" in note and "2000 Mbit/s" in note
    assert summary.shaping_note({"results": {"rows": rows[1:]}}, predicted) is None
