"""`bench versus`: this run's ratios against the previous run's, on synthetic result files."""

from __future__ import annotations

import pytest

from pimpi.bench import schema, versus


def _write(path, kind, results, load=None):
    state = {"cpus": 2, "before": {"load1": load}} if load is not None else {}
    schema.write_json(path, schema.document(kind, state, results))
    return str(path)


def _scaling(path, vs_pool, load=None):
    return _write(path, "scaling", {"workload": "mandelbrot", "rows": [
        {"ranks": 2, "vs_pool": vs_pool, "speedup": 1.8}]}, load)


def test_judge_uses_the_tolerance_and_the_direction():
    assert versus.judge(1.0, 1.05, 0.1, higher_is_better=True) == "same"
    assert versus.judge(1.0, 1.2, 0.1, higher_is_better=True) == "better"
    assert versus.judge(1.0, 1.2, 0.1, higher_is_better=False) == "worse"
    assert versus.judge(2.0, 1.0, 0.1, higher_is_better=False) == "better"
    with pytest.raises(ValueError, match="positive"):
        versus.judge(0.0, 1.0, 0.1, True)


def test_a_lower_vs_pool_is_a_worse_verdict(tmp_path):
    old = _scaling(tmp_path / "old.json", 1.05, load=0.4)
    new = _scaling(tmp_path / "new.json", 0.88, load=12.0)
    result = versus.versus(None, previous=old, now=new, tolerance=0.1)
    row = next(r for r in result["rows"] if r["name"].endswith("vs_pool"))
    assert row["verdict"] == "worse" and row["change"] == pytest.approx(0.88 / 1.05 - 1)
    assert result["verdict"] == "worse" and result["counts"]["same"] == 1  # the equal speedup
    assert result["load"] == {"previous": "0.4", "now": "12.0"}
    text = versus._format(result)
    assert "verdict: worse" in text and result["busy"] and "judge on a quiet machine" in text


def test_one_rank_speedup_is_not_judged_and_a_quiet_run_is_not_flagged(tmp_path):
    rows = [{"ranks": 1, "vs_pool": 0.6, "speedup": 1.0}, {"ranks": 2, "vs_pool": 1.0, "speedup": 1.7}]
    old = _write(tmp_path / "old.json", "scaling", {"workload": "julia", "rows": rows}, load=0.5)
    new = _write(tmp_path / "new.json", "scaling", {"workload": "julia", "rows": rows}, load=1.5)
    result = versus.versus(None, previous=old, now=new)
    assert sorted(r["name"] for r in result["rows"]) == [
        "julia 1 ranks vs_pool", "julia 2 ranks speedup", "julia 2 ranks vs_pool"]
    assert result["verdict"] == "same" and not result["busy"]


def test_collectives_compare_checked_over_unchecked(tmp_path):
    lat = {"min": 1e-6, "median": 1e-6, "max": 1e-6}

    def doc(path, check_ratio):
        return _write(path, "collectives", {"ranks": 2, "rows": [
            {"op": "bcast", "bytes": 8, "impl": "builtin", "latency_s": lat, "ratio": None, "check": True},
            {"op": "bcast", "bytes": 8, "impl": "auto", "latency_s": lat, "ratio": 3.0, "check": True,
             "check_ratio": check_ratio},
            {"op": "bcast", "bytes": 8, "impl": "auto", "latency_s": lat, "ratio": 2.0, "check": False}]})

    result = versus.versus(None, previous=doc(tmp_path / "a.json", 2.0), now=doc(tmp_path / "b.json", 1.4))
    verdicts = {r["name"]: r["verdict"] for r in result["rows"]}
    assert verdicts == {"bcast 8 2 ranks auto /mpi": "same",
                        "bcast 8 2 ranks auto checked/unchecked": "better",
                        "bcast 8 2 ranks auto unchecked /mpi": "same"}
    assert result["verdict"] == "better"


def test_files_of_different_kinds_are_refused(tmp_path):
    old = _scaling(tmp_path / "old.json", 1.0)
    new = _write(tmp_path / "new.json", "collectives", {"ranks": 2, "rows": []})
    with pytest.raises(ValueError, match="must both be one of"):
        versus.versus(None, previous=old, now=new)


def test_cli_prints_the_verdict_and_refuses_mixed_kinds_with_exit_2(tmp_path):
    from click.testing import CliRunner

    from pimpi.cli import cli

    old = _scaling(tmp_path / "old.json", 1.0)
    new = _scaling(tmp_path / "new.json", 1.3)
    out = tmp_path / "versus.json"
    done = CliRunner().invoke(cli, ["bench", "versus", old, new, "--json", str(out)])
    assert done.exit_code == 0, done.output
    assert done.output.rstrip().splitlines()[-1].startswith("verdict: better")
    assert schema.read_json(str(out), kind="versus")["results"]["verdict"] == "better"
    coll = _write(tmp_path / "c.json", "collectives", {"ranks": 2, "rows": []})
    bad = CliRunner().invoke(cli, ["bench", "versus", old, coll])
    assert bad.exit_code == 2 and "must both be one of" in bad.output and "Traceback" not in bad.output
