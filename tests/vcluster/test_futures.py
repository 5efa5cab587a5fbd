"""pimpi.futures across the virtual cluster's nodes: workers on other hosts, the same results as
local processes, and resume after a worker is killed."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
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
