"""Virtual-cluster test setup: a module declares VCLUSTER = {...} and uses the `vc` fixture,
which brings that cluster up once for the module and down at the end."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

import pytest

from pimpi.testing import down_when_gone
from tests.helpers import pimpi, ssh_command

STATE = Path(os.environ.get("PIMPI_VCLUSTER_STATE", "/run/pimpi"))


class VC:
    """Drive one named test cluster through the real `pimpi` command (subprocesses, timeouts)."""

    def __init__(self, name: str, subnet: str, nodes: int):
        self.name, self.subnet, self.nodes = name, subnet, nodes
        self.hostnames = [f"{name}{i}" for i in range(1, nodes + 1)]
        self.dir = STATE / f"vcluster-{name}"
        self.shared = self.dir / "shared"
        self.hostfile = self.shared / "hostfile"

    def pimpi(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        return pimpi(*args, timeout=timeout)

    def vc(self, command: str, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        return self.pimpi("vcluster", command, "--name", self.name, *args, timeout=timeout)

    def exec(self, node: str, *cmd: str, timeout: float = 60) -> subprocess.CompletedProcess:
        return self.vc("exec", node, "--", *cmd, timeout=timeout)

    def ssh(self, host: str, *cmd: str, timeout: float = 60) -> subprocess.CompletedProcess:
        """COMMAND on HOST as root over real SSH with the cluster's key and known_hosts (VM nodes)."""
        return subprocess.run(ssh_command(self.dir / "id_ed25519", self.dir / "known_hosts", f"root@{host}", *cmd),
                              capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)

    def mpi(self, *target: str, n: int | None = None, timeout: float = 120,
            node: str = "node1", run_args: list[str] = ()) -> subprocess.CompletedProcess:
        """`pimpi run --hostfile` from inside NODE (the head), like on a real cluster."""
        size = ["-n", str(n)] if n else []
        return self.exec(node, "pimpi", "run", "--hostfile", str(self.hostfile), *size, *run_args,
                         "--timeout", str(timeout), "--", *target, timeout=timeout + 30)

    def fault_mid_job(self, args: list[str], ready: Callable[[], bool], fault: Callable[[], Any],
                      log_path: Path, timeout: float = 150) -> tuple[int, str, Any]:
        """`pimpi ARGS` inside node1; once `ready()` (within 120 s) call `fault()`, then wait
        for the job. Returns (its exit code, its output, what `fault` returned). The output
        goes to a file, not a pipe: orphans on a faulted node may hold a pipe open."""
        cmd = [sys.executable, "-m", "pimpi", "vcluster", "exec", "--name", self.name, "node1", "--", "pimpi", *args]
        with log_path.open("w") as log:
            job = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
            try:
                deadline = time.monotonic() + 120
                while not ready() and job.poll() is None and time.monotonic() < deadline:
                    time.sleep(0.05)
                done = fault()
                job.wait(timeout=timeout)
            finally:
                if job.poll() is None:
                    job.kill()
                    job.wait(timeout=30)
        return job.returncode, log_path.read_text(errors="replace"), done

    def ansible_ping(self) -> subprocess.CompletedProcess:
        """`ansible all -m ping` with the cluster's inventory (skips without ansible-core)."""
        ansible = Path(sys.executable).with_name("ansible")
        if not ansible.exists():
            pytest.skip("ansible-core not installed")
        return subprocess.run([str(ansible), "-i", str(self.dir / "inventory.yml"), "all", "-m", "ping"],
                              capture_output=True, text=True, timeout=600,
                              env={"ANSIBLE_HOST_KEY_CHECKING": "True", "PATH": "/usr/bin:/bin"})

    def leftovers(self, wait: float = 10) -> list[str]:
        """Anything of this cluster still on the machine (waits for exiting processes)."""
        deadline = time.monotonic() + wait
        while True:
            found = self._scan()
            if not found or time.monotonic() > deadline:
                return found
            time.sleep(0.2)

    def _scan(self) -> list[str]:
        found = []
        netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, timeout=30).stdout
        found += [f"netns {line.split()[0]}" for line in netns.splitlines() if f"pimpi-{self.name}-" in line]
        links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, timeout=30).stdout
        found += [f"link {line.split(':')[1].strip()}" for line in links.splitlines()
                  if f"pimpi-{self.name}" in line]
        mounts = Path("/proc/mounts").read_text().splitlines()
        found += [f"mount {m}" for m in mounts if f"vcluster-{self.name}" in m or f"pimpi-{self.name}-" in m]
        ps = subprocess.run(["ps", "-eo", "pid=,args="], capture_output=True, text=True, timeout=30).stdout
        found += [f"process {line.strip()}" for line in ps.splitlines()
                  if f"holder --hostname {self.name}" in line or f"vcluster-{self.name}/" in line
                  or f"-name pimpi-{self.name}-" in line]
        if f"BEGIN pimpi vcluster {self.name} " in Path("/etc/hosts").read_text():
            found.append("/etc/hosts block")
        if (STATE / f"vcluster-{self.name}.json").exists():
            found.append("state file")
        if self.dir.exists():
            found.append(f"state dir {self.dir}")
        if Path(f"/etc/netns/pimpi-{self.name}-{self.name}1").exists():
            found.append("/etc/netns entry")
        return found


@pytest.fixture(scope="module")
def vc(request):
    """The module's cluster (VCLUSTER = dict(name=, subnet=, nodes=, args=[...])), up once."""
    conf = request.module.VCLUSTER
    tool = VC(conf["name"], conf["subnet"], conf["nodes"])
    tool.vc("down", timeout=120)  # a test cluster left by an interrupted run: ours, by name
    started = time.monotonic()
    up = tool.vc("up", "--nodes", str(conf["nodes"]), "--subnet", conf["subnet"], *conf.get("args", []),
                 timeout=conf.get("timeout", 900))
    if up.returncode != 0:
        tool.vc("down", timeout=120)
    assert up.returncode == 0, up.stderr
    down_when_gone(tool.name)
    tool.up_seconds = time.monotonic() - started
    tool.up_log = up.stderr
    yield tool
    down = tool.vc("down", timeout=120)
    assert down.returncode == 0, down.stderr
    assert tool.leftovers() == []


@pytest.fixture
def make_vc():
    """Factory for a test cluster handled inside the test itself; brought down afterwards."""
    made: list[VC] = []

    def make(name: str, subnet: str, nodes: int) -> VC:
        tool = VC(name, subnet, nodes)
        tool.vc("down", timeout=120)
        down_when_gone(name)
        made.append(tool)
        return tool

    yield make
    for tool in made:
        tool.vc("down", timeout=120)
