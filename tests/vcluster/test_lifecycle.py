"""`up` then `down`: down removes exactly what up made (namespaces, links, mounts, processes,
hosts block, NAT rules, state) and is safe to run twice."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.root


def _iptables() -> str:
    return "".join(subprocess.run(["iptables", "-t", table, "-S"], capture_output=True, text=True,
                                  timeout=30).stdout for table in ("nat", "filter"))


def test_down_leaves_nothing_behind_and_is_safe_twice(make_vc):
    vc = make_vc("tvd", "10.231.9.0/28", 3)
    forward_before = Path("/proc/sys/net/ipv4/ip_forward").read_text()
    up = vc.vc("up", "--nodes", "3", "--subnet", vc.subnet, "--profile", "pi4", "--nat", timeout=120)
    assert up.returncode == 0, up.stderr
    assert "pimpi-vcluster-tvd" in _iptables()
    routes = vc.exec("node2", "ip", "route").stdout
    assert "default via 10.231.9.1" in routes  # --nat: the machine is the gateway
    assert "tbf" in subprocess.run(["tc", "qdisc", "show", "dev", "pimpi-tvd-1"], capture_output=True,
                                   text=True, timeout=30).stdout  # pi4 profile: rate shaped
    sleeper = subprocess.Popen([sys.executable, "-m", "pimpi", "vcluster", "exec", "--name", vc.name, "node3",
                                "--", "sleep", "300"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while "sleep 300" not in subprocess.run(["ps", "-eo", "args="], capture_output=True, text=True,
                                                timeout=30).stdout and time.monotonic() < deadline:
            time.sleep(0.1)
        assert vc._scan(), "the cluster should be visible before down"
        down = vc.vc("down", timeout=120)
        assert down.returncode == 0, down.stderr
        assert sleeper.wait(timeout=30) != 0  # processes inside the nodes were ended
    finally:
        if sleeper.poll() is None:
            sleeper.kill()
            sleeper.wait(timeout=30)
    assert vc.leftovers() == []
    assert "pimpi-vcluster-tvd" not in _iptables()
    assert Path("/proc/sys/net/ipv4/ip_forward").read_text() == forward_before
    again = vc.vc("down", timeout=60)
    assert again.returncode == 0 and "nothing to do" in again.stdout


def test_failed_up_cleans_up_after_itself(make_vc):
    """A subnet already routed here is refused before anything is created (exit 1)."""
    first = make_vc("tvf", "10.231.10.0/24", 1)
    assert first.vc("up", "--nodes", "1", "--subnet", first.subnet, timeout=120).returncode == 0
    clash = make_vc("tvg", "10.231.10.0/25", 1)
    out = clash.vc("up", "--nodes", "1", "--subnet", clash.subnet, timeout=120)
    assert out.returncode == 1 and "overlaps" in out.stderr, out.stderr
    assert clash.leftovers(wait=0) == []
    assert first.vc("down", timeout=120).returncode == 0
    assert first.leftovers() == []


WATCHED = """
import subprocess, sys, time
from pimpi.testing import down_when_gone
up = subprocess.run([sys.executable, "-m", "pimpi", "vcluster", "up", "--nodes", "1", "--name", "tvw",
                     "--subnet", "10.231.11.0/28"], capture_output=True, text=True, timeout=120)
down_when_gone("tvw")
print(up.returncode, flush=True)
time.sleep(300)
"""


@pytest.mark.timeout(240)
def test_a_test_process_killed_before_teardown_leaves_no_cluster(make_vc):
    """pytest-timeout ends a stuck test with os._exit (no finalizer runs): the watcher that the
    fixtures start takes the cluster down once the test process is gone."""
    vc = make_vc("tvw", "10.231.11.0/28", 1)
    test = subprocess.Popen([sys.executable, "-c", WATCHED], stdout=subprocess.PIPE, text=True)
    try:
        assert test.stdout is not None and test.stdout.readline().strip() == "0"
        assert vc.leftovers(wait=0) != []  # the cluster is really up while its test runs
    finally:
        test.kill()
        test.wait()
    assert vc.leftovers(wait=60) == []
