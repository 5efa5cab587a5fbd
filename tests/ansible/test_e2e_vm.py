"""End to end on VM nodes with real kernels: what a freshly flashed Raspberry Pi meets.

Two QEMU nodes first boot through cloud-init seeded as Raspberry Pi Imager seeds it (hostname, a
non-root user with a key and sudo, manage_etc_hosts with cloud-init's stock template), with
systemd-timesyncd as on Raspberry Pi OS, and pose as a Pi 4 (a fake board model file) so role
raspberrypi installs its governor unit on a machine without cpufreq. Then: site.yml as the Imager user
(sudo), a job across both over the real kernel NFS share (root_squash), the share used by the worker;
every node rebooted, verify.yml and a job again with hosts, governor unit, firewall, automount and
chrony intact; site.yml again (changed=0); a change to the pimpi source without a new version number
reaches every node (doctor shows the same new build everywhere); reset.yml gives every node back as
it was. The tests run in order on one cluster. Adding a node is proven on namespace nodes
(test_e2e_vcluster.py).

Pip never downloads here after the first run: the controller's wheelhouse is cached in
/var/cache/pimpi (per node platform and Python); the role builds the pimpi wheel from a copy of this
tree (the copy the test changes).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml

from pimpi.buildhash import build_hash
from pimpi.fileio import built_once
from pimpi.testing import down_when_gone, vm_skip_reason
from tests.ansible.conftest import copy_source, run_tool
from tests.ansible.nodes import Nodes, changed_lines, pimpi, recap

if vm_skip_reason():  # one line for the whole module on a laptop; never skipped in CI
    pytest.skip(vm_skip_reason(), allow_module_level=True)

# `long`: not in `make test` (CI's time): see the README for what it costs under emulation.
pytestmark = [pytest.mark.root, pytest.mark.long, pytest.mark.timeout(5400)]

NAME, SUBNET = "tva", "10.231.41.0/24"
VENV = "/opt/pimpi/venv"
SHARED = "/srv/pimpi"  # the role's default: exported by the head over NFS, automounted by the worker
CACHE = Path("/var/cache/pimpi/ansible-wheelhouse")
BOARD = "/etc/pimpi-test-board"  # raspberrypi_model_file: the node says it is a Pi 4
TEMPLATE = "/etc/cloud/templates/hosts.debian.tmpl"
GOVERNOR = "pimpi-cpu-governor.service"
REPO = Path(__file__).resolve().parents[2]
IMAGER_USER = "pimpi"  # the user Imager creates (sudo without a password: the choice this test makes)

JOB = """\
import socket
from mpi4py import MPI
comm = MPI.COMM_WORLD
names = comm.gather(socket.gethostname(), root=0)
total = comm.allreduce(comm.rank + 1)
if comm.rank == 0:
    print("RESULT", total, ",".join(sorted(names)))
"""


class Cluster:
    """The booted cluster, the inventory the playbooks use, and the stage times."""

    def __init__(self, state: Path, wheelhouse: Path, work: Path):
        inventory = yaml.safe_load((state / "inventory.yml").read_text())
        self.nodes = Nodes(inventory)
        self.booted = list(self.nodes.hosts)
        self.head, self.worker = self.booted
        self.names = list(self.booted)
        self.work = work
        self.wheelhouse = wheelhouse
        self.source = copy_source(work)  # the pimpi tree the role builds from (a change test changes it)
        self.times: dict[str, float] = {}
        self.write_groups()
        self.inv = ["-i", str(state / "inventory.yml"), "-i", str(work / "groups.yml")]

    def write_groups(self) -> None:
        """The cluster's groups for the nodes in self.names: the first is the head."""
        address = {n: self.nodes.hosts[n]["ansible_host"] for n in self.names}
        groups = {"all": {
            "vars": {"cluster_subnet": SUBNET, "cluster_shared_path": SHARED, "ansible_user": IMAGER_USER,
                     "mpi_venv_wheelhouse": str(self.wheelhouse), "mpi_venv_source": str(self.source),
                     "raspberrypi_model_file": BOARD},
            "children": {
                "head": {"hosts": {self.head: {"cluster_address": address[self.head]}}},
                "workers": {"hosts": {w: {"cluster_address": address[w]} for w in self.names[1:]}},
            }}}
        (self.work / "groups.yml").write_text(yaml.safe_dump(groups))

    def playbook(self, name: str, timeout: float = 3600) -> subprocess.CompletedProcess:
        # an emulated node on a busy machine can take more than ansible.cfg's 30 s to greet
        return run_tool(["ansible-playbook", *self.inv, f"playbooks/{name}"], timeout=timeout, ANSIBLE_TIMEOUT="120")

    def everywhere(self, command: str, timeout: float = 600,
                   nodes: list[str] | None = None) -> dict[str, subprocess.CompletedProcess]:
        """COMMAND as root on every provisioned node (or on NODES) at once."""
        nodes = nodes or self.names
        with ThreadPoolExecutor(len(nodes)) as pool:
            done = {n: pool.submit(self.nodes.run, n, command, timeout) for n in nodes}
            return {n: f.result() for n, f in done.items()}

    def job(self) -> subprocess.CompletedProcess:
        """A job with one rank on each provisioned node, as the cluster user, from the head, with the
        playbook's hostfile; the script lies in the NFS share (workers read it through their automount)."""
        return self.nodes.as_cluster_user(
            self.head, f"printf %s {_sh(JOB)} > {SHARED}/job.py && {VENV}/bin/pimpi run --hostfile "
                       f"{SHARED}/hostfile -n {len(self.names)} --timeout 300 -- {SHARED}/job.py",
            timeout=420)

    def expected(self) -> str:
        """What the job prints when every provisioned node ran one rank."""
        return f"RESULT {sum(range(1, len(self.names) + 1))} {','.join(sorted(self.names))}"

    def stage(self, label: str, started: float) -> None:
        self.times[label] = time.monotonic() - started
        print(f"\n[vm-ansible] {label}: {self.times[label]:.0f} s")


def _sh(text: str) -> str:
    return "'" + text.replace("'", "'\"'\"'") + "'"


def _wheelhouse(work: Path) -> Path:
    """This run's wheelhouse: hard links into the cache (third-party wheels, per node platform and
    Python); the role adds the pimpi wheel it builds."""
    wheelhouse = work / "wheelhouse"
    wheelhouse.mkdir()
    for folder in CACHE.glob("cp*") if CACHE.is_dir() else []:
        shutil.copytree(folder, wheelhouse / folder.name, copy_function=_link)
    return wheelhouse


def _link(source: str, dest: str) -> None:
    Path(dest).hardlink_to(source)


def _keep_wheelhouse(wheelhouse: Path) -> None:
    """Put each platform's wheelhouse the run downloaded into the cache (built once, renamed into
    place whole)."""
    for folder in wheelhouse.glob("cp*"):
        if folder.is_dir() and any(folder.glob(".complete-*")):
            def copy(tmp: Path, source: Path = folder) -> str:
                shutil.copytree(source, tmp, dirs_exist_ok=True)
                return f"copied from {source}\n"

            built_once(CACHE / folder.name, copy)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A 2-node VM cluster seeded like Imager, brought down at the end whatever happened, also when
    pytest itself is killed."""
    work = tmp_path_factory.mktemp("vm-ansible")
    started = time.monotonic()
    pimpi("vcluster", "down", "--name", NAME, timeout=300)  # left by an interrupted run: ours, by name
    try:
        # Imager-Trixie nodes with the "passwordless sudo" box ticked: the sudo-password path
        # (-K) is proven on namespace nodes (tests/ansible/test_pi_quirks.py)
        up = pimpi("vcluster", "up", "--vm", "--imager", "--sudo", "nopasswd", "--nat", "--nodes", "2",
                   "--name", NAME, "--subnet", SUBNET, timeout=2400)
        assert up.returncode == 0, up.stdout + up.stderr
        down_when_gone(NAME)
        print(f"\n[vm-ansible] {up.stderr}")
        vc = Cluster(Path(f"/run/pimpi/vcluster-{NAME}"), _wheelhouse(work), work)
        vc.stage("boot", started)
        yield vc
        print("\n[vm-ansible] " + ", ".join(f"{k} {v:.0f} s" for k, v in vc.times.items())
              + f", module {time.monotonic() - started:.0f} s")
    finally:
        down = pimpi("vcluster", "down", "--name", NAME, timeout=300)
        assert down.returncode == 0, down.stdout + down.stderr


@pytest.fixture(scope="module")
def before(cluster) -> dict[str, str]:
    """Each node as first boot left it (what reset.yml must give back)."""
    return {n: r.stdout for n, r in cluster.everywhere(f"sha256sum {TEMPLATE}", nodes=cluster.booted).items()}


def test_first_boot_is_like_a_freshly_flashed_pi(cluster, before):
    started = time.monotonic()
    for node, out in cluster.everywhere(
            "hostname; cat /etc/hosts; id -nG pimpi; cat /home/pimpi/.ssh/authorized_keys", nodes=cluster.booted).items():
        assert out.returncode == 0, out.stderr
        assert out.stdout.splitlines()[0] == node
        # cloud-init rendered /etc/hosts from its stock template, with the line that makes mpirun hang
        assert "manage_etc_hosts" in out.stdout and f"127.0.1.1 {node} {node}" in out.stdout, out.stdout
        assert "sudo" in out.stdout and "ssh-ed25519 " in out.stdout
    assert all("127.0.1.1 {{fqdn}}" in
               cluster.nodes.run(n, f"cat {TEMPLATE}").stdout for n in cluster.booted)
    # Raspberry Pi OS keeps time with systemd-timesyncd (installing it removes chrony), is a Pi 4, and
    # does not mask the NFS server (the VM image does, to boot faster).
    made = cluster.everywhere(
        "systemctl unmask -q nfs-server.service rpcbind.service rpcbind.socket && apt-get update -qq && "
        "DEBIAN_FRONTEND=noninteractive apt-get install -y -qq systemd-timesyncd "
        f">/dev/null && printf 'Raspberry Pi 4 Model B Rev 1.4\\0' > {BOARD} && "
        "systemctl is-active systemd-timesyncd && echo CHRONY $(dpkg-query -W -f='${db:Status-Abbrev}' chrony)",
        timeout=1800, nodes=cluster.booted)
    assert all(r.returncode == 0 and "CHRONY ii" not in r.stdout for r in made.values()), {
        n: r.stdout + r.stderr for n, r in made.items()}
    cluster.stage("make them Pi OS-like", started)


def test_site_on_fresh_nodes_then_a_job_across_them_and_the_share_used(cluster):
    started = time.monotonic()
    first = cluster.playbook("site.yml")
    assert first.returncode == 0, first.stdout[-8000:]
    _keep_wheelhouse(cluster.wheelhouse)  # what the controller downloaded, for the next run
    assert set(recap(first.stdout)) - {"localhost"} == set(cluster.names)  # localhost: the controller's plays
    cluster.stage("site.yml first run", started)
    job = cluster.job()
    assert job.returncode == 0, job.stdout + job.stderr
    assert cluster.expected() in job.stdout, job.stdout
    # the share used: a worker writes through its automount, the file is the cluster user's on the head
    wrote = cluster.nodes.as_cluster_user(cluster.worker, f"echo from-worker > {SHARED}/from-{cluster.worker} && "
                                                          f"findmnt -n -o FSTYPE --target {SHARED}")
    assert wrote.returncode == 0 and wrote.stdout.split()[-1].startswith("nfs"), wrote.stdout + wrote.stderr
    seen = cluster.nodes.run(cluster.head, f"stat -c %U {SHARED}/from-{cluster.worker}")
    assert seen.stdout.strip() == "mpi", seen.stdout + seen.stderr


def test_every_node_rebooted_keeps_hosts_governor_firewall_share_and_time(cluster):
    started = time.monotonic()
    with ThreadPoolExecutor(len(cluster.names)) as pool:
        reboots = list(pool.map(lambda n: pimpi("vcluster", "reboot", "--name", NAME, n, timeout=1500),
                                cluster.names))
    assert all(r.returncode == 0 for r in reboots), [r.stdout + r.stderr for r in reboots]
    for node, out in cluster.everywhere(
            "cat /proc/uptime; cat /etc/hosts; echo GOVERNOR $(systemctl is-enabled " + GOVERNOR + ") "
            f"$(systemctl show -P Result {GOVERNOR}) $(systemctl show -P ActiveState {GOVERNOR}); "
            "echo CHRONY $(systemctl is-active chrony); nft list table inet pimpi >/dev/null && echo NFT ok").items():
        assert out.returncode == 0, out.stdout + out.stderr
        assert float(out.stdout.split()[0]) < 900, "the node did not reboot"
        assert "127.0.1.1" not in out.stdout, f"{node}: cloud-init put back 127.0.1.1:\n{out.stdout}"
        for other, info in cluster.nodes.hosts.items():
            assert f"{info['ansible_host']} {other}" in out.stdout, f"{node} lost {other}:\n{out.stdout}"
        assert "GOVERNOR enabled success active" in out.stdout, out.stdout
        assert "CHRONY active" in out.stdout and "NFT ok" in out.stdout, out.stdout
    share = cluster.nodes.as_cluster_user(cluster.worker, f"cat {SHARED}/from-{cluster.worker} && "
                                                          f"findmnt -n -o FSTYPE --target {SHARED}")
    assert share.returncode == 0 and share.stdout.split()[0] == "from-worker", share.stdout + share.stderr
    # after a reboot findmnt lists the automount point (autofs) and the NFS mount on it
    assert any(t.startswith("nfs") for t in share.stdout.split()[1:]), share.stdout
    verify = cluster.playbook("verify.yml", timeout=900)
    assert verify.returncode == 0 and "no problems found" in verify.stdout, verify.stdout[-8000:]
    job = cluster.job()
    assert job.returncode == 0 and cluster.expected() in job.stdout, job.stdout + job.stderr
    cluster.stage("reboot + verify + job", started)


def test_site_again_after_the_share_was_used_and_a_reboot_changes_nothing(cluster):
    started = time.monotonic()
    second = cluster.playbook("site.yml")
    assert second.returncode == 0, second.stdout[-8000:]
    counts = recap(second.stdout)
    assert all(counts[h] == (0, 0, 0) for h in cluster.names), f"{counts}\n{changed_lines(second.stdout)}"
    cluster.stage("site.yml second run", started)


def test_a_pimpi_change_without_a_new_version_reaches_every_node(cluster):
    """A fix pulled into the controller's tree (same version number): site.yml rebuilds the wheel and
    installs it on every node; doctor, run across the nodes, shows that build on every one."""
    started = time.monotonic()
    module = cluster.source / "pimpi" / "cluster" / "hostfile.py"
    module.write_text(module.read_text() + "\n# a fix, same version number\n")
    want = build_hash(cluster.source / "pimpi")
    again = cluster.playbook("site.yml")
    assert again.returncode == 0, again.stdout[-8000:]
    counts = recap(again.stdout)
    assert all(counts[h][0] > 0 for h in cluster.names), counts  # installed, so changed
    on = cluster.everywhere(f"tail -n 1 $({VENV}/bin/python -c 'import pimpi.cluster.hostfile as m; print(m.__file__)')")
    assert all(r.stdout.strip() == "# a fix, same version number" for r in on.values()), {
        n: r.stdout + r.stderr for n, r in on.items()}
    doctor = cluster.nodes.as_cluster_user(
        cluster.head, f"{VENV}/bin/pimpi run --hostfile {SHARED}/hostfile -n {len(cluster.names)} --timeout 300 "
                      f"-- doctor --json {SHARED}/doctor.json >/dev/null; cat {SHARED}/doctor.json", timeout=420)
    records = json.loads(doctor.stdout)["records"]
    assert {r["hostname"]: r["pimpi_build"] for r in records} == {n: want for n in cluster.names}, doctor.stdout
    cluster.stage("pimpi change reaches nodes", started)


def test_reset_gives_the_nodes_back_as_they_were(cluster, before):
    started = time.monotonic()
    reset = cluster.playbook("reset.yml", timeout=900)
    assert reset.returncode == 0, reset.stdout[-8000:]
    cluster.stage("reset.yml", started)
    for node, out in cluster.everywhere(
            f"sha256sum {TEMPLATE}; cat /etc/hosts; echo TIME $(systemctl is-active systemd-timesyncd) "
            "$(dpkg-query -W -f='${db:Status-Abbrev}' chrony | grep -q '^ii' && echo chrony || echo no-chrony); "
            f"id mpi || echo no-mpi; nft list table inet pimpi || echo no-nft; "
            f"test -e /etc/systemd/system/{GOVERNOR} || echo no-unit; grep -c {SHARED} /etc/fstab").items():
        assert out.stdout.startswith(before[node]), f"{node}: the hosts template differs:\n{out.stdout}"
        assert f"127.0.1.1 {node}" in out.stdout and "pimpi cluster nodes" not in out.stdout, out.stdout
        assert "TIME active no-chrony" in out.stdout, out.stdout
        assert all(w in out.stdout for w in ("no-mpi", "no-nft", "no-unit")), out.stdout
        assert out.stdout.split()[-1] == "0", f"{node}: the share is still in /etc/fstab"
