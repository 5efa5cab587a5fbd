"""Run the system tools a virtual cluster is built with (ip, tc, nsenter, ...), never hanging."""

from __future__ import annotations

import os
import shutil

from pimpi import procs

__all__ = ["VclusterError", "run", "try_run", "require_root", "require_tools"]


class VclusterError(RuntimeError):
    """A system command failed; the message names the command and its error output."""


def run(cmd: list[str], timeout: float = 30, input: str | None = None) -> str:
    """Run CMD, return its stdout; raise VclusterError (one line) when it fails or times out."""
    try:
        return procs.output(cmd, timeout=timeout, input=input)
    except procs.CommandError as exc:
        raise VclusterError(str(exc)) from None


def try_run(cmd: list[str], timeout: float = 30) -> bool:
    """Run CMD for cleanup: True when it worked, False (silently) when it did not."""
    try:
        run(cmd, timeout=timeout)
        return True
    except VclusterError:
        return False


def require_root() -> None:
    """Refuse (VclusterError) unless we are root on Linux."""
    if not os.uname().sysname == "Linux":
        raise VclusterError("pimpi vcluster needs Linux (network namespaces)")
    if os.geteuid() != 0:
        raise VclusterError("pimpi vcluster needs root (try: sudo pimpi vcluster ...)")


def require_tools(*names: str) -> None:
    """Refuse (VclusterError) when a needed program is missing, naming its Debian package."""
    packages = {"ip": "iproute2", "tc": "iproute2", "nsenter": "util-linux",
                "unshare": "util-linux", "mount": "mount", "debootstrap": "debootstrap",
                "ssh": "openssh-client", "ssh-keygen": "openssh-client", "iptables": "iptables"}
    missing = [n for n in names if shutil.which(n) is None]
    if missing:
        pkgs = sorted({packages.get(n, n) for n in missing})
        raise VclusterError(f"missing {', '.join(missing)}: apt-get install {' '.join(pkgs)}")
