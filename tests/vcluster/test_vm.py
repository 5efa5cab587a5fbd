"""VM nodes (`up --vm`): real kernels booted by QEMU from the cached Debian image, configured at
first boot by cloud-init, reached over SSH; MPI across them, netem in the guests, power cuts
and reboots. The cluster boots once for the module (about 3 minutes under TCG on 2 cores)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pimpi.testing import vm_skip_reason

if vm_skip_reason():  # one line for the whole module on a laptop; never skipped in CI
    pytest.skip(vm_skip_reason(), allow_module_level=True)

pytestmark = pytest.mark.timeout(3600)  # the first test waits for the cluster (and a cold image build)

VCLUSTER = {"name": "tvm", "subnet": "10.231.20.0/24", "nodes": 2, "args": ["--vm"], "timeout": 2400}

JOB = """\
import os, socket
from mpi4py import MPI
comm = MPI.COMM_WORLD
total = comm.allreduce(comm.rank + 1)
names = comm.gather(socket.gethostname(), root=0)
kernels = comm.gather(os.uname().release, root=0)
if comm.rank == 0:
    print("RESULT", total, ",".join(names), len(set(kernels)), os.uname().release)
"""

PINGPONG = """\
from mpi4py import MPI
from pimpi.cluster.pingpong import pingpong
rows = pingpong(MPI.COMM_WORLD, 0, 1, [8], loops=200, skip=20)
if MPI.COMM_WORLD.rank == 0:
    print("LATENCY", rows[0]["latency"], rows[0]["latency_min"])
"""


def _hostfile(vc, name: str, hosts: list[str]) -> Path:
    path = vc.shared / name
    path.write_text("".join(f"{h} slots=1\n" for h in hosts))
    return path


def _mpi(vc, hostfile: Path, *target: str, n: int, timeout: float = 300) -> subprocess.CompletedProcess:
    return vc.exec("node1", "pimpi", "run", "--hostfile", str(hostfile), "-n", str(n), "--timeout", str(timeout),
                   "--", *target, timeout=timeout + 60)


def _status(vc) -> dict:
    out = vc.vc("status", "--json", timeout=60)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_nodes_boot_their_own_kernel_configured_by_cloud_init(vc):
    print(f"\n[vm] cluster of {vc.nodes} up in {vc.up_seconds:.0f} s:\n{vc.up_log}")
    info = _status(vc)
    assert info["spec"]["kind"] == "vm" and set(info["accel"].values()) <= {"tcg", "kvm"}
    for row in info["nodes"]:
        assert row["running"] and row["link"] == "up" and row["rss_mb"] > 100, row
        print(f"[vm] {row['hostname']}: {row['accel']}, answered after {row['boot_s']} s, RSS {row['rss_mb']} MB")
    for host in vc.hostnames:
        out = vc.ssh(host, "hostname; uname -r; cat /etc/hosts; id -u pimpi; "
                             "cat /home/pimpi/.ssh/authorized_keys; ps -p 1 -o comm=")
        assert out.returncode == 0, out.stderr
        lines = out.stdout.splitlines()
        assert lines[0] == host
        assert lines[1] != subprocess.run(["uname", "-r"], capture_output=True, text=True).stdout.strip()
        assert f"10.231.20.2\ttvm1" in out.stdout and "127.0.1.1" not in out.stdout  # manage_etc_hosts template
        assert (vc.dir / "id_ed25519.pub").read_text().split()[1] in out.stdout  # the seed's user and key
        assert lines[-1] == "systemd"
    listing = vc.vc("status", timeout=60).stdout
    assert re.search(r"VM nodes \(amd64 (tcg|kvm)\)", listing), listing


def test_mpi_job_runs_across_vm_nodes_over_ssh(vc):
    job = vc.shared / "job.py"
    job.write_text(JOB)
    out = vc.mpi(str(job), n=vc.nodes, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    _, total, names, kernels, _release = next(l for l in out.stdout.splitlines() if l.startswith("RESULT")).split()
    assert int(total) == vc.nodes * (vc.nodes + 1) // 2 and sorted(names.split(",")) == sorted(vc.hostnames) and kernels == "1"


def _latency(vc, hostfile: Path) -> tuple[float, float]:
    """(mean, min) one-way latency. Under emulation on a busy machine the mean is mostly how
    long a VM waits for the host to run it (10-15 ms), which can hide a 2 ms delay; netem's
    delay is a floor, so the minimum shows it."""
    out = _mpi(vc, hostfile, str(vc.shared / "pingpong.py"), n=2, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    _, mean, least = next(l for l in out.stdout.splitlines() if l.startswith("LATENCY")).split()
    return float(mean), float(least)


def test_slow_delay_raises_pingpong_latency_in_the_guest_kernel(vc):
    (vc.shared / "pingpong.py").write_text(PINGPONG)
    pair = _hostfile(vc, "hostfile-12", vc.hostnames[:2])
    before = _latency(vc, pair)
    out = vc.vc("slow", vc.hostnames[1], "--delay", "2ms", timeout=120)
    assert out.returncode == 0, out.stderr
    try:
        qdiscs = vc.ssh(vc.hostnames[1], "tc qdisc show").stdout
        assert "netem" in qdiscs and "ifb0" in qdiscs
        after = _latency(vc, pair)
    finally:
        assert vc.vc("heal", vc.hostnames[1], timeout=120).returncode == 0
    print(f"\n[vm] ping-pong latency mean {before[0] * 1e3:.2f} -> {after[0] * 1e3:.2f} ms, "
          f"min {before[1] * 1e3:.2f} -> {after[1] * 1e3:.2f} ms with slow --delay 2ms")
    assert after[1] - before[1] >= 1e-3, (before, after)
    assert "netem" not in vc.ssh(vc.hostnames[1], "tc qdisc show").stdout


def test_cut_and_heal_the_cable(vc):
    assert vc.vc("cut", vc.hostnames[1], timeout=60).returncode == 0
    try:
        lost = vc.ssh(vc.hostnames[0], "ping", "-c", "1", "-W", "2", vc.hostnames[1])
        assert lost.returncode != 0
    finally:
        assert vc.vc("heal", vc.hostnames[1], timeout=120).returncode == 0
    assert vc.ssh(vc.hostnames[0], "ping", "-c", "1", "-W", "5", vc.hostnames[1]).returncode == 0


def test_inventory_reaches_every_vm_node_with_ansible(vc):
    ping = vc.ansible_ping()
    assert ping.returncode == 0, ping.stdout + ping.stderr
    assert ping.stdout.count("SUCCESS") == len(vc.hostnames)


def _records(out: Path) -> int:
    try:
        return max(0, len((out / ".pimpi-journal").read_bytes().splitlines()) - 1)
    except OSError:
        return 0


def test_power_cut_mid_render_then_rerun_on_the_rest_redoes_no_finished_frame(vc):
    from pimpi.render.job import frame_name

    frames, out = 12, vc.shared / "frames"
    render = ["render", "scene", "julia", "-f", str(frames), "-W", "96", "-H", "64", "-q", "-o", str(out)]
    everyone = _hostfile(vc, "hostfile-all", vc.hostnames)
    job = subprocess.Popen([sys.executable, "-m", "pimpi", "vcluster", "exec", "--name", vc.name, "node1", "--",
                            "pimpi", "run", "--hostfile", str(everyone), "-n", str(vc.nodes), "--timeout", "600", "--",
                            *render], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 600
        while _records(out) < 2 and job.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert job.poll() is None and _records(out) >= 2, "the render ended before the power cut"
        cut = vc.vc("power-cut", vc.hostnames[-1], timeout=60)
        assert cut.returncode == 0, cut.stderr
        assert vc.vc("kill", "node1", timeout=60).returncode == 0  # the job waits forever on a dead node
        job.wait(timeout=60)
    finally:
        if job.poll() is None:
            import os
            import signal
            os.killpg(job.pid, signal.SIGKILL)
            job.wait(timeout=30)
    assert not _status(vc)["nodes"][-1]["running"]
    done = sorted(p.name for p in out.glob("frame_*.png"))
    # On a quiet machine the farm may finish every frame on the live node before the cut is felt;
    # the claim under test holds either way: the rerun on the rest renders no finished frame again.
    assert 2 <= len(done) <= frames, done
    mtimes = {name: (out / name).stat().st_mtime_ns for name in done}
    rest = vc.shared / "hostfile-rest"  # every node but the dead one, two ranks each
    rest.write_text("".join(f"{h} slots=2\n" for h in vc.hostnames[:-1]))
    rerun = _mpi(vc, rest, *render, "--stats", str(vc.shared / "stats.json"), n=2 * (vc.nodes - 1), timeout=600)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    stats = json.loads((vc.shared / "stats.json").read_text())
    assert stats["skipped"] >= len(done) and stats["skipped"] + stats["rendered"] == frames
    assert sorted(p.name for p in out.glob("frame_*.png")) == [frame_name(f, frames) for f in range(frames)]
    for name, mtime in mtimes.items():
        assert (out / name).stat().st_mtime_ns == mtime, f"{name} was rendered again"
    booted = vc.vc("boot", vc.hostnames[-1], timeout=2000)
    assert booted.returncode == 0, booted.stderr
    print(f"\n[vm] {booted.stdout.strip()}")
    assert vc.ssh(vc.hostnames[-1], "hostname").stdout.strip() == vc.hostnames[-1]


def test_reboot_comes_back_with_its_hosts_and_shares(vc):
    out = vc.vc("reboot", vc.hostnames[0], timeout=2000)
    assert out.returncode == 0, out.stderr
    print(f"\n[vm] {out.stdout.strip()}")
    back = vc.ssh(vc.hostnames[0], f"cat /proc/uptime; cat /etc/hosts; mountpoint {vc.shared}")
    assert back.returncode == 0, back.stderr
    assert float(back.stdout.split()[0]) < 600 and "127.0.1.1" not in back.stdout
