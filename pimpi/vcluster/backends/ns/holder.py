"""The process that holds one virtual node open: its hostname, and in --rootfs mode its root filesystem.

Started by `pimpi vcluster up` inside the node's network namespace and a new UTS
(and, for --rootfs, mount) namespace; everything entering the node joins this process's
namespaces with nsenter. It prints `ready` once set up, then sleeps until killed.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys

__all__ = ["main"]


def _mount(*args: str) -> None:
    subprocess.run(["mount", *args], check=True, timeout=60, stdin=subprocess.DEVNULL)


def _enter_rootfs(lower: str, upper: str, work: str, merged: str, binds: list[str],
                  shared: list[str]) -> None:
    """Overlay (the cached Debian read-only under this node's own writable layer), the
    kernel filesystems, the repo and its Python read-only at their own paths, the cluster's
    shared folder writable (like an NFS export); then chroot."""
    _mount("-t", "overlay", "pimpi-overlay", "-o", f"lowerdir={lower},upperdir={upper},workdir={work}", merged)
    _mount("-t", "proc", "proc", f"{merged}/proc")
    _mount("-t", "sysfs", "sysfs", f"{merged}/sys")
    _mount("--rbind", "/dev", f"{merged}/dev")
    _mount("-t", "tmpfs", "-o", "mode=755", "tmpfs", f"{merged}/run")
    os.makedirs(f"{merged}/run/sshd", mode=0o755, exist_ok=True)
    for path in binds:
        target = merged + path
        os.makedirs(target, exist_ok=True)
        _mount("--bind", "-o", "ro", path, target)
    for path in shared:
        os.makedirs(merged + path, exist_ok=True)
        _mount("--bind", path, merged + path)
    os.chroot(merged)
    os.chdir("/")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hostname", required=True)
    parser.add_argument("--rootfs", nargs=4, metavar=("LOWER", "UPPER", "WORK", "MERGED"))
    parser.add_argument("--bind", action="append", default=[], help="read-only, same path")
    parser.add_argument("--bind-rw", action="append", default=[], help="writable, same path")
    args = parser.parse_args(argv)
    socket.sethostname(args.hostname)
    if args.rootfs:
        _enter_rootfs(*args.rootfs, binds=args.bind, shared=args.bind_rw)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 1)
    while True:
        signal.pause()


if __name__ == "__main__":
    sys.exit(main())
