"""A VM node's first-boot seed: cloud-init NoCloud files, as Raspberry Pi Imager writes them.

Imager turns its settings (hostname, user, SSH key) into cloud-init user-data with
``manage_etc_hosts: true``; a pimpi VM node gets the same on a small ISO labelled
``cidata``. cloud-init re-renders /etc/hosts from its template at every boot, so the
cluster's block goes into the template (and ``127.0.1.1 <hostname>``, which makes mpirun
hang, never appears). The address is static, from the kernel command line (see qemu.py);
cloud-init's own network config is disabled in the image.
"""

from __future__ import annotations

import json
import shlex
import tempfile
from pathlib import Path

from pimpi.vcluster.etc_hosts import node_hosts
from pimpi.vcluster.spec import Node, Spec
from pimpi.vcluster.sysrun import run
from pimpi.fileio import atomic_write

__all__ = ["USER", "Share", "user_data", "meta_data", "write_seed"]

USER = "pimpi"  # the user Imager would create; root takes the same key (inventory, mpirun)


class Share:
    """A host folder seen at the same path in every node (virtio 9p)."""

    def __init__(self, tag: str, path: str, writable: bool):
        self.tag, self.path, self.writable = tag, path, writable

    def mount_command(self) -> list[str]:
        """Mount it unless it is mounted (cloud-init bootcmd: at every boot, before sshd starts)."""
        opts = "trans=virtio,version=9p2000.L,msize=262144" + ("" if self.writable else ",ro")
        path = shlex.quote(self.path)
        return ["sh", "-c", f"mkdir -p {path} && {{ mountpoint -q {path} || "
                            f"mount -t 9p -o {opts} {self.tag} {path}; }}"]


def _file(path: str, content: str, mode: str = "0644", append: bool = False) -> dict:
    entry = {"path": path, "content": content, "permissions": mode, "owner": "root:root"}
    if append:
        entry["append"] = True
    return entry


def user_data(spec: Spec, node: Node, public_key: str, private_key: str, host_key: tuple[str, str],
              known_hosts: str, env: dict[str, str], path_dirs: list[str], shares: list[Share]) -> str:
    """The node's #cloud-config (JSON, which is YAML): hostname, user and key like Imager,
    plus what makes it a cluster node: root's key pair and known_hosts (mpirun over ssh),
    the MPI environment for ssh sessions, and the shared folders (mounted at every boot)."""
    path = ":".join(path_dirs + ["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"])
    setenv = " ".join(f'"{k}={v}"' for k, v in sorted({**env, "PATH": path}.items()))
    sshd = "\n".join([
        "# written by pimpi vcluster: key-only logins; ssh sessions get the cluster's MPI settings",
        "PermitRootLogin prohibit-password",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        f"SetEnv {setenv}",
        "",
    ])
    config = {
        "hostname": node.hostname,
        "manage_etc_hosts": True,
        "disable_root": False,
        "users": [{"name": USER, "gecos": "pimpi", "groups": ["sudo"], "shell": "/bin/bash",
                   "sudo": "ALL=(ALL) NOPASSWD:ALL", "lock_passwd": True,
                   "ssh_authorized_keys": [public_key.strip()]}],
        "ssh_authorized_keys": [public_key.strip()],
        "ssh_deletekeys": True,
        "ssh_genkeytypes": ["ed25519"],  # given below, so none is generated (schema: not empty)
        "ssh_keys": {"ed25519_private": host_key[0], "ed25519_public": host_key[1].strip()},
        "write_files": [
            _file("/root/.ssh/id_ed25519", private_key, "0600"),
            _file("/root/.ssh/id_ed25519.pub", public_key),
            _file("/root/.ssh/known_hosts", known_hosts),
            _file("/etc/ssh/sshd_config.d/pimpi.conf", sshd),
            _file("/etc/environment", f'PATH="{path}"\n'),
        ],
        "bootcmd": [s.mount_command() for s in shares],
    }
    if not spec.imager:  # Imager leaves cloud-init's template alone (127.0.1.1 <hostname> included)
        config["write_files"].insert(0, _file("/etc/cloud/templates/hosts.debian.tmpl",
                                              "## template:jinja\n" + node_hosts(spec)))
    return "#cloud-config\n" + json.dumps(config, indent=1) + "\n"


def meta_data(node: Node, instance: str) -> str:
    """NoCloud meta-data: the instance id (the same across reboots: first boot runs once)."""
    return f"instance-id: {instance}\nlocal-hostname: {node.hostname}\n"


def write_seed(iso: Path, user: str, meta: str) -> None:
    """The seed ISO (volume label cidata) cloud-init's NoCloud source looks for."""
    with tempfile.TemporaryDirectory(prefix="pimpi-seed-") as tmp:
        folder = Path(tmp)
        atomic_write(folder / "user-data", user, mode=0o600)
        atomic_write(folder / "meta-data", meta, mode=0o600)
        run(["genisoimage", "-quiet", "-output", str(iso), "-volid", "cidata", "-joliet", "-rock",
             str(folder / "user-data"), str(folder / "meta-data")], timeout=60)
