"""pimpi.futures across the virtual cluster's nodes: workers on other hosts, the same results as
local processes, and resume after a worker is killed."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.root

VCLUSTER = {"name": "tvf", "subnet": "10.231.14.0/24", "nodes": 3}
PROGS = Path(__file__).resolve().parents[1] / "futures" / "progs"


def _result(proc: subprocess.CompletedProcess) -> object:
    line = next((l for l in proc.stdout.splitlines() if l.startswith("RESULT ")), None)
    assert line is not None, f"exit {proc.returncode}: {proc.stderr[-2000:]}"
    return json.loads(line[len("RESULT "):])


def _prog(vc, name: str) -> str:
    """Copy a program to the cluster's shared folder (what every node sees)."""
    target = vc.shared / name
    shutil.copy(PROGS / name, target)
    return str(target)


def test_workers_run_on_the_other_nodes(vc):
    proc = vc.mpi("-m", "pimpi.futures", _prog(vc, "hosts.py"), n=3, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert _result(proc) == sorted(vc.hostnames[1:])  # rank 0 on node1 runs the script


def test_results_equal_local_processes_across_nodes(vc, tmp_path):
    local = subprocess.run([sys.executable, str(PROGS / "equal.py"), str(tmp_path / "journal")],
                           capture_output=True, text=True, timeout=120,
                           env={**os.environ, "PIMPI_FUTURES": "local"})
    assert local.returncode == 0, local.stderr
    proc = vc.mpi("-m", "pimpi.futures", _prog(vc, "equal.py"), str(vc.shared / "equal-journal"), n=3,
                  timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert _result(proc) == _result(local)


def test_killed_worker_on_another_node_then_resume(vc):
    folder = vc.shared / "killed"
    folder.mkdir()
    (folder / "kill-once").write_text("")
    prog = _prog(vc, "killed.py")
    first = vc.mpi("-m", "pimpi.futures", prog, str(folder), n=3, timeout=120)
    assert first.returncode != 0 and not (folder / "kill-once").exists()
    assert list((folder / "journal").glob("*.rec")), "nothing was recorded before the kill"
    second = vc.mpi("-m", "pimpi.futures", prog, str(folder), n=3, timeout=120)
    assert second.returncode == 0, second.stderr
    assert _result(second) == [{"x": x, "square": x * x} for x in range(24)]
    ps = subprocess.run(["ps", "-eo", "args="], capture_output=True, text=True, timeout=30).stdout
    assert prog not in ps  # no rank of either job is left


@pytest.mark.timeout(400)
def test_a_node_killed_mid_map_ends_the_job_with_exit_1_naming_it_and_keeps_the_journal(vc, tmp_path):
    """Open MPI ends a job whose node died with status 0: `pimpi run` says exit 1 and names
    the node; what the map finished is in the journal, and the rerun completes the map."""
    folder = vc.shared / "lost-node"
    folder.mkdir()
    prog = _prog(vc, "slow_map.py")
    node = vc.hostnames[2]

    def kill():
        time.sleep(2)  # some batches recorded
        return vc.vc("kill", node, timeout=60)

    code, text, killed = vc.fault_mid_job(
        ["run", "--hostfile", str(vc.hostfile), "-n", "3", "--", "-m", "pimpi.futures", prog, str(folder)],
        lambda: (folder / f"started-{node}").exists(), kill, tmp_path / "job.log")
    assert killed.returncode == 0 and "ended 0 processes" not in killed.stdout, killed.stdout + text
    assert code == 1, text
    named = [line for line in text.splitlines() if line.strip().startswith("pimpi run: node ")]
    assert len(named) == 1 and node in named[0], text
    assert "RESULT" not in text
    recorded = list((folder / "journal").glob("*.rec"))
    assert recorded, "nothing was journaled before the node was lost"
    rerun = vc.mpi("-m", "pimpi.futures", prog, str(folder), n=3, timeout=240)
    assert rerun.returncode == 0, rerun.stderr
    assert _result(rerun) == sum(x * x for x in range(400))
