"""--rootfs virtual cluster: each node its own Debian, reached over real SSH, MPI launched by ssh."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.root

VCLUSTER = {"name": "tvr", "subnet": "10.231.8.0/24", "nodes": 3, "args": ["--rootfs"]}

JOB = """\
import os, socket
from mpi4py import MPI
comm = MPI.COMM_WORLD
total = comm.allreduce(comm.rank + 1)
names = comm.gather(socket.gethostname(), root=0)
if comm.rank == 0:
    print("RESULT", total, ",".join(names), "agent" if "PRTE_MCA_plm_ssh_agent" in os.environ else "ssh")
"""


def _ssh(vc, host: str, *cmd: str, known_hosts: Path | None = None) -> subprocess.CompletedProcess:
    known = known_hosts or vc.dir / "known_hosts"
    return subprocess.run(["ssh", "-i", str(vc.dir / "id_ed25519"), "-o", f"UserKnownHostsFile={known}",
                           "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", "-o", "ConnectTimeout=5",
                           f"root@{host}", *cmd], capture_output=True, text=True, timeout=60,
                          stdin=subprocess.DEVNULL)


def test_ssh_with_the_generated_key_and_strict_host_keys(vc, tmp_path):
    keys = set()
    for host in vc.hostnames:
        out = _ssh(vc, host, "hostname; cat /etc/debian_version; id -u")
        assert out.returncode == 0, out.stderr
        name, _, uid = out.stdout.split()
        assert name == host and uid == "0"
    for line in (vc.dir / "known_hosts").read_text().splitlines():
        keys.add(line.split()[2])
    assert len(keys) == len(vc.hostnames)  # every node its own host key
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    refused = _ssh(vc, vc.hostnames[0], "true", known_hosts=empty)
    assert refused.returncode == 255 and "Host key verification failed" in refused.stderr


def test_each_node_has_its_own_root_filesystem(vc):
    assert _ssh(vc, vc.hostnames[0], "echo one > /root/marker").returncode == 0
    assert _ssh(vc, vc.hostnames[0], "cat /root/marker").stdout.strip() == "one"
    assert _ssh(vc, vc.hostnames[1], "test -e /root/marker").returncode == 1
    hosts = _ssh(vc, vc.hostnames[1], "cat /etc/hosts; cat /etc/hostname").stdout
    assert "10.231.8.2\ttvr1" in hosts and hosts.strip().endswith("tvr2")
    mine = subprocess.run(["python3", "-c", "import os; print(os.path.exists('/root/marker'))"],
                          capture_output=True, text=True, timeout=30)
    assert mine.stdout.strip() in ("False", "")  # nothing leaked to this machine (unless it had one)


def test_mpirun_launches_over_real_ssh(vc):
    job = vc.shared / "job.py"
    job.write_text(JOB)
    out = vc.mpi(str(job), n=3, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    line = next(l for l in out.stdout.splitlines() if l.startswith("RESULT"))
    _, total, names, how = line.split()
    assert int(total) == 6 and sorted(names.split(",")) == sorted(vc.hostnames)
    assert how == "ssh"


def test_render_writes_frames_on_rank0s_node_only(vc):
    out = vc.mpi("render", "scene", "julia", "-f", "6", "-W", "48", "-H", "32", "-q", "-o", "/root/frames",
                 n=3, timeout=180)
    assert out.returncode == 0, out.stdout + out.stderr
    listing = _ssh(vc, vc.hostnames[0], "ls /root/frames").stdout.split()
    assert [n for n in listing if n.endswith(".png")] == [f"frame_{i:05d}.png" for i in range(6)]
    assert _ssh(vc, vc.hostnames[1], "test -e /root/frames").returncode == 1


def test_inventory_works_with_ansible(vc, tmp_path):
    out = vc.vc("inventory", timeout=60)
    assert out.returncode == 0, out.stderr
    inv = json.loads(out.stdout)
    hosts = inv["all"]["children"]["pimpi_vcluster"]["hosts"]
    assert sorted(hosts) == sorted(vc.hostnames)
    assert inv["all"]["vars"]["ansible_ssh_private_key_file"] == str(vc.dir / "id_ed25519")
    ping = vc.ansible_ping()
    assert ping.returncode == 0, ping.stdout + ping.stderr
    assert ping.stdout.count("SUCCESS") == len(vc.hostnames)


def test_kill_restarts_sshd_so_the_node_stays_reachable(vc):
    out = vc.vc("kill", vc.hostnames[2], timeout=60)
    assert out.returncode == 0, out.stderr
    assert _ssh(vc, vc.hostnames[2], "hostname").stdout.strip() == vc.hostnames[2]
