"""A VM node's first-boot seed: cloud-init NoCloud files, as Raspberry Pi Imager writes them.

Imager turns its settings (hostname, user, SSH key) into cloud-init user-data with
``manage_etc_hosts: true``; a pimpi VM node gets the same on a small ISO labelled
``cidata``. cloud-init re-renders /etc/hosts from its template at every boot, so the
cluster's block goes into the template (and ``127.0.1.1 <hostname>``, which makes mpirun
hang, never appears). The address is static, from the kernel command line (see qemu.py);
cloud-init's own network config is disabled in the image.
"""

from __future__ import annotations

import base64
import json
import shlex
import tempfile
from pathlib import Path

from pimpi.vcluster.etc_hosts import node_hosts
from pimpi.vcluster.spec import Node, Spec
from pimpi.vcluster.sysrun import run
from pimpi.fileio import atomic_write

__all__ = ["USER", "MODEL_FILE", "MODEL", "Share", "user_data", "meta_data", "write_seed", "imager_part",
           "fake_vcgencmd"]

USER = "pimpi"  # the user Imager would create; root takes the same key (inventory, mpirun)
MODEL_FILE = "/etc/pimpi-vcluster/device-tree-model"  # a VM has no /proc/device-tree: the board's name here
MODEL = "Raspberry Pi 4 Model B Rev 1.4\0"  # as the kernel gives it, NUL-terminated


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


def fake_vcgencmd() -> str:
    """A stand-in for Raspberry Pi OS's vcgencmd whose readings change from call to call, as a
    real Pi's do (since-boot throttling bits come and go with reboots; the temperature wanders)."""
    return "\n".join([
        "#!/bin/sh",
        "# pimpi vcluster: a stand-in for vcgencmd; each call reads differently, like a real Pi",
        "state=${PIMPI_VCGENCMD_STATE:-/run/pimpi-vcgencmd}",
        "[ -w \"$(dirname \"$state\")\" ] || state=/tmp/pimpi-vcgencmd-$(id -u)",
        "n=$(cat \"$state\" 2>/dev/null || echo 0); n=$((n + 1)); echo \"$n\" > \"$state\"",
        "case \"$1\" in",
        "  get_throttled) set -- 0x0 0x50000 0x50005 0x80008; shift $((n % 4)); echo \"throttled=$1\" ;;",
        "  measure_temp) echo \"temp=$((45 + n % 13)).$((n % 10))'C\" ;;",
        "  *) echo \"vcgencmd (pimpi vcluster stand-in): get_throttled or measure_temp\" >&2; exit 1 ;;",
        "esac",
        "",
    ])


def imager_part(spec: Spec, public_key: str, password_hash: str) -> dict:
    """What Raspberry Pi Imager (its cloud-init generator) writes for a hostname, a user with a
    password and a key, and SSH by key only: `user:` (merged over the distro's default user, so
    the user keeps its groups, sudo among them) with `sudo: null` unless "passwordless sudo" is
    ticked, avahi-daemon, no apt date check on first boot. Plus what the board has: vcgencmd and
    its model name."""
    model = base64.b64encode(MODEL.encode()).decode()
    return {
        "manage_resolv_conf": False,
        "packages": ["avahi-daemon"],  # already in the image, as in Raspberry Pi OS Lite
        "apt": {"preserve_sources_list": True, "conf": 'Acquire {\n  Check-Date "false";\n};\n'},
        "user": {"name": USER, "shell": "/bin/bash", "lock_passwd": False, "passwd": password_hash,
                 "ssh_authorized_keys": [public_key.strip()],
                 "sudo": "ALL=(ALL) NOPASSWD:ALL" if spec.sudo == "nopasswd" else None},
        "ssh_pwauth": False,
        "extra_files": [_file("/usr/bin/vcgencmd", fake_vcgencmd(), "0755"),
                        {**_file(MODEL_FILE, model), "encoding": "b64"}],
    }


def user_data(spec: Spec, node: Node, public_key: str, private_key: str, host_key: tuple[str, str],
              known_hosts: str, env: dict[str, str], path_dirs: list[str], shares: list[Share],
              password_hash: str = "") -> str:
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
    if spec.imager:  # the named user is Imager's; root keeps the key as vcluster's own console
        part = imager_part(spec, public_key, password_hash)
        config["write_files"] += part.pop("extra_files")
        del config["users"]
        config.update(part)
    else:  # Imager leaves cloud-init's template alone (127.0.1.1 <hostname> included)
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
