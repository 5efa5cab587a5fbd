"""Helpers for tests that run under mpirun: agree on pass/fail across ranks, so none hangs."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from typing import Any

__all__ = ["assert_all_ranks", "vm_skip_reason", "down_when_gone", "marked_processes", "MARK_SCAN", "wait_for"]

_WATCH = """\
import os, subprocess, sys, time
pid, name, state = int(sys.argv[1]), sys.argv[2], sys.argv[3]
while True:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        break
    time.sleep(1)
if os.path.exists(state):
    subprocess.run([sys.executable, "-m", "pimpi", "vcluster", "down", "--name", name],
                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=600)
"""


def assert_all_ranks(comm: Any, ok: bool, detail: str = "") -> None:
    """Raise AssertionError on every rank if `ok` is false on any rank.

    A plain `assert` that fails on one rank leaves the others waiting in the
    next collective; this combines the verdict first and names the failing ranks.
    """
    failures = comm.allgather(None if ok else (detail or "assertion failed"))
    bad = [(rank, msg) for rank, msg in enumerate(failures) if msg is not None]
    if bad:
        lines = "; ".join(f"rank {rank}: {msg}" for rank, msg in bad)
        raise AssertionError(f"failed on {len(bad)} of {comm.size} ranks: {lines}")


def vm_skip_reason(qemu: str = "qemu-system-x86_64") -> str | None:
    """Why VM-node tests cannot run here (None: they run). With CI=true they always run (and
    fail if they cannot), so a missing package is never a silent skip there."""
    if os.environ.get("CI", "").lower() == "true":
        return None
    missing = [tool for tool in (qemu, "qemu-img", "genisoimage", "debootstrap") if shutil.which(tool) is None]
    if os.geteuid() != 0 or missing:
        why = "not root" if os.geteuid() else "missing " + ", ".join(missing)
        return f"VM nodes need root and QEMU ({why}; make sysdeps installs QEMU); they run in CI"
    return None


def down_when_gone(name: str) -> None:
    """Take test cluster NAME down if this process dies before its fixture's teardown runs.

    pytest-timeout ends a stuck test with os._exit, which skips every finalizer: without this a
    timed-out test would leave its namespaces, VMs and daemons running for the rest of the run.
    The watcher is its own session (the test's process group may be ended with it); when this
    process is gone it runs `down` only if the cluster's state file is still there.
    """
    state = os.path.join(os.environ.get("PIMPI_VCLUSTER_STATE", "/run/pimpi"), f"vcluster-{name}.json")
    subprocess.Popen([sys.executable, "-c", _WATCH, str(os.getpid()), name, state], start_new_session=True,
                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def wait_for(test: Any, timeout: float, what: str, step: float = 0.2) -> None:
    """Poll `test()` every `step` s until it is true; AssertionError naming `what` after `timeout` s."""
    deadline = time.monotonic() + timeout
    while not test():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not seen within {timeout:g} s")
        time.sleep(step)


def marked_processes(marker: str, same_netns: bool = False) -> list[str]:
    """'pid sid args' of every live process whose environment holds `marker` (a unique
    KEY=VALUE a test put in a job's environment: every process of the job inherits it, on
    every namespace node too, whatever its name, group or session). With `same_netns`,
    only those in this process's network namespace (run inside a node: that node's)."""
    needle = marker.encode()
    own_net = os.readlink("/proc/self/ns/net") if same_netns else None
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as handle:
                if needle not in handle.read().split(b"\0"):
                    continue
            if own_net is not None and os.readlink(f"/proc/{entry}/ns/net") != own_net:
                continue
            with open(f"/proc/{entry}/stat", "rb") as handle:
                fields = handle.read().rsplit(b")", 1)[1].split()
            if fields[0] == b"Z":  # exited, waiting for its parent: nothing runs
                continue
            with open(f"/proc/{entry}/cmdline", "rb") as handle:
                args = handle.read().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:  # gone meanwhile, or not ours to read
            continue
        found.append(f"{entry} sid={int(fields[3])} {args[:160]}")
    return found


# The same scan as a program, for `pimpi vcluster exec NODE -- python -c MARK_SCAN MARKER`.
MARK_SCAN = "import sys; from pimpi.testing import marked_processes as m; print(*m(sys.argv[1], True), sep='\\n')"
