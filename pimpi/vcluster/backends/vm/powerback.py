"""The power coming back by itself: a small process that powers a cut VM node on after a delay.

`pimpi vcluster power-cut NODE --back-after S` starts it in its own session and records it in
the state file, then returns: like a Pi whose power returns, the node boots with nothing else
running. It waits S seconds, starts the node's QEMU with the command line `up` recorded (same
disk overlay, same seed), records the new process, applies the link's shaping again once the
node answers (as `boot` does; nothing to do on an unshaped link) and ends; `boot NODE` and
`down` end it first when it is still waiting. SIGTERM, SIGINT or SIGHUP end it at once, before or after the boot.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from pathlib import Path

from pimpi.vcluster import state
from pimpi.vcluster.backends.vm import machines, power, qemu
from pimpi.vcluster.spec import spec_from_dict

__all__ = ["main"]


def _power_on(name: str, hostname: str, log: Path) -> str:
    """Start the node's QEMU unless someone already did; what happened, in a few words."""
    with state.locked(name, timeout=machines.BOOT_TIMEOUT_S):  # `boot` may hold it while it waits for ssh
        data = state.load(name)
        if data is None:
            return "the cluster is gone"
        created = data["created"]
        node = spec_from_dict(data["spec"]).find(hostname)
        if machines.running(created, node):
            return "already running"
        pid, started = qemu.start(created["vm_argv"][hostname], log.parent / "qemu.log")
        created["vms"] = {**created.get("vms", {}), hostname: [pid, started]}
        created.get("power_back", {}).pop(hostname, None)
        state.save(name, data)
    return f"powered on: QEMU {pid}"


def main(args: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--name", required=True)
    parser.add_argument("--node", required=True)
    parser.add_argument("--after", type=float, required=True)
    parser.add_argument("--log", type=Path, required=True)
    opts = parser.parse_args(args)
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, lambda signum, _frame: sys.exit(128 + signum))
    time.sleep(max(0.0, opts.after))
    try:
        what = _power_on(opts.name, opts.node, opts.log)
        if what.startswith("powered on"):
            if power.reshape_when_back(opts.name, opts.node):
                what += ", link shaped again"
    except Exception as exc:  # noqa: BLE001 - nobody is waiting for this process: say it in its log
        what = f"failed: {exc}"
    try:
        with open(opts.log, "a") as out:
            out.write(f"{time.strftime('%H:%M:%S')} power back after {opts.after:g} s: {what}\n")
    except OSError:
        pass  # the cluster went down meanwhile, its folder with it
    return 0 if not what.startswith("failed") else 1


if __name__ == "__main__":
    sys.exit(main())
