"""What only VM nodes can do: reboot cleanly, lose their power (and have it come back), boot again."""

from __future__ import annotations

import sys
from pathlib import Path

from pimpi import procs
from pimpi.vcluster import net, state
from pimpi.vcluster.backends.vm import machines
from pimpi.vcluster.pids import start_time
from pimpi.vcluster.spec import Node, Spec
from pimpi.vcluster.sysrun import VclusterError

__all__ = ["reboot", "power_cut", "boot", "reshape_when_back", "power_back_argv"]


def _vm_node(name: str, ref: str, what: str) -> tuple[Spec, dict, Node]:
    spec, data = state.loaded(name)
    node = spec.find(ref)
    if spec.kind != "vm":
        raise VclusterError(f"{what} needs VM nodes (cluster {name!r} has namespace nodes: up --vm)")
    return spec, data, node


def _reshape(spec: Spec, data: dict, node: Node) -> None:
    """After a boot the guest's kernel has forgotten its shaping: the profile, then `slow`."""
    base, rate = net.profile_shape(spec)
    fault = data.get("faults", {}).get(node.hostname, {})
    delay = base if fault.get("delay_s") is None else (base or 0) + fault["delay_s"]
    machines.shape(state.files(spec.name), node, delay, fault.get("rate_bps") or rate)


def reboot(name: str, ref: str) -> tuple[str, float]:
    """Reboot the node cleanly (systemctl reboot); (hostname, seconds until it answers again)."""
    spec, data, node = _vm_node(name, ref, "reboot")
    f = state.files(name)
    seconds = machines.reboot(f, data["created"], node, machines.shares(spec, f["shared"], node))
    _reshape(spec, data, node)
    return node.hostname, seconds


def power_back_argv(name: str, hostname: str, seconds: float, log: Path) -> list[str]:
    """The command line that powers HOSTNAME of cluster NAME on after SECONDS (see powerback)."""
    return [sys.executable, "-m", "pimpi.vcluster.backends.vm.powerback", "--name", name, "--node", hostname,
            "--after", f"{seconds:g}", "--log", str(log)]


def _power_back(name: str, files: dict[str, Path], created: dict, node: Node, seconds: float) -> None:
    """Have the power come back by itself: a process of its own boots NODE after SECONDS (see
    powerback), recorded so that `boot` and `down` can end it while it waits."""
    log = files["dir"] / node.hostname / "power.log"
    with open(log, "ab") as out:
        proc = procs.start(power_back_argv(name, node.hostname, seconds, log), stdout=out, stderr=out)
    created["power_back"] = {**created.get("power_back", {}), node.hostname: [proc.pid, start_time(proc.pid)]}


def power_cut(name: str, ref: str, back_after: float | None = None) -> str:
    """Pull the node's power: its QEMU process ends, its disk keeps what was written. With
    BACK_AFTER seconds the power returns by itself then (the node boots, nothing else running)."""
    if back_after is not None and not back_after >= 0:
        raise ValueError(f"--back-after {back_after!r}: give seconds, 0 or more")
    with state.locked(name):
        _spec, data, node = _vm_node(name, ref, "power-cut")
        machines.power_cut(data["created"], node)
        if back_after is not None:
            _power_back(name, state.files(name), data["created"], node, back_after)
            state.save(name, data)
    return node.hostname


def reshape_when_back(name: str, ref: str) -> bool:
    """After the power came back by itself: once the node answers, its link shaping (the
    profile, then `slow`) again, as `boot` does. False when there was nothing to apply."""
    spec, data, node = _vm_node(name, ref, "reshape")
    base, rate = net.profile_shape(spec)
    if not (base or rate or data.get("faults", {}).get(node.hostname)):
        return False
    f = state.files(name)
    machines.ssh(f, node).wait(machines.BOOT_TIMEOUT_S,
                               machines.ready_check(machines.shares(spec, f["shared"], node)),
                               lambda: machines.running(data["created"], node))
    _reshape(spec, data, node)
    return True


def boot(name: str, ref: str) -> tuple[str, float]:
    """Power a cut node on again; (hostname, seconds until it answers over ssh)."""
    with state.locked(name):
        spec, data, node = _vm_node(name, ref, "boot")

        def record(key: str, value) -> None:
            data["created"][key] = value
            state.save(name, data)

        f = state.files(name)
        seconds = machines.boot(f, data["created"], node, machines.shares(spec, f["shared"], node), record)
        _reshape(spec, data, node)
    return node.hostname, seconds
