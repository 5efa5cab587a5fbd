"""The doctor's problem detection on synthetic records, its JSON file, and a real 3-rank run."""

from __future__ import annotations

import json

from pimpi.cluster.doctor import Report, find_problems, matrix_problems, write_json
from pimpi.cluster.facts import decode_throttled, local_facts
from tests.helpers import pimpi


def _record(rank, host, **extra):
    record = {
        "rank": rank, "hostname": host, "python": "3.11.2", "numpy": "1.26.4", "mpi4py": "4.0.1",
        "pimpi": "0.1.0", "mpi_library": "Open MPI v4.1.4, package: Debian", "temp_c": 50.0,
        "throttled": decode_throttled(0), "cwd": "/home/pi/job", "cwd_exists": True,
        "root_cwd_exists": True, "sees": {"pi1": "10.0.0.1", "pi2": "10.0.0.2"},
    }
    record.update(extra)
    return record


def _cluster():
    return [_record(0, "pi1"), _record(1, "pi1"), _record(2, "pi2"), _record(3, "pi2")]


def test_a_healthy_cluster_has_no_problems():
    assert find_problems(_cluster()) == []


def test_one_machine_with_loopback_hostname_is_not_a_problem():
    records = [_record(r, "vm", sees={"vm": "127.0.0.1"}) for r in range(3)]
    assert find_problems(records) == []


def test_version_mismatch_names_value_and_where():
    records = _cluster()
    records[2]["numpy"] = records[3]["numpy"] = "2.0.0"
    records[3]["mpi_library"] = "MPICH Version: 4.0"
    problems = find_problems(records)
    assert problems == [
        "numpy version differs between ranks: 1.26.4 on pi1 (ranks 0-1); 2.0.0 on pi2 (ranks 2-3)",
        "MPI library differs between ranks: Open MPI v4.1.4 on pi1 (ranks 0-1), pi2 (rank 2); "
        "MPICH Version: 4.0 on pi2 (rank 3)",
    ]


def test_loopback_trap_is_reported_once_per_node_that_sees_it():
    records = _cluster()
    for r in records[2:]:
        r["sees"] = {"pi1": "10.0.0.1", "pi2": "127.0.1.1"}
    problems = find_problems(records)
    assert len(problems) == 1, problems
    assert problems[0].startswith("pi2 resolves to loopback 127.0.1.1 on pi2")


def test_differing_and_failing_resolution():
    records = _cluster()
    for r in records[2:]:
        r["sees"] = {"pi1": "192.168.1.50", "pi2": "10.0.0.2"}
    records[0]["sees"] = records[1]["sees"] = {"pi1": "10.0.0.1", "pi2": None}
    problems = find_problems(records)
    assert "pi1 resolves differently on different nodes: 10.0.0.1 on pi1, 192.168.1.50 on pi2" in problems
    assert "pi2 does not resolve on pi1" in problems
    assert len(problems) == 2, problems


def test_name_resolving_to_an_address_the_node_does_not_have():
    records = _cluster()
    for r in records:
        r["addresses"] = {"eth0": ["10.0.0.1"]} if r["hostname"] == "pi1" else {"eth0": ["10.0.0.2"]}
    assert find_problems(records) == []
    records[0]["sees"] = records[1]["sees"] = {"pi1": "10.0.0.1", "pi2": "10.0.0.7"}  # stale /etc/hosts
    assert find_problems(records) == [
        "pi2 resolves to an address it does not have: 10.0.0.7 on pi1 (pi2 has 10.0.0.2)"]
    # Two interfaces of pi2 (wired and wireless): both its own, but the nodes disagree.
    for r in records[2:]:
        r["addresses"] = {"eth0": ["10.0.0.2"], "wlan0": ["10.0.0.7"]}
    assert find_problems(records) == [
        "pi2 resolves differently on different nodes: 10.0.0.7 on pi1, 10.0.0.2 on pi2"]


def test_hot_and_throttled_nodes():
    records = _cluster()
    records[3]["temp_c"] = 84.5
    records[0]["throttled"] = decode_throttled(0x50005)
    problems = find_problems(records, hot_celsius=80)
    assert problems == [
        "pi1 is throttled now (0x50005): under-voltage, throttled",
        "pi2 is hot: 84.5 °C (limit 80 °C)",
    ]
    assert find_problems(records, hot_celsius=90) == [problems[0]]
    # Throttling that happened earlier (bits 16-19 only) is shown, not a problem.
    records[0]["throttled"] = decode_throttled(0x50000)
    assert find_problems(records, hot_celsius=90) == []


def test_missing_working_directory():
    records = _cluster()
    records[2]["root_cwd_exists"] = records[3]["root_cwd_exists"] = False
    problems = find_problems(records)
    assert len(problems) == 1
    assert "/home/pi/job (rank 0's) does not exist on pi2 (ranks 2-3)" in problems[0]
    records[1]["cwd_exists"] = False
    assert "does not exist (deleted?) on pi1 (rank 1)" in find_problems(records)[0]


def test_slow_link_in_the_matrix_becomes_a_problem():
    nodes = ["pi1", "pi2", "pi3", "pi4"]
    lat = [[None if i == j else 100e-6 for j in range(4)] for i in range(4)]
    bw = [[None if i == j else 110e6 for j in range(4)] for i in range(4)]
    lat[1][3] = lat[3][1] = 900e-6
    bw[0][2] = bw[2][0] = 11e6
    problems = matrix_problems({"nodes": nodes, "latency": lat, "bandwidth": bw})
    assert len(problems) == 2
    assert problems[0].startswith("slow link pi2 <-> pi4: latency 900.0 µs, 9.0x the median 100.0 µs")
    assert problems[1].startswith("slow link pi1 <-> pi3: bandwidth 11.0 MB/s, 10.0x below")


def test_write_json_is_atomic_and_keeps_every_record(tmp_path):
    path = tmp_path / "doctor.json"
    write_json(Report(_cluster(), ["a problem"]), str(path))
    data = json.loads(path.read_text())
    assert [r["hostname"] for r in data["records"]] == ["pi1", "pi1", "pi2", "pi2"]
    assert data["problems"] == ["a problem"]
    assert [p.name for p in tmp_path.iterdir()] == ["doctor.json"]


def test_local_facts_are_json_and_never_raise(monkeypatch):
    facts = local_facts(mpi=False)
    json.dumps(facts)  # serialisable
    assert facts["hostname"] and facts["cpus"] >= 1 and facts["cwd_exists"] is True
    assert facts["mpi_library"] is None
    monkeypatch.setattr("pimpi.cluster.facts._read", lambda path: 1 / 0)
    broken = local_facts(mpi=False)
    assert broken["cpu_model"] is None and broken["mem_total"] is None and broken["temp_c"] is None


def test_decode_throttled_names_the_bits():
    info = decode_throttled(0x80008)
    assert info == {"raw": "0x80008", "flags": ["soft-temperature-limit", "soft-temperature-limit-occurred"],
                    "now": True}


def test_doctor_under_pimpi_run_writes_one_record_per_rank(tmp_path):
    out = tmp_path / "doctor.json"
    proc = pimpi("run", "-n", "3", "--timeout", "60", "--", "doctor", "--json", str(out), timeout=120, cwd=tmp_path)
    data = json.loads(out.read_text())
    assert len(data["records"]) == 3, proc.stdout + proc.stderr
    assert sorted(r["rank"] for r in data["records"]) == [0, 1, 2]
    assert all(r["hostname"] for r in data["records"])
    # All ranks share this machine's hostname: that alone is never a problem.
    assert not [p for p in data["problems"] if "resolve" in p or "loopback" in p], data["problems"]
    assert proc.returncode == (1 if data["problems"] else 0), proc.stdout + proc.stderr
    assert proc.stdout.count("problem:") == len(data["problems"])  # printed once, by rank 0


def test_doctor_json_into_a_missing_folder_is_a_usage_error(tmp_path):
    target = tmp_path / "no" / "doctor.json"
    proc = pimpi("doctor", "--json", str(target), timeout=60)
    assert proc.returncode == 2
    assert f"folder '{target.parent}' does not exist" in proc.stderr
    assert "Traceback" not in proc.stderr and not target.parent.exists()


def test_thermal_recorder_history_is_summarised(tmp_path):
    from pimpi.cluster.cli import _recorded_text
    from pimpi.cluster.facts import recorded_thermal

    assert recorded_thermal(str(tmp_path / "none.log")) is None
    log = tmp_path / "thermal.log"
    # As role thermal's recorder writes it: a Pi that got hot and was throttled once, a line with no reading.
    log.write_text("1700000000 48.2 0x0\n1700001800 71.5 0x50000\n1700003600 83.1 0x80008\n"
                   "1700007200 - -\ngarbage\n")
    summary = recorded_thermal(str(log))
    assert summary == {"samples": 4, "hours": 2.0, "max_c": 83.1, "throttled_samples": 1, "last": 1700007200}
    assert _recorded_text(summary) == "max 83°C in 2 h, throttled 1/4"
    assert _recorded_text(None) == "-"
