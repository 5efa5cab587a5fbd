"""A namespace node's processes: its holder, entering it with nsenter, finding what runs in it."""

from __future__ import annotations

import os
import select
import subprocess
import sys
from pathlib import Path

from pimpi import procs
from pimpi.vcluster.pids import start_time
from pimpi.vcluster.spec import Node
from pimpi.vcluster.sysrun import VclusterError

__all__ = ["start_holder", "node_pids", "enter_argv"]


def start_holder(node: Node, log: Path, rootfs: list[str] | None = None, binds: list[str] = (),
                 shared: list[str] = (), timeout: float = 60) -> tuple[int, int]:
    """Start the node's holder; return (pid, start time) once it says it is ready."""
    cmd = ["ip", "netns", "exec", node.netns, "unshare", "--uts"]
    if rootfs:
        cmd.append("--mount")  # private: the overlay and its mounts live and die with the holder
    cmd += ["--", sys.executable, "-m", "pimpi.vcluster.backends.ns.holder", "--hostname", node.hostname]
    if rootfs:
        cmd += ["--rootfs", *rootfs]
        for path in binds:
            cmd += ["--bind", path]
        for path in shared:
            cmd += ["--bind-rw", path]
    with open(log, "ab") as err:
        proc = procs.start(cmd, stdout=subprocess.PIPE, stderr=err)
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    line = proc.stdout.readline() if ready else b""
    proc.stdout.close()
    if line.strip() != b"ready":
        proc.kill()
        proc.wait(timeout=10)
        tail = log.read_text(errors="replace").strip().splitlines()[-1:] if log.exists() else []
        raise VclusterError(f"node {node.hostname} did not start: {tail[0] if tail else 'no output'}")
    started = start_time(proc.pid)
    if started is None:
        raise VclusterError(f"node {node.hostname}: holder exited right after starting (see {log})")
    return proc.pid, started


def _ns_inode(path: str) -> int | None:
    try:
        return os.stat(path).st_ino
    except OSError:
        return None


def node_pids(node: Node) -> list[int]:
    """Every process whose network namespace is the node's."""
    target = _ns_inode(f"/run/netns/{node.netns}")
    if target is None:
        return []
    pids = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit() and _ns_inode(f"/proc/{entry.name}/ns/net") == target:
            pids.append(int(entry.name))
    return sorted(pids)


def enter_argv(holder_pid: int, rootfs: bool) -> list[str]:
    """nsenter argv joining the node (net, hostname, mounts; and its root in --rootfs mode)."""
    argv = ["nsenter", "-t", str(holder_pid), "--net", "--uts", "--mount"]
    if rootfs:
        argv += ["--root", "--wd"]  # the holder's cwd: / of the node
    return argv + ["--"]
