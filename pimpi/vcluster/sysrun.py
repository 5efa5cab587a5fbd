"""Run the system tools a virtual cluster is built with (ip, tc, nsenter, ...), never hanging."""

from __future__ import annotations

import os
import shutil
import subprocess

from pimpi import procs

__all__ = ["VclusterError", "run", "try_run", "run_logged", "require_root", "require_tools"]


class VclusterError(RuntimeError):
    """A system command failed; the message names the command and its error output."""


def run(cmd: list[str], timeout: float = 30, input: str | None = None, label: str | None = None) -> str:
    """Run CMD, return its stdout; raise VclusterError (one line, naming LABEL or the command)
    when it fails or times out."""
    label = label or " ".join(cmd)
    try:
        return procs.output(cmd, timeout=timeout, input=input)
    except procs.CommandError as exc:
        text, command = str(exc), " ".join(cmd)
        if not exc.missing and text.startswith(command):
            text = label + text[len(command):]
        raise VclusterError(text) from None


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
                "ssh": "openssh-client", "ssh-keygen": "openssh-client", "iptables": "iptables",
                "qemu-system-x86_64": "qemu-system-x86", "qemu-img": "qemu-utils",
                "genisoimage": "genisoimage", "mkfs.ext4": "e2fsprogs"}
    missing = [n for n in names if shutil.which(n) is None]
    if missing:
        pkgs = sorted({packages.get(n, n) for n in missing})
        raise VclusterError(f"missing {', '.join(missing)}: apt-get install {' '.join(pkgs)}")


def run_logged(cmd: list[str], log: "os.PathLike[str] | str", timeout: float) -> None:
    """Run a long command (debootstrap, mkfs) with its output appended to LOG, in its own
    process group that is ended on timeout, Ctrl-C or SIGTERM; VclusterError names the
    command and its last output line when it fails."""
    from pimpi import procs

    with open(log, "ab") as out:
        try:
            proc = procs.start(cmd, stdout=out, stderr=subprocess.STDOUT)
        except FileNotFoundError:
            raise VclusterError(f"command not found: {cmd[0]}") from None
        code = procs.wait(proc, timeout=timeout)
    if code == procs.EXIT_TIMEOUT:
        raise VclusterError(f"{' '.join(cmd[:3])} ...: no end after {timeout:g} s (log: {log})")
    if code != 0:
        with open(log, errors="replace") as text:
            tail = [line.strip() for line in text.read().splitlines() if line.strip()][-1:]
        raise VclusterError(f"{' '.join(cmd[:3])} ...: {tail[0] if tail else f'exit {code}'} (log: {log})")
