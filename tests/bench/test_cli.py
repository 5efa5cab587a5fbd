"""`pimpi bench` from the command line: quick modes, exit codes, JSON written only on success."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from click.testing import CliRunner

from pimpi.cli import cli
from tests.helpers import PIMPI



def test_predict_prints_prediction_and_assumptions(tmp_path):
    out = tmp_path / "p.json"
    result = CliRunner().invoke(cli, [
        "bench", "predict", "--profile", "pi4", "--nodes", "1,2", "--workload", "julia",
        "--frames", "4", "--width", "16", "--height", "8", "--ops", "allreduce",
        "--sizes", "64K,1M", "--local-speed", "2", "--json", str(out)])
    assert result.exit_code == 0, result.output
    assert "assumptions:" in result.stdout and "sources:" in result.stdout
    doc = json.loads(out.read_text())
    assert doc["schema"] == "pimpi.bench/1" and doc["kind"] == "predict"
    render = doc["results"]["render"]
    assert render["compute_scale"] == pytest.approx(2.0)
    rows = render["rows"]
    assert [r["ranks"] for r in rows] == [4, 8]
    assert all(r["speedup"] == pytest.approx(sum(render["local_frame_seconds"]) * 2 / r["total_s"]) for r in rows)
    colls = doc["results"]["collectives"]
    assert {(c["ranks"], c["bytes"]) for c in colls} == {(4, 65536), (4, 1 << 20), (8, 65536), (8, 1 << 20)}
    assert all(c["best_seconds"] == min(a["seconds"] for a in c["algorithms"].values()) for c in colls)


@pytest.mark.parametrize("args, message", [
    (["predict", "--profile", "pi9"], "unknown profile"),
    (["predict", "--profile", "pi4", "--nodes", "x"], "'x' is not a whole number"),
    (["collectives", "--sizes", "8:1"], "bad size range"),
    (["predict", "--profile", "pi4", "--json", "/no/such/dir/p.json"], "does not exist"),
])
def test_bad_input_is_a_usage_error(args, message):
    result = CliRunner().invoke(cli, ["bench", *args])
    assert result.exit_code == 2, result.output
    assert message in result.output


def _run(args: list[str], timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([*PIMPI, *args], capture_output=True, text=True, timeout=timeout)


def test_pingpong_json_is_a_profile_for_predict(tmp_path):
    pp = tmp_path / "pp.json"
    done = _run(["run", "-n", "2", "--timeout", "60", "--", "bench", "pingpong", "--sizes", "1,4K,64K",
                 "--repeats", "1", "--loops", "20", "--skip", "2", "--json", str(pp)])
    assert done.returncode == 0, done.stderr
    doc = json.loads(pp.read_text())
    assert doc["kind"] == "pingpong" and doc["machine"]["ranks"] == 2
    fit = doc["results"]["hockney"]
    assert fit["bandwidth_bps"] == pytest.approx(8 / fit["beta_s_per_byte"])
    result = CliRunner().invoke(cli, ["bench", "predict", "--profile", str(pp), "--nodes", "1,2",
                                      "--workload", "none", "--sizes", "64K"])
    assert result.exit_code == 0, result.output
    assert "this machine's cores, unscaled" in result.stdout


def test_tune_writes_a_table_that_choose_reads(tmp_path):
    table = tmp_path / "tuning.json"
    done = _run(["run", "-n", "2", "--timeout", "60", "--", "bench", "tune", "--ops", "allreduce,bcast",
                 "--sizes", "4,64K", "--repeats", "1", "--skip", "1", "--loop", "2", "--out", str(table),
                 "--json", str(tmp_path / "tune.json")])
    assert done.returncode == 0, done.stderr
    from pimpi.collectives import ALGORITHMS, load_table

    rules = load_table(table)
    result = json.loads((tmp_path / "tune.json").read_text())["results"]
    assert result["table"] == str(table) and str(table) in done.stdout
    for choice in result["choices"]:
        assert choice["best"] == min(choice["latency_s"], key=choice["latency_s"].get)
        assert choice["best"] in ALGORITHMS[choice["op"]]
    assert rules["allreduce"][0]["min_size"] == 2 and rules["bcast"][-1].get("max_size") is None


def test_scaling_runs_through_mpirun_and_its_numbers_agree(tmp_path):
    out, png = tmp_path / "s.json", tmp_path / "s.png"
    done = _run(["bench", "scaling", "--workload", "julia", "--ranks", "1,2", "--frames", "2", "--width", "16",
                 "--height", "8", "--repeats", "1", "--timeout", "100", "--json", str(out), "--plot", str(png)],
                timeout=240)
    assert done.returncode == 0, done.stderr
    assert "Amdahl serial fraction" in done.stdout
    doc = json.loads(out.read_text())
    res = doc["results"]
    rows = {r["ranks"]: r for r in res["rows"]}
    assert set(rows) == {1, 2} and res["speedup_base"] == "1 rank"
    base = rows[1]["seconds"]["median"]
    for n, row in rows.items():
        assert row["seconds"]["n"] == 1 and row["seconds"]["min"] <= row["seconds"]["median"] <= row["seconds"]["max"]
        assert row["speedup"] == pytest.approx(base / row["seconds"]["median"])
        assert row["efficiency"] == pytest.approx(row["speedup"] / n)
        assert row["vs_pool"] == pytest.approx(res["baselines"]["pool"]["seconds"]["median"] / row["seconds"]["median"])
        assert row["job_machine"]["ranks"] == n and row["job_machine"]["mpi_library"]
    assert doc["machine"]["before"] is not None and doc["machine"]["after"] is not None
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.json", "s.png"]  # no temporaries left


def test_scaling_runs_any_per_frame_command(tmp_path):
    out = tmp_path / "cmd.json"
    writer = f"{sys.executable} -c \"import sys; open(sys.argv[1], 'w').write('x' * 10)\" {{out}}/f{{frame}}.txt"
    done = _run(["bench", "scaling", "--workload", "cmd", "--template", writer, "--expect", "f{frame}.txt",
                 "--ranks", "2", "--frames", "3", "--repeats", "1", "--timeout", "100", "--json", str(out)],
                timeout=200)
    assert done.returncode == 0, done.stderr
    res = json.loads(out.read_text())["results"]
    assert res["speedup_base"] == "serial" and res["frame_bytes"] == 10
    row = res["rows"][0]
    assert row["speedup"] == pytest.approx(res["baselines"]["serial"]["seconds"]["median"] / row["seconds"]["median"])
    bad = _run(["bench", "scaling", "--workload", "cmd", "--ranks", "1", "--json", str(tmp_path / "x.json")])
    assert bad.returncode == 2 and "--expect" in bad.stderr
    assert not (tmp_path / "x.json").exists()


def test_pingmatrix_cli_and_its_median_link_as_a_profile(tmp_path):
    pm = tmp_path / "pm.json"
    done = _run(["run", "-n", "2", "--timeout", "60", "--", "bench", "pingmatrix", "--sizes", "8,1K,64K",
                 "--loops", "5", "--skip", "1", "--json", str(pm)])
    assert done.returncode == 0, done.stderr
    res = json.loads(pm.read_text())["results"]
    assert len(res["links"]) == 1 and len(res["latency"]) == 2  # one machine: every rank is an entry
    assert res["latency"][0][0] is None and res["latency"][0][1] == res["latency"][1][0]
    result = CliRunner().invoke(cli, ["bench", "predict", "--profile", str(pm), "--nodes", "2",
                                      "--workload", "none", "--sizes", "1K"])
    assert result.exit_code == 0, result.output
