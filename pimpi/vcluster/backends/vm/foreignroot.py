"""A Debian root for another CPU (arm64 on x86_64) made without emulating it.

debootstrap's second stage runs every package's maintainer scripts, which on a foreign
architecture means under qemu-user: measured 42 minutes for the VM package set. Here the
first stage (download + unpack of the essential packages, native) is followed by unpacking
every downloaded package natively and doing, by hand, the few things the node needs from
the maintainer scripts: users and groups, a /bin/sh, enabled systemd units, the kernel's
module index. The rest (dpkg's database, triggers, byte-compiling) is skipped: the node
boots and runs Python, sshd and cloud-init, but apt inside it does not know what is
installed. Its initrd is built by `initrd.py`, also natively.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

from pimpi.vcluster.sysrun import VclusterError, run

__all__ = ["unpack_all", "configure", "enable_units", "mask_units", "module_index"]

# system users the skipped postinst scripts would have made (systemd's own come from sysusers.d at boot)
_USERS = [("sshd", 101, 65534, "/run/sshd"), ("_chrony", 102, 103, "/var/lib/chrony"),
          ("messagebus", 103, 104, "/nonexistent")]
_GROUPS = [("_chrony", 103), ("messagebus", 104), ("_ssh", 105)]
_ALTERNATIVES = {"usr/bin/awk": "/usr/bin/mawk"}
_CONFIGS = {"etc/ssh/sshd_config": "usr/share/openssh/sshd_config",
            "etc/chrony/chrony.conf": "usr/share/chrony/chrony.conf",
            "etc/chrony/chrony.keys": "usr/share/chrony/chrony.keys"}

# what libpam-runtime's postinst (pam-auth-update, with the one profile installed: unix) writes;
# without them every PAM service fails, and sshd closes each connection once the key is accepted
_PAM = {
    "auth": "auth\t[success=1 default=ignore]\tpam_unix.so nullok\n",
    "account": "account\t[success=1 new_authtok_reqd=done default=ignore]\tpam_unix.so\n",
    "password": "password\t[success=1 default=ignore]\tpam_unix.so obscure yescrypt\n",
    "session": "session\t[default=1]\tpam_permit.so\n",
}


def _pam_common(kind: str) -> str:
    tail = f"{kind}\trequisite\tpam_deny.so\n{kind}\trequired\tpam_permit.so\n"
    session = "session\trequired\tpam_unix.so\n" if kind == "session" else ""
    return "# written by pimpi as pam-auth-update would (profile: unix)\n" + _PAM[kind] + tail + session


def unpack_all(root: Path, log_path: Path) -> int:
    """Unpack every package debootstrap's first stage downloaded (no scripts run); how many."""
    debs = sorted((root / "var/cache/apt/archives").glob("*.deb"))
    if not debs:
        raise VclusterError(f"no packages in {root}/var/cache/apt/archives: did debootstrap --foreign run?")
    with open(log_path, "ab") as log:
        for deb in debs:
            tarball = subprocess.Popen(["dpkg-deb", "--fsys-tarfile", str(deb)], stdout=subprocess.PIPE,
                                       stderr=log)
            untar = subprocess.run(["tar", "-x", "--keep-directory-symlink", "-C", str(root)],
                                   stdin=tarball.stdout, stderr=log, timeout=600, check=False)
            assert tarball.stdout is not None
            tarball.stdout.close()
            if tarball.wait(timeout=60) != 0 or untar.returncode != 0:
                raise VclusterError(f"cannot unpack {deb.name} (log: {log_path})")
    return len(debs)


def _put(path: Path, text: str, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    os.chmod(path, mode)


def configure(root: Path) -> None:
    """Users, groups, /bin/sh and alternatives, as the skipped scripts would have left them."""
    proc = root / "proc"
    if proc.is_symlink():  # debootstrap --foreign leaves a link to the host's /proc
        proc.unlink()
        proc.mkdir(mode=0o555)
    base = root / "usr/share/base-passwd"
    passwd = (base / "passwd.master").read_text()
    group = (base / "group.master").read_text()
    passwd += "".join(f"{name}:x:{uid}:{gid}::{home}:/usr/sbin/nologin\n" for name, uid, gid, home in _USERS)
    group += "".join(f"{name}:x:{gid}:\n" for name, gid in _GROUPS)
    _put(root / "etc/passwd", passwd)
    _put(root / "etc/group", group)
    names = [line.split(":")[0] for line in passwd.splitlines() if line]
    groups = [line.split(":")[0] for line in group.splitlines() if line]
    _put(root / "etc/shadow", "".join(f"{n}:*:19000:0:99999:7:::\n" for n in names), 0o640)
    _put(root / "etc/gshadow", "".join(f"{g}:*::\n" for g in groups), 0o640)
    for link, target in {"usr/bin/sh": "dash", **_ALTERNATIVES}.items():
        path = root / link
        if not path.exists():
            path.symlink_to(target)
    (root / "etc/.pwd.lock").touch()
    for kind in ("auth", "account", "password", "session"):
        _put(root / f"etc/pam.d/common-{kind}", _pam_common(kind))
    _put(root / "etc/pam.d/common-session-noninteractive", _pam_common("session"))
    for config, template in _CONFIGS.items():  # files postinst scripts copy from a template
        if not (root / config).exists() and (root / template).exists():
            _put(root / config, (root / template).read_text())


def enable_units(root: Path, units: list[str]) -> None:
    """`systemctl enable` without systemctl: the [Install] section's WantedBy/RequiredBy
    links and Alias names, read from the unit files."""
    unit_dir = root / "lib/systemd/system"
    etc = root / "etc/systemd/system"
    for unit in units:
        path = unit_dir / unit
        if not path.is_file():
            raise VclusterError(f"no unit {unit} in {unit_dir}")
        text = path.read_text()
        install = text.split("[Install]", 1)[1] if "[Install]" in text else ""
        for key, value in re.findall(r"^(WantedBy|RequiredBy|Alias)=(.*)$", install, re.M):
            for target in value.split():
                link = etc / target if key == "Alias" else etc / f"{target}.{'wants' if key == 'WantedBy' else 'requires'}" / unit
                link.parent.mkdir(parents=True, exist_ok=True)
                if not link.is_symlink():
                    link.symlink_to(f"/lib/systemd/system/{unit}")


def mask_units(root: Path, units: list[str]) -> None:
    """`systemctl mask` without systemctl: a link to /dev/null in /etc/systemd/system."""
    etc = root / "etc/systemd/system"
    etc.mkdir(parents=True, exist_ok=True)
    for unit in units:
        link = etc / unit
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to("/dev/null")


def module_index(root: Path, release: str) -> None:
    """modules.dep and modules.alias for the kernel (udev loads drivers by them)."""
    run(["depmod", "-b", str(root), release], timeout=300)
