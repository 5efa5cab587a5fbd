"""A stopped job leaves nothing on any node: `pimpi run --hostfile` from inside node1 runs
`render cmd --collect` on three namespace nodes (ranks 1 and 2 stage in a temporary folder,
rank 0 in the output folder); the launcher is stopped each way, then every node is searched
(from inside it) for any process of the job, and no staging folder may remain. A node with
its cable cut fails a launch in one line naming it, without --timeout.

Processes are found by a unique environment marker: in light mode the launch agent enters
a node from the machine, so the daemons, ranks, guards and renderers there inherit it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid

import pytest

from pimpi.testing import MARK_SCAN, wait_for

pytestmark = pytest.mark.root

VCLUSTER = {"name": "tst", "subnet": "10.231.44.0/24", "nodes": 3}
RENDERER = ["sh", "-c", 'touch "$1/started"; setsid sleep 300 & sleep 300 & sleep 300', "sh", "{out}"]


def _scan(vc, marker: str) -> dict[str, list[str]]:
    """node -> the job's processes running in that node's network namespace."""
    found = {}
    for i in range(1, vc.nodes + 1):
        res = vc.exec(f"node{i}", sys.executable, "-c", MARK_SCAN, marker, timeout=60)
        assert res.returncode == 0, res.stderr
        if res.stdout.strip():
            found[f"node{i}"] = res.stdout.strip().splitlines()
    return found


def _left(vc, marker: str, wait: float = 45) -> dict[str, list[str]]:
    deadline = time.monotonic() + wait
    while True:
        found = _scan(vc, marker)
        if not found or time.monotonic() > deadline:
            return found
        time.sleep(1)



WAYS = {  # extra options, signal to the launcher (None: to its parent, SIGKILL), exit code
    "ctrl-c": ([], signal.SIGINT, 130),
    "sigterm": ([], signal.SIGTERM, 143),
    "sighup": ([], signal.SIGHUP, 129),
    "timeout": (["--timeout", "75"], None, 124),
    "parent-sigkill": ([], signal.SIGKILL, None),
}


@pytest.mark.timeout(400)
@pytest.mark.parametrize("way", list(WAYS))
def test_a_stopped_job_leaves_no_process_on_any_node_and_no_folder(vc, way):
    options, signum, expected = WAYS[way]
    tag = uuid.uuid4().hex
    marker = f"PIMPI_TEST_JOB={tag}"
    out, tmp = vc.shared / f"stop-{tag}" / "out", vc.shared / f"stop-{tag}" / "tmp"
    tmp.mkdir(parents=True)
    run = ["pimpi", "run", "--hostfile", str(vc.hostfile), "-n", "3", *options, "--",
           "render", "cmd", "--frames", "1-9", "--out", str(out), "--expect", "f{frame}.png", "--collect",
           "--retries", "0", "-q", "--", *RENDERER]
    if way == "parent-sigkill":  # a shell stays the launcher's parent (`; :` keeps it from exec'ing)
        run = ["sh", "-c", '"$@" & wait; :', "sh", *run]
    env = {**os.environ, "PIMPI_TEST_JOB": tag, "TMPDIR": str(tmp)}
    # `vcluster exec` becomes the command itself (nsenter and sh exec it): signals reach it
    launcher = subprocess.Popen(
        [sys.executable, "-m", "pimpi", "vcluster", "exec", "--name", vc.name, "node1", "--", *run],
        env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True)
    started = lambda: len(list(out.glob(".pimpi-chunk-*/started")) + list(tmp.glob(".pimpi-chunk-*/started")))
    try:
        wait_for(lambda: started() >= 3 or launcher.poll() is not None, 240, "a renderer on every rank", step=0.5)
        assert started() >= 3, launcher.stderr.read() if launcher.poll() is not None else ""
        if signum == signal.SIGINT:
            os.killpg(launcher.pid, signum)  # as a terminal sends Ctrl-C: to the foreground group
        elif signum is not None:
            launcher.send_signal(signum)
        _out, err = launcher.communicate(timeout=150)
        left = _left(vc, marker)
    finally:
        if launcher.poll() is None:
            os.killpg(launcher.pid, signal.SIGKILL)
    if expected is not None:
        assert launcher.returncode == expected, err
    assert left == {}
    assert list(out.glob(".pimpi-chunk-*")) == [] and list(tmp.iterdir()) == []


@pytest.mark.timeout(300)
def test_a_cut_node_fails_the_launch_in_one_line_naming_it_without_timeout(vc):
    job = vc.shared / "stop-hello.py"
    job.write_text("from mpi4py import MPI\nprint('hello from', MPI.COMM_WORLD.rank, flush=True)\n")
    cut = vc.vc("cut", "node3", timeout=60)
    assert cut.returncode == 0, cut.stderr
    try:
        res = vc.exec("node1", "env", "PIMPI_SPAWN_TIMEOUT=30", "pimpi", "run", "--hostfile", str(vc.hostfile),
                      "-n", "3", "--", str(job), timeout=240)  # no --timeout: the launch itself is bounded
    finally:
        healed = vc.vc("heal", "node3", timeout=60)
    assert healed.returncode == 0, healed.stderr
    assert res.returncode == 1, res.stderr
    named = [line for line in res.stderr.splitlines() if line.startswith("pimpi run: node ")]
    assert len(named) == 1 and "tst3" in named[0] and "cannot be reached" in named[0], res.stderr
    ok = vc.exec("node1", "pimpi", "run", "--hostfile", str(vc.hostfile), "-n", "3", "--timeout", "120", "--",
                 str(job), timeout=200)  # healed: the same launch works
    assert ok.returncode == 0 and ok.stdout.count("hello from") == 3, ok.stderr
