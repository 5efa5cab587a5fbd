"""What a virtual cluster is: its name, subnet, nodes and the names of everything it creates.

Every kernel object carries the ``pimpi-`` prefix: bridge ``pimpi-NAME``, host-side
veths ``pimpi-NAME-I``, namespaces ``pimpi-NAME-HOST``. Node hostnames are NAME1..NAMEn
(like pi1, pi2 on a real cluster); the machine itself is NAME0 at the subnet's first address.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import asdict, dataclass

from pimpi.cluster.profiles import PROFILES

__all__ = ["Node", "Spec", "make_spec", "spec_from_dict", "DEFAULT_NAME", "DEFAULT_SUBNET", "MAX_NODES",
           "KINDS", "ARCHES", "SUITES", "SUDO"]

DEFAULT_NAME = "pimpi"
DEFAULT_SUBNET = "10.77.0.0/24"
MAX_NODES = 64
KINDS = ("netns", "vm")
ARCHES = ("amd64", "arm64")
SUITES = ("trixie", "bookworm")  # VM nodes' Debian: Raspberry Pi OS Trixie's base, and Bookworm's
SUDO = ("password", "nopasswd")  # Imager's "passwordless sudo" box: unticked (its default), ticked
_NAME = re.compile(r"^[a-z](?:[a-z0-9-]{0,4}[a-z])?$")  # <= 6: interface names stay <= 15 chars


@dataclass(frozen=True)
class Node:
    """One virtual host."""

    index: int
    hostname: str
    address: str
    netns: str
    host_if: str


@dataclass(frozen=True)
class Spec:
    """A validated cluster request (everything `up` needs, nothing it creates)."""

    name: str = DEFAULT_NAME
    nodes: int = 3
    subnet: str = DEFAULT_SUBNET
    profile: str = "lan"
    rootfs: bool = False
    nat: bool = False
    slots: int = 1
    kind: str = "netns"
    arch: str = "amd64"
    imager: bool = False  # VM nodes: seeded exactly as Raspberry Pi Imager does (stock hosts template)
    suite: str = ""  # VM nodes' Debian release ("": this machine's; --imager: trixie)
    sudo: str = ""  # --imager: does the named user's sudo ask for a password (Imager's default: yes)

    @property
    def ssh(self) -> bool:
        """Nodes are reached with real SSH (--rootfs and VM nodes), not the nsenter agent."""
        return self.rootfs or self.kind == "vm"

    def node_arch(self, node: Node) -> str:
        """The Debian architecture of NODE (VM nodes; --arch may list one per node)."""
        arches = self.arch.split(",")
        return arches[0] if len(arches) == 1 else arches[node.index - 1]

    @property
    def network(self) -> ipaddress.IPv4Network:
        return ipaddress.IPv4Network(self.subnet)

    @property
    def bridge(self) -> str:
        return f"pimpi-{self.name}"

    @property
    def head_address(self) -> str:
        """The machine's own address on the bridge (NAME0)."""
        return str(self.network.network_address + 1)

    @property
    def head_name(self) -> str:
        return f"{self.name}0"

    def node_list(self) -> list[Node]:
        base = self.network.network_address
        return [
            Node(i, f"{self.name}{i}", str(base + 1 + i), f"pimpi-{self.name}-{self.name}{i}",
                 f"pimpi-{self.name}-{i}")
            for i in range(1, self.nodes + 1)
        ]

    def find(self, ref: str) -> Node:
        """A node by hostname, 'nodeI', index I or address (ValueError otherwise)."""
        for node in self.node_list():
            if ref in (node.hostname, f"node{node.index}", str(node.index), node.address):
                return node
        names = ", ".join(n.hostname for n in self.node_list())
        raise ValueError(f"no node {ref!r} in cluster {self.name!r} (nodes: {names})")

    def to_dict(self) -> dict:
        return asdict(self)


def make_spec(name: str = DEFAULT_NAME, nodes: int = 3, subnet: str = DEFAULT_SUBNET,
              profile: str = "lan", rootfs: bool = False, nat: bool = False, slots: int = 1,
              kind: str = "netns", arch: str = "amd64", imager: bool = False, suite: str = "",
              sudo: str = "") -> Spec:
    """Validate a request; ValueError names the bad value."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(
            f"cluster name {name!r}: 1-6 characters, lowercase letters, digits and '-', "
            "starting and ending with a letter")
    if not isinstance(nodes, int) or nodes < 1:
        raise ValueError(f"--nodes must be at least 1, got {nodes!r}")
    if nodes > MAX_NODES:
        raise ValueError(f"--nodes {nodes}: at most {MAX_NODES} virtual nodes")
    if not isinstance(slots, int) or slots < 1:
        raise ValueError(f"--slots must be at least 1, got {slots!r}")
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; choose one of {', '.join(PROFILES)}")
    try:
        net = ipaddress.ip_network(subnet, strict=True)
    except ValueError as exc:
        raise ValueError(f"bad subnet {subnet!r}: {exc}") from None
    if net.version != 4:
        raise ValueError(f"subnet {subnet!r}: only IPv4 subnets are supported")
    if not (net.is_private and not net.is_loopback and not net.is_link_local):
        raise ValueError(f"subnet {subnet!r} is not a private range (use e.g. 10.77.0.0/24)")
    usable = net.num_addresses - 2
    if usable < nodes + 1:
        raise ValueError(
            f"subnet {subnet} has {max(usable, 0)} host addresses; {nodes} nodes need {nodes + 1} "
            "(one for this machine)")
    if kind not in KINDS:
        raise ValueError(f"unknown node kind {kind!r}; choose one of {', '.join(KINDS)}")
    if kind == "vm" and rootfs:
        raise ValueError("--rootfs is for namespace nodes; VM nodes always have their own Debian")
    arches = arch.split(",") if isinstance(arch, str) else [repr(arch)]
    for one in arches:
        if one not in ARCHES:
            raise ValueError(f"unknown --arch {one!r}; choose {' or '.join(ARCHES)} (or one per node, "
                             "comma separated)")
    if len(arches) not in (1, nodes):
        raise ValueError(f"--arch {arch!r} names {len(arches)} architectures for {nodes} nodes: give one, "
                         "or one per node")
    if kind != "vm" and arches != ["amd64"]:
        raise ValueError(f"--arch {arch!r} needs VM nodes (--vm): namespace nodes share this machine's CPU")
    if imager and kind != "vm":
        raise ValueError("--imager is for VM nodes (--vm): only they boot through cloud-init")
    if suite and (kind != "vm" or suite not in SUITES):
        raise ValueError(f"--suite {suite!r}: VM nodes (--vm) only, one of {', '.join(SUITES)}")
    if sudo and (not imager or sudo not in SUDO):
        raise ValueError(f"--sudo {sudo!r}: --imager nodes only, one of {', '.join(SUDO)}")
    if imager:
        suite, sudo = suite or SUITES[0], sudo or SUDO[0]
    return Spec(name, nodes, str(net), profile, bool(rootfs), bool(nat), slots, kind, arch, bool(imager),
                suite, sudo)


def spec_from_dict(data: dict) -> Spec:
    """The Spec recorded in a state file."""
    return make_spec(**{k: data[k] for k in Spec.__dataclass_fields__ if k in data})
