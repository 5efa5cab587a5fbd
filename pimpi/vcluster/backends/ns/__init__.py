"""Namespace nodes: a network namespace, a veth on the bridge and a holder process per node
(with --rootfs also its own Debian root and sshd); entered with nsenter, shaped with tc."""

from __future__ import annotations

import os
from pathlib import Path

from pimpi.vcluster import agent, etc_hosts, net, rootfs
from pimpi.vcluster.backends.base import Log, Record, faults_text
from pimpi.vcluster.backends.ns.processes import enter_argv, node_pids, start_holder
from pimpi.vcluster.pids import alive, kill_pids
from pimpi.vcluster.spec import Node, Spec
from pimpi.vcluster.sysrun import VclusterError, run
from pimpi.fileio import atomic_write

__all__ = ["NODES", "NsNodes"]


def _write(path: Path, text: str, mode: int = 0o644) -> None:
    atomic_write(path, text, mode)


def _remove_etc_netns(folder: Path) -> None:
    (folder / "hosts").unlink(missing_ok=True)
    if folder.exists():
        folder.rmdir()


def _holder(spec: Spec, data: dict, node: Node) -> int:
    pid, started = data["created"]["holders"][node.hostname]
    if not alive(pid, started):
        raise VclusterError(f"node {node.hostname} is not running (its holder {pid} is gone); "
                            f"pimpi vcluster down --name {spec.name}, then up again")
    return pid


class NsNodes:
    """The `Nodes` of network-namespace nodes."""

    def tools(self, spec: Spec) -> tuple[str, ...]:
        return ("debootstrap", "ssh", "ssh-keygen") if spec.rootfs else ()

    def prepare(self, spec: Spec, log: Log) -> Path | None:
        """--rootfs: the cached Debian root every node's overlay starts from."""
        return rootfs.ensure_cache(log) if spec.rootfs else None

    def build(self, spec: Spec, data: dict, record: Record, files: dict[str, Path], prepared: Path | None,
              log: Log) -> list[str]:
        """The nodes' namespaces, links, shaping and holders; their known_hosts lines (--rootfs)."""
        created = data["created"]
        delay, rate = net.profile_shape(spec)
        for node in spec.node_list():
            record("netns", node.netns)
            run(["ip", "netns", "add", node.netns])
            record("links", node.host_if)
            net.add_node_link(spec, node)
            if not net.shape(node, delay, rate, need_delay=False) and "no_netem" not in created:
                record("no_netem", True)
                log(f"profile {spec.profile}: rate shaped, but this kernel has no netem: latency not added")
        if not spec.rootfs:
            etc_netns = Path("/etc/netns")
            if not etc_netns.exists():
                record("etc_netns_root", str(etc_netns))
                etc_netns.mkdir()
            for node in spec.node_list():
                record("etc_netns", str(etc_netns / node.netns))
                (etc_netns / node.netns).mkdir(exist_ok=True)
                _write(etc_netns / node.netns / "hosts", etc_hosts.node_hosts(spec))
        env = agent.node_env(spec)
        known = []
        if spec.rootfs:
            rootfs.make_key(files["key"], f"pimpi-vcluster-{spec.name}")
            binds = rootfs.bind_paths()
        for node in spec.node_list():
            log(f"node {node.hostname} at {node.address}")
            layer = files["dir"] / node.hostname
            rootfs_args = None
            if spec.rootfs:
                upper, work, merged = layer / "upper", layer / "work", layer / "root"
                for d in (upper, work, merged):
                    d.mkdir(parents=True)
                known.append(rootfs.prepare_node(spec, node, upper, files["key"], env,
                                                       [agent.python_bin_dir()]))
                rootfs_args = [str(prepared), str(upper), str(work), str(merged)]
            else:
                layer.mkdir()
            pid, started = start_holder(node, layer / "holder.log", rootfs_args,
                                        binds if spec.rootfs else (), [str(files["shared"])])
            record("holders", {**created["holders"], node.hostname: [pid, started]})
        if not spec.rootfs:
            holders = {h: v[0] for h, v in created["holders"].items()}
            agent.write_agent(files["agent"], agent.agent_script(spec, holders))
        return known

    def start(self, spec: Spec, data: dict, record: Record, files: dict[str, Path], built: list[str],
              log: Log) -> None:
        """--rootfs: known_hosts everywhere, then each node's sshd, then wait until each answers."""
        if not spec.rootfs:
            return
        known = "".join(built)
        _write(files["known_hosts"], known)
        holders = {h: v[0] for h, v in data["created"]["holders"].items()}
        for node in spec.node_list():
            _write(files["dir"] / node.hostname / "upper" / "root/.ssh/known_hosts", known)
            rootfs.start_sshd(enter_argv(holders[node.hostname], True))
        for node in spec.node_list():
            rootfs.wait_ssh(rootfs.ssh_argv(files["key"], files["known_hosts"], node.hostname))

    def teardown(self, spec: Spec, created: dict) -> list[str]:
        """Every process in the nodes, the holders, the namespaces and /etc/netns entries."""
        errors = []

        def attempt(what: str, fn, *args) -> None:
            try:
                fn(*args)
            except Exception as exc:  # noqa: BLE001 - keep removing the rest, report all
                errors.append(f"{what}: {exc}")

        by_name = {n.netns: n for n in spec.node_list()}
        for netns in created.get("netns", []):
            left = kill_pids(node_pids(by_name[netns]))
            if left:
                errors.append(f"processes {left} in {netns} would not die")
        for _hostname, (pid, started) in created.get("holders", {}).items():
            if alive(pid, started):
                kill_pids([pid])
        for netns in created.get("netns", []):
            attempt(netns, net.delete_netns, netns)
        for folder in created.get("etc_netns", []):
            attempt(folder, _remove_etc_netns, Path(folder))
        if created.get("etc_netns_root"):
            attempt("/etc/netns", lambda p: p.rmdir() if p.exists() and not any(p.iterdir()) else None,
                    Path(created["etc_netns_root"]))
        return errors

    def exec_argv(self, spec: Spec, data: dict, files: dict[str, Path], node: Node, command: list[str],
                  cwd: str) -> tuple[list[str], dict]:
        pid = _holder(spec, data, node)
        env = dict(os.environ)
        env.update(agent.node_env(spec))
        env["PATH"] = agent.python_bin_dir() + os.pathsep + env.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        script = 'cd "$1" 2>/dev/null || cd /; shift; exec "$@"'
        return enter_argv(pid, spec.rootfs) + ["/bin/sh", "-c", script, "sh", cwd, *command], env

    def status(self, spec: Spec, data: dict, node: Node) -> dict:
        pid, started = data["created"]["holders"].get(node.hostname, [0, None])
        return {"hostname": node.hostname, "address": node.address, "netns": node.netns,
                "link": net.link_state(node), "running": alive(pid, started),
                "processes": len(node_pids(node)), **data.get("faults", {}).get(node.hostname, {})}

    def shape(self, spec: Spec, files: dict[str, Path], node: Node, delay_s: float | None,
              rate_bps: float | None, need_delay: bool) -> None:
        net.shape(node, delay_s, rate_bps, need_delay=need_delay)

    def kill(self, spec: Spec, data: dict, files: dict[str, Path], node: Node) -> int:
        """Like a crash and reboot: in --rootfs mode the node's sshd is started again."""
        holder = _holder(spec, data, node)
        victims = [p for p in node_pids(node) if p != holder]
        left = kill_pids(victims)
        if left:
            raise VclusterError(f"processes {left} in {node.hostname} would not die")
        if spec.rootfs:
            rootfs.start_sshd(enter_argv(holder, True))
        return len(victims)

    def words(self, info: dict) -> str:
        return ""

    def row_text(self, row: dict) -> str:
        return (f"  {row['hostname']:<10} {row['address']:<15} link {row['link']:<4} "
                f"{'running' if row['running'] else 'STOPPED'} {row['processes']:>3} processes"
                f"{faults_text(row)}")


NODES = NsNodes()
