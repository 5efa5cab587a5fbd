"""Light virtual cluster (namespace hosts): MPI really crosses the virtual network."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.root

VCLUSTER = {"name": "tvl", "subnet": "10.231.7.0/24", "nodes": 4}
REPO = Path(__file__).resolve().parents[2]

JOB = """\
import socket
import numpy as np
from mpi4py import MPI
comm = MPI.COMM_WORLD
data = np.arange(comm.size * 3, dtype="i8") if comm.rank == 0 else None
part = np.empty(3, dtype="i8")
comm.Scatter(data, part, root=0)
total = np.zeros(1, dtype="i8")
comm.Allreduce(np.array([part.sum()], dtype="i8"), total)
names = comm.gather(socket.gethostname(), root=0)
if comm.rank == 0:
    print("RESULT", total[0], ",".join(names), flush=True)
"""


def test_nodes_have_own_hostname_address_and_names_resolve(vc):
    for i, host in enumerate(vc.hostnames, start=1):
        out = vc.exec(f"node{i}", "sh", "-c", f"hostname; ip -o -4 addr show dev eth0; "
                      f"getent hosts {vc.hostnames[-1]}; ip route")
        assert out.returncode == 0, out.stderr
        lines = out.stdout.splitlines()
        assert lines[0] == host
        assert f"10.231.7.{1 + i}/24" in lines[1]
        assert lines[2].split()[0] == f"10.231.7.{1 + len(vc.hostnames)}"
        assert "default" not in out.stdout  # without --nat nothing leaves the namespaces
    resolved = subprocess.run(["getent", "hosts", vc.hostnames[0]], capture_output=True, text=True, timeout=30)
    assert resolved.stdout.split()[0] == "10.231.7.2"  # and on the machine itself


def test_up_again_is_refused_and_bad_options_exit_2(vc):
    again = vc.vc("up", "--nodes", "2", "--subnet", vc.subnet, timeout=60)
    assert again.returncode == 1 and "already up" in again.stderr
    assert vc.vc("up", "--nodes", "0", timeout=60).returncode == 2
    assert vc.vc("slow", "node1", "--delay", "soon", timeout=60).returncode == 2
    assert vc.vc("exec", "node9", "--", "true", timeout=60).returncode == 2


def test_hostfile_and_env(vc):
    hostfile = vc.vc("hostfile", timeout=60).stdout.splitlines()
    assert hostfile == [f"{h} slots=1" for h in vc.hostnames]
    assert vc.hostfile.read_text().splitlines() == hostfile
    env = vc.vc("env", timeout=60).stdout
    assert "OMPI_MCA_btl_tcp_if_include=10.231.7.0/24" in env
    assert re.search(r"PRTE_MCA_plm_ssh_agent=\S+ssh-agent", env)


def test_mpi_scatter_allreduce_across_nodes(vc, tmp_path):
    job = vc.shared / "job.py"
    job.write_text(JOB)
    out = vc.mpi(str(job), n=4, timeout=90)
    assert out.returncode == 0, out.stderr
    line = next(l for l in out.stdout.splitlines() if l.startswith("RESULT"))
    _, total, names = line.split()
    assert int(total) == sum(range(12))
    assert sorted(names.split(",")) == sorted(vc.hostnames)  # one rank on each node


def test_plain_mpirun_from_the_machine_with_env(vc):
    """`eval "$(pimpi vcluster env)"; mpirun --hostfile FILE` works from the host too."""
    job = vc.shared / "job.py"
    job.write_text(JOB)
    script = (f'eval "$({sys.executable} -m pimpi vcluster env --name {vc.name})"; '
              f"{Path(sys.executable).parent / 'mpirun'} --hostfile {vc.hostfile} -n 3 "
              f"{sys.executable} -m mpi4py {job}")
    out = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "RESULT 36 " in out.stdout


def test_doctor_sees_distinct_hosts_and_addresses(vc):
    report = vc.shared / "doctor.json"
    out = vc.mpi("doctor", "--json", str(report), n=4, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    records = json.loads(report.read_text())["records"]
    hosts = [r["hostname"] for r in records]
    assert sorted(hosts) == sorted(vc.hostnames)
    addresses = {r["hostname"]: sorted(a for v in r["addresses"].values() for a in v) for r in records}
    assert len({tuple(a) for a in addresses.values()}) == 4
    for record in records:
        assert record["sees"][record["hostname"]] in addresses[record["hostname"]]


@pytest.mark.skipif(not any((REPO / "tests" / "collectives").glob("test_*.py")),
                    reason="no collectives tests yet")
@pytest.mark.parametrize("size", [3, 5])
def test_collectives_suite_across_nodes(vc, size):
    out = vc.mpi("-m", "pytest", "--with-mpi", "-m", "mpi", str(REPO / "tests" / "collectives"), "-q", "-x",
                 n=size, timeout=240, run_args=["--oversubscribe"] if size > 4 else [])
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    assert re.search(r"\d+ passed", out.stdout)


RENDER = ["render", "scene", "mandelbrot", "-f", "24", "-W", "96", "-H", "64", "-q"]


def _frames(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.glob("frame_*.png"))}


def test_render_across_nodes_writes_every_frame(vc):
    out_dir = vc.shared / "ref"
    stats = vc.shared / "ref.json"
    out = vc.mpi(*RENDER, "-o", str(out_dir), "--stats", str(stats), n=4, timeout=180)
    assert out.returncode == 0, out.stdout + out.stderr
    frames = _frames(out_dir)
    assert sorted(frames) == [f"frame_{i:05d}.png" for i in range(24)]
    assert all(data.startswith(b"\x89PNG") for data in frames.values())
    report = json.loads(stats.read_text())
    assert report["ranks"] == 4 and report["rendered"] == 24


LONG_RENDER = ["render", "scene", "mandelbrot", "-f", "60", "-W", "320", "-H", "240", "-q"]


@pytest.mark.timeout(900)  # a faulted render, its rerun, an undisturbed one: minutes under load
def test_cut_node_ends_job_with_exit_1_naming_it_without_timeout_then_heal_and_resume(vc, tmp_path):
    """A cable cut mid-job ends it without any --timeout (TCP keepalives on Open MPI's own
    connections), with exit 1 and one line naming the node; after `heal` the rerun resumes:
    the frames written before the cut stay as they were and the rest are added."""
    out_dir = vc.shared / "faulted"
    node = vc.hostnames[2]

    def cut():
        done = vc.vc("cut", node, timeout=60)
        assert done.returncode == 0, done.stderr
        assert vc.vc("status", "--json", timeout=60).stdout.count('"link": "down"') == 1

    try:  # no --timeout: keepalives notice 10 + 3 * 5 s of silence, then the job ends
        code, text, _ = vc.fault_mid_job(
            ["run", "--hostfile", str(vc.hostfile), "-n", "4", "--", *LONG_RENDER, "-o", str(out_dir)],
            lambda: len(list(out_dir.glob("frame_*.png"))) >= 4, cut, tmp_path / "job.log")
    finally:
        heal = vc.vc("heal", node, timeout=60)
    kept = _frames(out_dir)
    assert code == 1, text
    named = [line for line in text.splitlines() if line.strip().startswith("pimpi run: node ")]
    assert len(named) == 1 and node in named[0], text
    assert 4 <= len(kept) < 60, text
    assert heal.returncode == 0, heal.stderr
    killed = vc.vc("kill", node, timeout=60)  # stale ranks of the dead job, if any
    assert killed.returncode == 0, killed.stderr
    status = json.loads(vc.vc("status", "--json", timeout=60).stdout)
    assert [n["processes"] for n in status["nodes"] if n["hostname"] == node] == [1]
    _rerun_keeps(vc, out_dir, kept)


def _rerun_keeps(vc, out_dir: Path, kept: dict[str, bytes]) -> None:
    """The same render again completes all 60 frames, leaves the kept ones as they were, and
    equals an undisturbed render byte for byte."""
    rerun = vc.mpi(*LONG_RENDER, "-o", str(out_dir), n=4, timeout=240)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    after = _frames(out_dir)
    assert len(after) == 60 and all(after[name] == data for name, data in kept.items())
    ref_dir = vc.shared / "long-ref"
    if len(_frames(ref_dir)) != 60:  # rendered once for the module
        ref = vc.mpi(*LONG_RENDER, "-o", str(ref_dir), n=4, timeout=240)
        assert ref.returncode == 0, ref.stdout + ref.stderr
    assert after == _frames(ref_dir)


@pytest.mark.timeout(900)  # a faulted render, its rerun, an undisturbed one: minutes under load
def test_a_node_killed_mid_render_ends_the_job_with_exit_1_naming_it_and_keeps_the_frames(vc, tmp_path):
    """Open MPI ends a job whose node died with status 0; `pimpi run` reads its launcher's
    output and says exit 1, naming the node. The frames already written stay for the rerun."""
    out_dir = vc.shared / "killed-render"
    node = vc.hostnames[2]
    code, text, killed = vc.fault_mid_job(
        ["run", "--hostfile", str(vc.hostfile), "-n", "4", "--", *LONG_RENDER, "-o", str(out_dir)],
        lambda: len(list(out_dir.glob("frame_*.png"))) >= 4, lambda: vc.vc("kill", node, timeout=60),
        tmp_path / "job.log")
    assert killed.returncode == 0 and "ended 0 processes" not in killed.stdout, killed.stdout + text
    kept = _frames(out_dir)
    assert code == 1, text
    named = [line for line in text.splitlines() if line.strip().startswith("pimpi run: node ")]
    assert len(named) == 1 and node in named[0], text
    assert 4 <= len(kept) < 60, text
    _rerun_keeps(vc, out_dir, kept)


def _qdisc(*prefix_and_dev: str) -> str:
    return subprocess.run(["tc", *prefix_and_dev[:-1], "qdisc", "show", "dev", prefix_and_dev[-1]],
                          capture_output=True, text=True, timeout=30).stdout


def test_slow_shapes_the_link_and_heal_restores_it(vc):
    node, dev = vc.hostnames[1], f"pimpi-{vc.name}-2"
    slow = vc.vc("slow", node, "--delay", "30ms", timeout=60)
    if slow.returncode == 0:
        assert "delay 30ms" in _qdisc(dev) and "delay 30ms" in _qdisc("-n", f"pimpi-{vc.name}-{node}", "eth0")
    else:  # a kernel without netem (some VM kernels): said in one line, exit 1
        assert slow.returncode == 1 and "netem" in slow.stderr, slow.stderr
    rate = vc.vc("slow", node, "--rate", "50mbit", timeout=60)
    assert rate.returncode == 0, rate.stderr
    assert "tbf" in _qdisc(dev) and "rate 50Mbit" in _qdisc(dev)
    assert "rate 50Mbit" in _qdisc("-n", f"pimpi-{vc.name}-{node}", "eth0")
    job = vc.mpi(str(vc.shared / "job.py"), n=2, timeout=90)  # still works, only slower
    assert job.returncode == 0, job.stderr
    assert vc.vc("heal", node, timeout=60).returncode == 0
    assert "tbf" not in _qdisc(dev) and "netem" not in _qdisc(dev)  # profile lan: unshaped again


def test_kill_ends_every_process_in_the_node(vc):
    node = vc.hostnames[3]
    sleeper = subprocess.Popen([sys.executable, "-m", "pimpi", "vcluster", "exec", "--name", vc.name, node,
                                "--", "sleep", "300"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            status = json.loads(vc.vc("status", "--json", timeout=60).stdout)
            if [n["processes"] for n in status["nodes"] if n["hostname"] == node] == [2]:
                break
            time.sleep(0.1)
        out = vc.vc("kill", node, timeout=60)
        assert out.returncode == 0 and "ended 1 processes" in out.stdout, out.stdout + out.stderr
        assert sleeper.wait(timeout=30) != 0
    finally:
        if sleeper.poll() is None:
            sleeper.kill()
            sleeper.wait(timeout=30)
    assert vc.exec(node, "hostname").stdout.strip() == node  # the node itself is still there
