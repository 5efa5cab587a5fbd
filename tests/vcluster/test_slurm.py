"""Slurm on the virtual cluster, for real: munge, slurmctld and slurmd in namespace nodes, jobs
submitted with `pimpi submit` from the head, a node crashed under a running render."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.root, pytest.mark.timeout(600)]

# slt1 is the head (munged, slurmctld); slt2..slt4 run slurmd, 2 CPUs each (this machine's).
VCLUSTER = dict(name="slt", subnet="10.91.0.0/24", nodes=4)
SCENE = ["render", "scene", "mandelbrot", "--frames", "12", "--width", "160", "--height", "90", "-q"]


class Slurm:
    """Drive the test cluster's Slurm: commands on the head, from a shared working folder."""

    def __init__(self, vc, compute: list[str]) -> None:
        self.vc, self.compute = vc, compute
        from pimpi.vcluster import slurm

        self.env = slurm.client_env(vc.name)

    def head(self, *cmd: str, cwd: Path | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
        """CMD on the head node (slt1) with the cluster's SLURM_CONF, in CWD."""
        argv = [sys.executable, "-m", "pimpi", "vcluster", "exec", "--name", self.vc.name, "node1", "--",
                "env", *(f"{k}={v}" for k, v in self.env.items()), *cmd]
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, cwd=cwd,
                              stdin=subprocess.DEVNULL)

    def submit(self, workdir: Path, *args: str, timeout: float = 240) -> subprocess.CompletedProcess:
        return self.head("pimpi", "submit", *args, cwd=workdir, timeout=timeout)

    def job(self, job: str) -> dict[str, str]:
        from pimpi.cluster.slurm.jobs import job_info

        old = os.environ.get("SLURM_CONF")
        os.environ["SLURM_CONF"] = self.env["SLURM_CONF"]
        try:
            return job_info(job) or {}
        finally:
            if old is None:
                os.environ.pop("SLURM_CONF")
            else:
                os.environ["SLURM_CONF"] = old


def _job_id(result: subprocess.CompletedProcess) -> str:
    assert result.stdout.startswith("job "), result.stdout + result.stderr
    return result.stdout.split()[1]


def _frames(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.glob("frame_*.png"))}


def _journal_keys(folder: Path) -> list[str]:
    lines = (folder / ".pimpi-journal").read_text().splitlines()[1:]
    return [json.loads(line)["key"] for line in lines if line.strip()]


@pytest.fixture(scope="module")
def slurm(vc):
    """Slurm started on the module's cluster; stopped, and nothing of it left, at the end."""
    if shutil.which("slurmctld") is None and os.environ.get("CI", "").lower() != "true":
        pytest.skip("Slurm not installed (make sysdeps installs slurm-wlm munge libpmix2 libpmix-dev)")
    from pimpi.vcluster import slurm as slurm_mod

    up = vc.pimpi("vcluster", "slurm", "up", "--name", vc.name, timeout=120)
    assert up.returncode == 0, up.stderr
    compute = up.stdout.split("compute nodes ")[1].split(", partition")[0].split(", ")
    yield Slurm(vc, compute)
    down = vc.pimpi("vcluster", "slurm", "down", "--name", vc.name, timeout=60)
    assert down.returncode == 0, down.stderr
    assert not slurm_mod.slurm_dir(vc.name).exists()
    ps = subprocess.run(["ps", "-eo", "args="], capture_output=True, text=True, timeout=30).stdout
    assert [line for line in ps.splitlines() if str(slurm_mod.slurm_dir(vc.name)) in line] == []


@pytest.fixture
def work(vc, request):
    """A fresh folder in the cluster's shared folder (every node sees it, like NFS)."""
    path = vc.shared / request.node.name
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir()
    return path


def test_sinfo_and_srun_see_every_node(slurm):
    info = slurm.head("sinfo", "-h", "-N", "-o", "%N %t %P")
    assert info.returncode == 0, info.stderr
    assert sorted(line.split()[0] for line in info.stdout.splitlines()) == slurm.compute
    assert {line.split()[1] for line in info.stdout.splitlines()} == {"idle"}
    names = slurm.head("srun", "-N3", "hostname", timeout=60)
    assert names.returncode == 0, names.stderr
    assert sorted(names.stdout.split()) == slurm.compute


def test_vcluster_exec_sets_slurm_conf_after_slurm_up(slurm, vc):
    from pimpi.vcluster import slurm as slurm_mod

    info = vc.exec("node1", "sinfo", "-h", "-N", "-o", "%N", timeout=60)  # no env SLURM_CONF=... needed
    assert info.returncode == 0, info.stderr
    assert sorted(info.stdout.split()) == slurm.compute
    mine = subprocess.run([sys.executable, "-m", "pimpi", "vcluster", "exec", "--name", vc.name, "node1", "--",
                           "printenv", "SLURM_CONF"], capture_output=True, text=True, timeout=60,
                          stdin=subprocess.DEVNULL, env={**os.environ, "SLURM_CONF": "/elsewhere.conf"})
    assert mine.stdout.strip() == "/elsewhere.conf"  # the caller's own setting wins
    assert str(slurm_mod.conf_path(vc.name)) in vc.exec("node1", "printenv", "SLURM_CONF", timeout=60).stdout


def test_boot_brings_a_killed_namespace_node_back_with_its_slurmd(slurm, vc):
    node = slurm.compute[-1]
    killed = vc.vc("kill", node, timeout=60)  # its slurmd dies with everything else in it
    assert killed.returncode == 0, killed.stderr
    boot = vc.vc("boot", node, timeout=180)
    assert boot.returncode == 0 and boot.stdout.startswith(f"{node}: up after"), boot.stdout + boot.stderr
    every = slurm.head("srun", "-N", str(len(slurm.compute)), "-t", "2", "hostname", timeout=150)  # every node
    assert every.returncode == 0, every.stderr
    assert sorted(every.stdout.split()) == slurm.compute


def test_submit_render_gives_the_local_frames(slurm, work):
    local = subprocess.run([sys.executable, "-m", "pimpi", "run", "-n", "2", "--timeout", "120", "--", *SCENE,
                            "--out", str(work / "local")], capture_output=True, text=True, timeout=180)
    assert local.returncode == 0, local.stderr
    done = slurm.submit(work, "-N", "2", "-n", "4", "-t", "5", "--wait", "--", *SCENE, "--out", "slurm")
    assert done.returncode == 0, done.stdout + done.stderr
    job = _job_id(done)
    assert f"job {job} RUNNING on slt[" in done.stdout and f"job {job} COMPLETED" in done.stdout
    script = (work / f"pimpi-render-scene-{job}.sbatch").read_text()
    assert "#SBATCH --requeue" in script and "#SBATCH --nodes=2" in script
    assert (work / f"pimpi-{job}.out").exists()
    frames = _frames(work / "slurm")
    assert len(frames) == 12 and frames == _frames(work / "local")


def test_wait_ends_with_the_job_exit_code(slurm, work):
    done = slurm.submit(work, "--wait", "--", "render", "scene", "nosuch", "--out", "x")
    assert done.returncode == 2, done.stdout + done.stderr  # the job's: render refused the scene
    assert "unknown scene 'nosuch'" in done.stdout and f"job {_job_id(done)} FAILED" in done.stdout


def test_doctor_inside_an_allocation_sees_every_node(slurm, work):
    done = slurm.submit(work, "-N", "3", "-n", "3", "-t", "5", "--wait", "--", "doctor")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "ok: 3 ranks on 3 node(s)" in done.stdout
    assert "slurm: partitions pimpi* up; munge ok" in done.stdout
    assert f"slurm: this job's nodes {', '.join(slurm.compute)}" in done.stdout
    rows = {line.split()[0]: line.split()[1] for line in done.stdout.splitlines()
            if line.split()[:1] and line.split()[0] in slurm.compute}
    assert set(rows) == set(slurm.compute) and set(rows.values()) <= {"alloc", "mix"}, rows  # busy: our job


def test_doctor_reports_a_down_node(slurm, work):
    down = slurm.head("scontrol", "update", f"NodeName={slurm.compute[-1]}", "State=DRAIN", "Reason=fan")
    assert down.returncode == 0, down.stderr
    try:
        seen = slurm.head("pimpi", "doctor", cwd=work)
    finally:
        slurm.head("scontrol", "update", f"NodeName={slurm.compute[-1]}", "State=RESUME")
    assert seen.returncode == 1, seen.stdout + seen.stderr
    assert f"problem: Slurm node {slurm.compute[-1]} is drain (fan)" in seen.stdout


def test_two_jobs_queue_and_both_finish(slurm, work):
    jobs = []
    for name in ("first", "second"):
        out = slurm.submit(work, "-N", "3", "-n", "3", "--exclusive", "-t", "5", "-J", name, "--",
                           *SCENE, "--out", name)
        assert out.returncode == 0, out.stderr
        jobs.append(_job_id(out))
    second = slurm.job(jobs[1])
    assert second["JobState"] == "PENDING", second
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        states = [slurm.job(j).get("JobState") for j in jobs]
        if states == ["COMPLETED", "COMPLETED"]:
            break
        assert not set(states) & {"FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL"}, states
        time.sleep(1)
    first, second = (slurm.job(j) for j in jobs)
    assert [first["JobState"], second["JobState"]] == ["COMPLETED", "COMPLETED"]
    assert second["StartTime"] >= first["EndTime"]  # it waited for the nodes
    assert len(_frames(work / "first")) == len(_frames(work / "second")) == 12


def test_node_crash_requeues_and_the_render_resumes(slurm, work):
    frames = 40
    scene = ["render", "scene", "raytrace", "--frames", str(frames), "--width", "480", "--height", "270"]
    out = slurm.submit(work, "-N", "2", "-n", "4", "-t", "10", "--", *scene, "--out", "frames")
    assert out.returncode == 0, out.stderr
    job = _job_id(out)
    journal = work / "frames" / ".pimpi-journal"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if journal.exists() and len(_journal_keys(work / "frames")) >= 4:
            break
        time.sleep(0.2)
    info = slurm.job(job)
    assert info["JobState"] == "RUNNING", info
    crashed = info["BatchHost"]
    finished_before = len(_journal_keys(work / "frames"))
    assert finished_before < frames, "the render ended before the crash: make it longer"
    kill = slurm.vc.vc("kill", crashed)  # every process of the node: its slurmd, the batch script, ranks
    assert kill.returncode == 0, kill.stderr
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        info = slurm.job(job)
        if info.get("JobState") in ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT"):
            break
        time.sleep(1)
    assert info["JobState"] == "COMPLETED", info
    assert int(info["Restarts"]) >= 1 and crashed not in info["NodeList"], info
    keys = _journal_keys(work / "frames")
    assert sorted(set(keys)) == sorted(keys), "a finished frame was rendered again"
    assert len(keys) == frames and len(_frames(work / "frames")) == frames
    log = (work / f"pimpi-{job}.out").read_text()
    assert f"pimpi job {job} start 1" in log
    skipped = [line for line in log.splitlines() if "skipped (already done)" in line]
    assert skipped and int(skipped[-1].split(" skipped")[0].split()[-1]) >= finished_before, log
    from pimpi.vcluster import slurm as slurm_mod

    slurm_mod.start_slurmd(slurm.vc.name, crashed)  # the node comes back (ReturnToService=2)
    slurm_mod.wait_idle(slurm.vc.name, slurm.compute, timeout=60)
