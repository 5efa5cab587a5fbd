"""The virtual network: a bridge, one veth pair per node, addresses, tc shaping, link faults, NAT."""

from __future__ import annotations

import ipaddress
import json

from pimpi.cluster.profiles import PROFILES
from pimpi.vcluster.spec import Node, Spec
from pimpi.vcluster.sysrun import VclusterError, run, try_run

__all__ = ["check_subnet_free", "add_bridge", "add_node_link", "profile_shape", "shape", "set_link",
           "link_state", "add_nat", "remove_nat", "nat_rules", "delete_link", "delete_netns",
           "netns_exists", "link_exists"]


def check_subnet_free(spec: Spec) -> None:
    """Refuse a subnet that overlaps an address or route this machine already uses."""
    net = spec.network
    for line in json.loads(run(["ip", "-j", "-4", "route", "show", "table", "all"]) or "[]"):
        dst = line.get("dst", "")
        if dst in ("", "default"):
            continue
        try:
            other = ipaddress.ip_network(dst if "/" in dst else dst + "/32", strict=False)
        except ValueError:
            continue
        if other.version == 4 and other.overlaps(net) and other.prefixlen > 0:
            raise VclusterError(f"subnet {net} overlaps route {dst} on {line.get('dev', '?')}: "
                                "choose another --subnet")


def netns_exists(name: str) -> bool:
    out = run(["ip", "-j", "netns", "list"]) or "[]"
    return any(item.get("name") == name for item in json.loads(out))


def link_exists(name: str) -> bool:
    return try_run(["ip", "link", "show", "dev", name])


def add_bridge(spec: Spec) -> None:
    """The cluster's switch, with this machine's address (NAME0) on it."""
    run(["ip", "link", "add", spec.bridge, "type", "bridge"])
    run(["ip", "addr", "add", f"{spec.head_address}/{spec.network.prefixlen}", "dev", spec.bridge])
    run(["ip", "link", "set", spec.bridge, "up"])


def add_node_link(spec: Spec, node: Node) -> None:
    """Namespace already exists: veth pair, eth0 inside with the node's address, lo up."""
    run(["ip", "link", "add", node.host_if, "type", "veth", "peer", "name", "eth0", "netns", node.netns])
    run(["ip", "link", "set", node.host_if, "master", spec.bridge, "up"])
    inside = ["ip", "-n", node.netns]
    run(inside + ["link", "set", "lo", "up"])
    run(inside + ["addr", "add", f"{node.address}/{spec.network.prefixlen}", "dev", "eth0"])
    run(inside + ["link", "set", "eth0", "up"])
    if spec.nat:
        run(inside + ["route", "add", "default", "via", spec.head_address])


def profile_shape(spec: Spec) -> tuple[float | None, float | None]:
    """(delay each way in seconds, rate in bit/s) of the spec's board profile; None: not shaped."""
    prof = PROFILES[spec.profile]
    latency = prof["latency_s"]
    return (None if latency is None else latency / 2), prof["bandwidth_bps"]


def shape(node: Node, delay_s: float | None, bandwidth_bps: float | None, need_delay: bool = True) -> bool:
    """netem delay + tbf rate on the node's link, in both directions (each direction waits
    DELAY_S once). None for both removes the shaping (an unshaped LAN).

    Returns False when the delay could not be applied because this kernel has no netem
    (CONFIG_NET_SCH_NETEM; some VM kernels lack it) and NEED_DELAY is False; with NEED_DELAY
    that raises VclusterError instead. The rate (tbf) is applied either way."""
    delayed = True
    for prefix, dev in ((["tc"], node.host_if), (["tc", "-n", node.netns], "eth0")):
        try_run(prefix + ["qdisc", "del", "dev", dev, "root"])
        parent = ["root"]
        if delay_s:
            try:
                run(prefix + ["qdisc", "add", "dev", dev, "root", "handle", "1:", "netem",
                              "delay", f"{max(1, round(delay_s * 1e6))}us", "limit", "10000"])
                parent = ["parent", "1:1"]
            except VclusterError as exc:
                if "unknown" not in str(exc).lower():
                    raise
                if need_delay:
                    raise VclusterError("this kernel has no netem qdisc (CONFIG_NET_SCH_NETEM), so no "
                                        "delay can be added; `slow --rate` still works") from None
                delayed = False
        if bandwidth_bps:
            burst = max(int(bandwidth_bps / 8 / 1000), 131072)  # 1 ms of data, >= two TSO packets: a
            # longer burst lets messages up to ~2 MiB through at twice the profile rate
            run(prefix + ["qdisc", "add", "dev", dev, *parent, "handle", "10:", "tbf",
                          "rate", f"{int(bandwidth_bps)}bit", "burst", str(burst), "latency", "50ms"])
    return delayed


def set_link(node: Node, up: bool) -> None:
    """Pull or plug the node's cable (the bridge side of its veth)."""
    run(["ip", "link", "set", node.host_if, "up" if up else "down"])


def link_state(node: Node) -> str:
    """'up', 'down' or 'missing'."""
    try:
        info = json.loads(run(["ip", "-j", "link", "show", "dev", node.host_if]))[0]
    except (VclusterError, ValueError, IndexError):
        return "missing"
    return "up" if "UP" in info.get("flags", []) else "down"


def delete_link(name: str) -> None:
    """Delete a link if it is there (a veth also goes when its peer's namespace goes)."""
    try:
        run(["ip", "link", "del", name])
    except VclusterError:
        if link_exists(name):
            raise


def delete_netns(name: str) -> None:
    try:
        run(["ip", "netns", "del", name])
    except VclusterError:
        if netns_exists(name):
            raise


def nat_rules(spec: Spec) -> list[list[str]]:
    """The iptables rules --nat adds (each tagged with a pimpi comment), table first."""
    tag = ["-m", "comment", "--comment", f"pimpi-vcluster-{spec.name}"]
    return [
        ["-t", "nat", "POSTROUTING", "-s", spec.subnet, "!", "-o", spec.bridge, "-j", "MASQUERADE", *tag],
        ["-t", "filter", "FORWARD", "-i", spec.bridge, "-j", "ACCEPT", *tag],
        ["-t", "filter", "FORWARD", "-o", spec.bridge, "-m", "conntrack", "--ctstate",
         "RELATED,ESTABLISHED", "-j", "ACCEPT", *tag],
    ]


def add_nat(rule: list[str]) -> None:
    run(["iptables", rule[0], rule[1], "-I", rule[2], *rule[3:]])


def remove_nat(rule: list[str]) -> None:
    try_run(["iptables", rule[0], rule[1], "-D", rule[2], *rule[3:]])
