"""VM nodes: a QEMU machine per node with its own kernel, disk overlay and tap on the bridge,
reached over real SSH and shaped by its own kernel; `power` adds reboot, power-cut and boot."""

from __future__ import annotations

import os
import shlex
from pathlib import Path

from pimpi.vcluster import agent, net
from pimpi.vcluster.backends.base import Log, Record, faults_text
from pimpi.vcluster.backends.vm import guest, machines, qemu
from pimpi.vcluster.spec import Node, Spec

__all__ = ["NODES", "VmNodes"]


class VmNodes:
    """The `Nodes` of QEMU VM nodes."""

    def tools(self, spec: Spec) -> tuple[str, ...]:
        return (*machines.TOOLS, *sorted({qemu.qemu_binary(spec.node_arch(n)) for n in spec.node_list()}))

    def prepare(self, spec: Spec, log: Log) -> None:
        return None  # the base image is built in `start`, once the state file records the cluster

    def build(self, spec: Spec, data: dict, record: Record, files: dict[str, Path], prepared: None,
              log: Log) -> None:
        return None  # the taps and machines come after the shared files, in `start`

    def start(self, spec: Spec, data: dict, record: Record, files: dict[str, Path], built: None,
              log: Log) -> None:
        """Start every machine and wait until each answers over SSH with its folders mounted."""
        machines.build(spec, data, record, files, agent.node_env(spec), net.profile_shape(spec), log)

    def teardown(self, spec: Spec, created: dict) -> list[str]:
        return machines.stop_all(created)

    def exec_argv(self, spec: Spec, data: dict, files: dict[str, Path], node: Node, command: list[str],
                  cwd: str) -> tuple[list[str], dict]:
        script = f"cd {shlex.quote(cwd)} 2>/dev/null || cd /; exec {guest.quote(command)}"
        return machines.ssh(files, node).command(script), dict(os.environ)

    def status(self, spec: Spec, data: dict, node: Node) -> dict:
        created = data["created"]
        return {"hostname": node.hostname, "address": node.address, "arch": spec.node_arch(node),
                "accel": created.get("accel", {}).get(spec.node_arch(node)),
                "link": net.link_state(node), "running": machines.running(created, node),
                "rss_mb": machines.rss_mb(created, node), "boot_s": created.get("boot_s", {}).get(node.hostname),
                **data.get("faults", {}).get(node.hostname, {})}

    def shape(self, spec: Spec, files: dict[str, Path], node: Node, delay_s: float | None,
              rate_bps: float | None, need_delay: bool) -> None:
        machines.shape(files, node, delay_s, rate_bps)  # the guest's own netem has the delay, always

    def kill(self, spec: Spec, data: dict, files: dict[str, Path], node: Node) -> int:
        return machines.kill_jobs(files, node)

    def boot(self, name: str, ref: str) -> tuple[str, float]:
        """VM nodes are powered: on again, then wait until SSH answers (power.py)."""
        from pimpi.vcluster.backends.vm import power

        return power.boot(name, ref)

    def words(self, info: dict) -> str:
        accel = info.get("accel") or {}
        return ", VM nodes (" + ", ".join(f"{arch} {how}" for arch, how in sorted(accel.items())) + ")"

    def row_text(self, row: dict) -> str:
        memory = f"{row['rss_mb']:.0f} MB" if row.get("rss_mb") is not None else "-"
        return (f"  {row['hostname']:<10} {row['address']:<15} link {row['link']:<4} "
                f"{'running' if row['running'] else 'OFF':<7} {row['arch']} {row['accel']} {memory:>7} RSS"
                f"{faults_text(row)}")


NODES = VmNodes()
