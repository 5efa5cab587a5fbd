"""What pimpi does inside a running VM node over SSH: shape its link, end its jobs, reboot it.

The host kernel may have no netem, so a VM node's delay and rate are applied by its own
kernel: netem + tbf on eth0 for what it sends, and the same on an ifb device that eth0's
ingress is redirected to for what it receives (each direction waits once, as with the
namespace nodes' two veth ends).
"""

from __future__ import annotations

import shlex
import time
from pathlib import Path

from pimpi.vcluster.sysrun import VclusterError, run

__all__ = ["Ssh", "shape_script", "kill_script", "quote"]


class Ssh:
    """ssh to one node with the cluster key and strict host key checking (an emulated node on a
    busy machine can take well over 5 s to send its banner: ConnectTimeout 30 s)."""

    def __init__(self, key: Path, known_hosts: Path, address: str, user: str = "root"):
        self.argv = ["ssh", "-i", str(key), "-o", f"UserKnownHostsFile={known_hosts}",
                     "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", "-o", "ConnectTimeout=30",
                     "-o", "ServerAliveInterval=5", "-o", "ServerAliveCountMax=3", f"{user}@{address}"]
        self.address = address

    def command(self, script: str) -> list[str]:
        """argv running SCRIPT (a shell snippet) in the node."""
        return self.argv + ["--", script]

    def run(self, script: str, timeout: float = 60) -> str:
        """Run SCRIPT in the node; its stdout, or VclusterError with its last error line."""
        return run(self.command(script), timeout=timeout, label=f"ssh {self.address}")

    def answers(self, script: str = "true", timeout: float = 20) -> bool:
        try:
            self.run(script, timeout=timeout)
            return True
        except VclusterError:
            return False

    def wait(self, timeout: float, ready: str = "true", alive=lambda: True) -> float:
        """Wait until READY succeeds in the node; seconds waited. ALIVE() False (the VM
        process ended) stops the wait early."""
        start = time.monotonic()
        while time.monotonic() - start < timeout:
            if not alive():
                raise VclusterError(f"{self.address}: the VM stopped while booting")
            if self.answers(ready, timeout=20):
                return time.monotonic() - start
            time.sleep(2)
        raise VclusterError(f"{self.address} did not answer over ssh in {timeout:g} s")


def _qdiscs(dev: str, delay_s: float | None, rate_bps: float | None) -> list[str]:
    lines = [f"tc qdisc del dev {dev} root 2>/dev/null || true"]
    parent = "root"
    if delay_s:
        lines.append(f"tc qdisc add dev {dev} root handle 1: netem delay {max(1, round(delay_s * 1e6))}us "
                     "limit 10000")
        parent = "parent 1:1"
    if rate_bps:
        burst = max(int(rate_bps / 8 / 1000), 131072)  # as the namespace links (net.shape)
        lines.append(f"tc qdisc add dev {dev} {parent} handle 10: tbf rate {int(rate_bps)}bit "
                     f"burst {burst} latency 50ms")
    return lines


def shape_script(delay_s: float | None, rate_bps: float | None) -> str:
    """Shell for the guest: DELAY_S each way and RATE_BPS on eth0 (None, None: unshaped)."""
    lines = ["set -e", "tc qdisc del dev eth0 ingress 2>/dev/null || true",
             "ip link del ifb0 2>/dev/null || true"]
    lines += _qdiscs("eth0", delay_s, rate_bps)
    if delay_s or rate_bps:
        lines += ["modprobe ifb numifbs=0", "ip link add ifb0 type ifb", "ip link set ifb0 up",
                  "tc qdisc add dev eth0 handle ffff: ingress",
                  "tc filter add dev eth0 parent ffff: matchall action mirred egress redirect dev ifb0"]
        lines += _qdiscs("ifb0", delay_s, rate_bps)
    return "\n".join(lines) + "\n"


def kill_script() -> str:
    """Shell for the guest: SIGKILL everything started over ssh (jobs, mpirun, ranks) except
    sshd itself and this session; print how many. System services keep running."""
    return "\n".join([
        "main=$(systemctl show -p MainPID --value ssh.service)",
        "keep=\" $main \"; p=$$",
        "while [ \"$p\" -gt 1 ]; do keep=\"$keep$p \"; p=$(awk '{print $4}' /proc/$p/stat); done",
        "n=0",
        "for p in $(cat /sys/fs/cgroup/system.slice/ssh.service/cgroup.procs); do",
        "  case \"$keep\" in *\" $p \"*) continue ;; esac",
        "  [ \"$p\" = \"$$\" ] && continue",
        "  kill -9 \"$p\" 2>/dev/null && n=$((n+1))",
        "done",
        "echo $n",
        "",
    ])


def quote(argv: list[str]) -> str:
    return " ".join(shlex.quote(a) for a in argv)
