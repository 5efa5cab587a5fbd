"""`bench scaling --workload futures` runs the frames through pimpi.futures under mpirun and
through ProcessPoolExecutor, with the render's columns (speed itself is for the benchmark)."""

from __future__ import annotations

from click.testing import CliRunner

from pimpi.bench.schema import read_json
from pimpi.cli import cli


def test_futures_workload_reports_speedup_and_pool_columns(tmp_path) -> None:
    out = tmp_path / "scaling.json"
    result = CliRunner().invoke(cli, ["bench", "scaling", "--workload", "futures", "--ranks", "2", "--frames", "3",
                                      "--width", "16", "--height", "8", "--repeats", "1", "--json", str(out)])
    assert result.exit_code == 0, result.output
    assert "vs Pool" in result.stdout and "tiny tasks (return x" in result.stdout
    doc = read_json(str(out), kind="scaling")
    rows = doc["results"]["rows"]
    assert [r["ranks"] for r in rows] == [2]
    assert all(r["seconds"]["median"] > 0 and r["vs_pool"] > 0 and r["efficiency"] > 0 for r in rows)
    assert all(0 < r["cpu_share"]["median"] <= 1.5 for r in rows)
    assert doc["results"]["baselines"]["pool"]["tiny_tasks_per_s"]["median"] > 0
    assert doc["results"]["workload"] == "futures"
