"""site.yml on nodes set up as Raspberry Pi Imager sets up Raspberry Pi OS, over real SSH on namespace nodes.

Each node gets what a flashed Pi has and a plain Debian lacks: a named user in the sudo group whose
sudo asks for a password (Imager's default), a board model file and a `vcgencmd` whose readings
change from call to call. Node 2 also holds a second address in the cluster subnet (a Pi on
Ethernet and Wi-Fi). The tests run in file order on one cluster:

- without the sudo password the first play stops, before any change, saying `-K`;
- with it, site.yml works; a second run changes nothing although vcgencmd reads differently;
- the cluster key and the firewall accept node 2's second address; mDNS (UDP 5353) gets through;
- a clock far behind (no real-time clock) stops the run before apt, saying how to set it;
- upgrade.yml's reboot decision sees a newer kernel installed without /run/reboot-required.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from pimpi.testing import down_when_gone
from pimpi.vcluster.backends.vm.seed import fake_vcgencmd
from tests.ansible.conftest import run_tool
from tests.ansible.nodes import Nodes, changed_lines, pimpi, quote, recap, up_test_cluster

pytestmark = [pytest.mark.root]
USER = "pi"
MODEL_FILE = "/etc/pimpi-test/device-tree-model"


class Cluster:
    """The test cluster: nodes over root SSH, the inventory arguments, the login user's password."""

    def __init__(self, state: Path, subnet: str, bridge: str, work: Path):
        inventory = yaml.safe_load((state / "inventory.yml").read_text())
        self.state, self.subnet, self.bridge, self.work = state, subnet, bridge, work
        self.nodes = Nodes(inventory)
        self.names = list(self.nodes.hosts)
        self.head, self.worker = self.names
        self.address = {n: self.nodes.hosts[n]["ansible_host"] for n in self.names}
        self.second = subnet.rsplit(".", 1)[0] + ".200"  # node 2's "Wi-Fi" address
        self.password = secrets.token_urlsafe(12)
        groups = {"all": {
            "vars": {"cluster_subnet": subnet, "cluster_shared_path": str(state / "shared"),
                     "cluster_hostfile": f"{state}/shared/ansible-hostfile", "shared_storage_method": "none",
                     "common_time_sync": False,  # chrony in a namespace would steer this machine's clock
                     "raspberrypi_model_file": MODEL_FILE,
                     "mpi_venv_wheelhouse": str(work / "wheelhouse")},
            "children": {
                "head": {"hosts": {self.head: {"cluster_address": self.address[self.head]}}},
                "workers": {"hosts": {self.worker: {"cluster_address": self.address[self.worker]}}},
            }}}
        (work / "groups.yml").write_text(yaml.safe_dump(groups))
        self.inv = ["-i", str(state / "inventory.yml"), "-i", str(work / "groups.yml")]

    def playbook(self, name: str, *args: str, timeout: float = 900, as_user: bool = True):
        user = ["-e", f"ansible_user={USER}"] if as_user else []
        return run_tool(["ansible-playbook", *self.inv, *user, *args, name], timeout=timeout)

    def become(self) -> list[str]:
        return ["-e", f"ansible_become_password={self.password}"]

    def run(self, node: str, command: str, timeout: float = 120):
        out = self.nodes.run(node, command, timeout=timeout)
        assert out.returncode == 0, f"{node}: {command}: {out.stdout}{out.stderr}"
        return out.stdout


def _imager_like(cluster: Cluster, node: str) -> None:
    """What Imager and Raspberry Pi OS give a node: the user (sudo with a password) and key, the
    board's model file and vcgencmd."""
    key = Path(cluster.nodes.base[2]).with_suffix(".pub").read_text().strip()
    model = "Raspberry Pi 4 Model B Rev 1.4"
    cluster.run(node, " && ".join([
        f"useradd -m -s /bin/bash -G sudo {USER}",
        f"echo {USER}:{cluster.password} | chpasswd",
        f"install -d -m 700 -o {USER} -g {USER} /home/{USER}/.ssh",
        f"echo {quote(key)} > /home/{USER}/.ssh/authorized_keys",
        f"chown {USER}:{USER} /home/{USER}/.ssh/authorized_keys",
        f"mkdir -p {os.path.dirname(MODEL_FILE)}",
        f"printf '{model}\\000' > {MODEL_FILE}",
        f"printf '%s' {quote(fake_vcgencmd())} > /usr/local/bin/vcgencmd",
        "chmod 755 /usr/local/bin/vcgencmd",
    ]))


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    if not (shutil.which("debootstrap") and shutil.which("ssh")):
        pytest.fail("these tests need debootstrap and ssh (make sysdeps installs them)")
    name, subnet = up_test_cluster("q", 2)
    down_when_gone(name)
    try:
        made = Cluster(Path(f"/run/pimpi/vcluster-{name}"), subnet, f"pimpi-{name}", tmp_path_factory.mktemp("pi"))
        for node in made.names:
            _imager_like(made, node)
        iface = made.run(made.worker, f"ip -o -4 addr show | awk '$4 ~ /^{made.address[made.worker]}\\//"
                                      " {{print $2}}'").strip()
        made.run(made.worker, f"ip addr add {made.second}/{subnet.split('/')[1]} dev {iface}")
        yield made
    finally:
        down = pimpi("vcluster", "down", "--name", name)
        assert down.returncode == 0, down.stdout + down.stderr


@pytest.mark.timeout(600)
def test_first_play_stops_at_once_saying_ask_become_pass_when_sudo_wants_a_password(cluster):
    out = cluster.playbook("playbooks/site.yml", timeout=300)
    assert out.returncode != 0, out.stdout[-3000:]
    assert "-K (--ask-become-pass)" in out.stdout and "passwordless sudo" in out.stdout, out.stdout[-3000:]
    assert "Prepare every node" not in out.stdout, "no later play may start"
    assert all(c == 0 for c, _u, _f in recap(out.stdout).values()), out.stdout[-3000:]


@pytest.mark.timeout(3600)  # a site.yml took 20 min and its second run over 10 at a load of 50
def test_site_as_the_imager_user_then_again_changes_nothing_while_vcgencmd_reads_differently(cluster):
    first = cluster.playbook("playbooks/site.yml", *cluster.become(), timeout=1800)
    assert first.returncode == 0, first.stdout[-6000:]
    before = cluster.run(cluster.head, "vcgencmd get_throttled").strip()
    second = cluster.playbook("playbooks/site.yml", *cluster.become(), timeout=1500)
    assert second.returncode == 0, second.stdout[-6000:]
    after = cluster.run(cluster.head, "vcgencmd get_throttled").strip()
    assert before != after, "the stand-in must read differently from call to call"
    assert all(r == (0, 0, 0) for r in recap(second.stdout).values()), (
        f"second run changed something: {recap(second.stdout)}\n" + changed_lines(second.stdout))
    fact = cluster.run(cluster.head, "cat /etc/ansible/facts.d/pimpi_raspberrypi.fact")
    assert "Raspberry Pi 4" in fact and "throttled" not in fact, fact


@pytest.mark.timeout(600)
def test_second_address_of_a_node_passes_the_key_from_and_the_firewall(cluster):
    head, worker = cluster.address[cluster.head], cluster.address[cluster.worker]
    keys = cluster.run(cluster.head, "cat /home/mpi/.ssh/authorized_keys")
    assert f'from="{head},{worker},{cluster.second}"' in keys, keys
    ssh = (f"runuser -u mpi -- ssh -b {cluster.second} -o BatchMode=yes -o ConnectTimeout=10 {head} "
           "hostname")
    assert cluster.run(cluster.worker, ssh).strip() == cluster.head
    server = cluster.run(cluster.head, f"nohup python3 -m http.server 8765 --bind {head} >/dev/null 2>&1 & echo $!")
    try:
        probe = (f"python3 -c 'import socket; socket.create_connection((\"{head}\", 8765), timeout=3, "
                 f"source_address=(\"{cluster.second}\", 0))'")
        deadline = time.monotonic() + 20
        while cluster.nodes.run(cluster.worker, probe).returncode != 0 and time.monotonic() < deadline:
            time.sleep(0.3)
        assert cluster.nodes.run(cluster.worker, probe).returncode == 0, "from the node's second address"
    finally:
        cluster.nodes.run(cluster.head, f"kill {server.strip()}")


@pytest.mark.timeout(300)
def test_mdns_reaches_a_node_from_a_stranger_in_the_subnet(cluster):
    head = cluster.address[cluster.head]
    stranger = cluster.subnet.rsplit(".", 1)[0] + ".250"  # a laptop asking for pi1.local: no node
    added = subprocess.run(["ip", "addr", "add", f"{stranger}/32", "dev", cluster.bridge], capture_output=True,
                           text=True, timeout=30, check=False)
    assert added.returncode == 0, added.stderr
    listen = ("import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); "
              "s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind((\"\", 5353)); s.settimeout(20); "
              "open(\"/tmp/mdns-got\", \"wb\").write(s.recvfrom(100)[0])")
    cluster.run(cluster.head, f"rm -f /tmp/mdns-got; nohup python3 -c {quote(listen)} >/dev/null 2>&1 &")
    got = ""
    deadline = time.monotonic() + 20
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((stranger, 0))
        while not got and time.monotonic() < deadline:
            sock.sendto(b"pimpi-mdns-probe", (head, 5353))
            time.sleep(0.5)
            got = cluster.nodes.run(cluster.head, "cat /tmp/mdns-got 2>/dev/null").stdout
    assert got == "pimpi-mdns-probe", "UDP 5353 from a non-node address was dropped"


@pytest.mark.timeout(600)
def test_a_clock_far_behind_stops_the_run_before_apt_saying_how_to_set_it(cluster):
    year_ago = ("#!/bin/sh\n# a node whose clock is a year behind (no real-time clock, no NTP yet)\n"
                'if [ "$1" = "+%s" ]; then echo $(( $(/usr/bin/date +%s) - 31536000 )); '
                'else exec /usr/bin/date "$@"; fi\n')
    cluster.run(cluster.worker, f"printf '%s' {quote(year_ago)} > /usr/local/bin/date && chmod 755 /usr/local/bin/date")
    try:
        out = cluster.playbook("playbooks/site.yml", *cluster.become(), "-e", "cluster_clock_wait_s=10",
                               timeout=300)
    finally:
        cluster.run(cluster.worker, "rm -f /usr/local/bin/date")
    assert out.returncode != 0, out.stdout[-3000:]
    assert f"{cluster.worker}: its clock is -315360" in out.stdout and "sudo date -s @" in out.stdout, (
        out.stdout[-3000:])
    assert "Prepare every node" not in out.stdout, "nothing may be installed with a wrong clock"


@pytest.mark.timeout(300)
def test_reboot_is_decided_from_a_newer_kernel_without_reboot_required(cluster):
    running = cluster.run(cluster.worker, "uname -r").strip()
    flavour = next((running.split("-", i)[i] for i, part in enumerate(running.split("-")) if i and part[:1].isalpha()),
                   "")
    modules = "/tmp/pimpi-modules"

    def decide(*installed: str) -> str:
        made = " && ".join(f"mkdir -p {modules}/{k} && touch {modules}/{k}/modules.order" for k in installed)
        cluster.run(cluster.worker, f"rm -rf {modules} && mkdir -p {modules} {('&& ' + made) if made else ''}")
        out = cluster.playbook(str(Path(__file__).parent / "reboot_needed.yml"), "--limit", cluster.worker,
                               *cluster.become(), "-e", f"cluster_modules_dir={modules}", timeout=200)
        assert out.returncode == 0, out.stdout[-3000:]
        return out.stdout

    assert "REBOOT False" in decide(running, f"99.0.0-1-other{flavour}")
    newer = decide(running, f"99.0.0-1-{flavour}")
    assert "REBOOT True" in newer and f"kernel 99.0.0-1-{flavour} is installed" in newer, newer[-2000:]
