"""Predicted against measured: the agreement arithmetic, on synthetic result files."""

from __future__ import annotations

import pytest

from pimpi.bench import compare, schema


def test_agreement_is_relative_to_the_measurement():
    row = compare.agreement(1.2, 1.0, 0.25)
    assert row["error"] == pytest.approx(0.2) and row["within"] and row["ratio"] == pytest.approx(1.2)
    assert not compare.agreement(0.7, 1.0, 0.25)["within"]
    with pytest.raises(ValueError):
        compare.agreement(1.0, 0.0, 0.25)


def _write(path, kind, results):
    schema.write_json(path, schema.document(kind, {}, results))
    return str(path)


def test_compare_matches_algorithms_sizes_and_ranks(tmp_path):
    predicted = _write(tmp_path / "p.json", "predict", {
        "profile": {"name": "pi4"},
        "collectives": [{"op": "bcast", "bytes": 64, "ranks": 4,
                         "algorithms": {"linear": {"seconds": 2.0}, "binomial": {"seconds": 1.0}}},
                        {"op": "bcast", "bytes": 64, "ranks": 8, "algorithms": {"linear": {"seconds": 9.0}}}],
        "render": {"rows": [{"ranks": 2, "speedup": 1.9}, {"ranks": 3, "speedup": 2.9},
                            {"ranks": 4, "speedup": 3.8}]}})
    lat = lambda m: {"min": m, "median": m, "max": m}  # noqa: E731
    coll = _write(tmp_path / "c.json", "collectives", {"ranks": 4, "rows": [
        {"op": "bcast", "bytes": 64, "impl": "builtin", "latency_s": lat(0.5)},
        {"op": "bcast", "bytes": 64, "impl": "linear", "latency_s": lat(2.2)},
        {"op": "bcast", "bytes": 64, "impl": "binomial", "latency_s": lat(2.0)}]})
    scal = _write(tmp_path / "s.json", "scaling", {"rows": [
        {"ranks": 1, "speedup": 1.0, "oversubscribed": False},
        {"ranks": 2, "speedup": 2.0, "oversubscribed": False},
        {"ranks": 4, "speedup": 2.0, "oversubscribed": True},
        {"ranks": 3, "speedup": 1.0, "oversubscribed": False, "cpu_share": {"median": 0.5}}]})
    result = compare.compare(None, predicted=predicted, measured=[coll, scal], tolerance=0.25)
    got = {(r["algorithm"], r["ranks"]): r for r in result["collectives"]}
    assert set(got) == {("linear", 4), ("binomial", 4)}  # builtin and the 8-rank row are not compared
    assert got[("linear", 4)]["within"] and not got[("binomial", 4)]["within"]
    assert [(r["ranks"], r["oversubscribed"], r["contended"]) for r in result["render"]] == [
        (2, False, False), (4, True, False), (3, False, True)]
    assert result["judged"] == 3 and result["within"] == 2  # oversubscribed and contended rows are not judged
    with pytest.raises(ValueError, match="compare takes"):
        compare.compare(None, predicted=predicted, measured=[predicted])
