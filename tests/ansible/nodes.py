"""Helpers shared by the Ansible end-to-end tests: root SSH into a virtual cluster's nodes, the
cluster user's clean login shell, the `pimpi` command and ansible-playbook's PLAY RECAP."""

from __future__ import annotations

import os
import random
import re
import string
import subprocess
import sys
from pathlib import Path

from tests.helpers import ssh_command

RECAP = re.compile(r"^(\S+)\s+: ok=\d+\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)


def pimpi(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([str(Path(sys.executable).parent / "pimpi"), *args], capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL, check=False)


def recap(out: str) -> dict[str, tuple[int, int, int]]:
    """host -> (changed, unreachable, failed) from the PLAY RECAP."""
    return {h: (int(c), int(u), int(f)) for h, c, u, f in RECAP.findall(out)}


def changed_lines(out: str) -> str:
    """The lines of a playbook's output that report a change (for a failure message)."""
    return "\n".join(line for line in out.splitlines() if line.startswith("changed:"))


def quote(text: str) -> str:
    return "'" + text.replace("'", "'\"'\"'") + "'"


class Nodes:
    """Root SSH into the virtual nodes with the cluster's own key and known_hosts (strict)."""

    def __init__(self, inventory: dict):
        v = inventory["all"]["vars"]
        self.hosts = inventory["all"]["children"]["pimpi_vcluster"]["hosts"]
        self.base = ssh_command(v["ansible_ssh_private_key_file"], v["pimpi_vcluster_known_hosts"], connect_timeout=120)

    def run(self, host: str, command: str, timeout: float = 120) -> subprocess.CompletedProcess:
        return subprocess.run(self.base + [f"root@{self.hosts[host]['ansible_host']}", command],
                              capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL,
                              check=False)

    def as_cluster_user(self, host: str, command: str, timeout: float = 180) -> subprocess.CompletedProcess:
        """COMMAND as the cluster user in a login shell with a clean environment (nothing from root's)."""
        inner = f"cd ~ && {command}"
        return self.run(host, "runuser -u mpi -- env -i HOME=/home/mpi PATH=/usr/bin:/bin LANG=C.UTF-8 "
                              f"bash -lc {quote(inner)}", timeout=timeout)


def up_test_cluster(prefix: str, nodes: int) -> tuple[str, str]:
    """Start a --rootfs --nat cluster of NODES with a name and subnet of its own (PREFIX + 4 random
    characters; $PIMPI_TEST_VCLUSTER=NAME:SUBNET when this machine assigns one), so that two test
    runs on one machine never touch each other's nodes; (name, subnet)."""
    rng = random.SystemRandom()
    fixed = os.environ.get("PIMPI_TEST_VCLUSTER", "")
    for _attempt in range(1 if fixed else 3):  # a name or subnet already in use: `up` refuses it, undoes itself
        name = prefix + "".join(rng.choice(string.ascii_lowercase + string.digits) for _ in range(4)) + "t"
        subnet = f"10.{rng.randint(160, 250)}.{rng.randint(0, 255)}.0/24"
        if fixed:
            name, _, subnet = fixed.partition(":")
        up = pimpi("vcluster", "up", "--nodes", str(nodes), "--rootfs", "--nat", "--name", name, "--subnet", subnet,
                   timeout=900)
        if up.returncode == 0:
            return name, subnet
    raise AssertionError(up.stdout + up.stderr)
