"""Helpers shared by the Ansible end-to-end tests: root SSH into a virtual cluster's nodes, the
cluster user's clean login shell, the `pimpi` command and ansible-playbook's PLAY RECAP."""

from __future__ import annotations

import re
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
