"""Bring a virtual cluster up and down, inspect it, enter its nodes and break them on purpose.

Every object `up` creates is recorded in the state file the moment it exists, so `down`
(also run automatically when `up` fails half-way) removes exactly those and nothing else.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Callable

from pimpi import procs
from pimpi.vcluster import agent, etc_hosts, guest, net, nodes, rootfs, state, vmnodes
from pimpi.cluster.profiles import PROFILES
from pimpi.vcluster.spec import Node, Spec, spec_from_dict
from pimpi.vcluster.sysrun import VclusterError, require_root, require_tools, run
from pimpi.fileio import atomic_write

__all__ = ["up", "down", "load_spec", "status", "exec_argv", "node_env", "cut", "heal", "slow",
           "kill", "reboot", "power_cut", "boot", "inventory", "files", "VclusterError"]

Log = Callable[[str], None]
_TOOLS = ("ip", "tc", "nsenter", "unshare", "mount")


def _quiet(_msg: str) -> None:
    pass


def _loaded(name: str) -> tuple[Spec, dict]:
    require_root()
    data = state.load(name)
    if data is None:
        raise VclusterError(f"no virtual cluster named {name!r} (start one: pimpi vcluster up --nodes 3)")
    return spec_from_dict(data["spec"]), data


def load_spec(name: str) -> Spec:
    """The spec of a running cluster (VclusterError when there is none)."""
    return _loaded(name)[0]


def files(name: str) -> dict[str, Path]:
    """The documented files in the state dir."""
    d = state.state_dir(name)
    return {"dir": d, "agent": d / "ssh-agent", "shared": d / "shared",
            "hostfile": d / "shared" / "hostfile", "env": d / "shared" / "env",
            "key": d / "id_ed25519", "known_hosts": d / "known_hosts",
            "inventory": d / "inventory.yml", "inventory_json": d / "inventory.json",
            "sudo_password": d / "sudo_password"}


def _write(path: Path, text: str, mode: int = 0o644) -> None:
    atomic_write(path, text, mode)


def _profile_delay(spec: Spec) -> tuple[float | None, float | None]:
    prof = PROFILES[spec.profile]
    latency = prof["latency_s"]
    return (None if latency is None else latency / 2), prof["bandwidth_bps"]


def node_env(spec: Spec) -> dict[str, str]:
    """The environment for mpirun on this cluster (light mode: with the nsenter agent)."""
    return agent.mpi_env(spec, None if spec.ssh else files(spec.name)["agent"])


def up(spec: Spec, log: Log = _quiet) -> None:
    """Create the cluster SPEC describes; on any failure undo everything created so far."""
    require_root()
    require_tools(*_TOOLS, *(("debootstrap", "ssh", "ssh-keygen") if spec.rootfs else ()),
                  *(("iptables",) if spec.nat else ()),
                  *((*vmnodes.TOOLS, *sorted({vm_binary(spec, n) for n in spec.node_list()}))
                    if spec.kind == "vm" else ()))
    with state.locked(spec.name), procs.stop_signals():
        if state.load(spec.name) is not None:
            raise VclusterError(f"virtual cluster {spec.name!r} is already up "
                                f"(pimpi vcluster down --name {spec.name} first)")
        net.check_subnet_free(spec)
        for name in [spec.bridge] + [n.host_if for n in spec.node_list()]:
            if net.link_exists(name):
                raise VclusterError(f"link {name} already exists (left by something else?); not touching it")
        for node in spec.node_list():
            if net.netns_exists(node.netns):
                raise VclusterError(f"network namespace {node.netns} already exists; not touching it")
        cache = rootfs.ensure_cache(log) if spec.rootfs else None
        data = {"spec": spec.to_dict(), "status": "starting", "faults": {},
                "created": {"netns": [], "links": [], "etc_netns": [], "holders": {}, "nat": []}}
        state.save(spec.name, data)
        try:
            (_build_vm if spec.kind == "vm" else _build)(spec, data, cache, log)
        except BaseException:
            _teardown(spec.name, data)
            raise
        data["status"] = "up"
        state.save(spec.name, data)


def vm_binary(spec: Spec, node: Node) -> str:
    from pimpi.vcluster.vm import qemu_binary

    return qemu_binary(spec.node_arch(node))


def _recorder(spec: Spec, data: dict):
    created = data["created"]

    def record(key: str, value) -> None:
        if isinstance(created.get(key), list):
            created[key].append(value)
        else:
            created[key] = value
        state.save(spec.name, data)

    return record


def _state_dir_and_bridge(spec: Spec, record, f: dict[str, Path], log: Log) -> None:
    f["dir"].mkdir(mode=0o700, parents=True, exist_ok=False)
    record("dir", str(f["dir"]))
    f["shared"].mkdir(mode=0o755)
    log(f"bridge {spec.bridge} with {spec.head_name} at {spec.head_address}")
    record("bridge", spec.bridge)  # recorded first: a half-made bridge is still ours
    net.add_bridge(spec)


def _write_inventory(spec: Spec, f: dict[str, Path]) -> None:
    text = json.dumps(inventory(spec), indent=2) + "\n"
    for key in ("inventory", "inventory_json"):
        atomic_write(f[key], text, mode=0o644)


def _build_vm(spec: Spec, data: dict, _cache: Path | None, log: Log) -> None:
    """VM nodes: the bridge, then vmnodes starts the machines; the shared files as for namespaces."""
    record = _recorder(spec, data)
    f = files(spec.name)
    _state_dir_and_bridge(spec, record, f, log)
    env = node_env(spec)
    atomic_write(f["hostfile"], agent.hostfile_text(spec), mode=0o644)
    atomic_write(f["env"], agent.env_text(env), mode=0o644)
    record("hosts_block", True)
    etc_hosts.add_block(spec)
    if spec.nat:
        _add_nat(spec, record)
    vmnodes.build(spec, data, record, f, env, _profile_delay(spec), log)
    _write_inventory(spec, f)


def _build(spec: Spec, data: dict, cache: Path | None, log: Log) -> None:
    created = data["created"]
    record = _recorder(spec, data)
    f = files(spec.name)
    _state_dir_and_bridge(spec, record, f, log)
    delay, rate = _profile_delay(spec)
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
    env = node_env(spec)
    known = []
    if spec.rootfs:
        rootfs.make_key(f["key"], f"pimpi-vcluster-{spec.name}")
        binds = rootfs.bind_paths()
    for node in spec.node_list():
        log(f"node {node.hostname} at {node.address}")
        layer = f["dir"] / node.hostname
        rootfs_args = None
        if spec.rootfs:
            upper, work, merged = layer / "upper", layer / "work", layer / "root"
            for d in (upper, work, merged):
                d.mkdir(parents=True)
            known.append(rootfs.prepare_node(spec, node, upper, f["key"], env, [agent.python_bin_dir()]))
            rootfs_args = [str(cache), str(upper), str(work), str(merged)]
        else:
            layer.mkdir()
        pid, started = nodes.start_holder(node, layer / "holder.log", rootfs_args,
                                          binds if spec.rootfs else (), [str(f["shared"])])
        record("holders", {**created["holders"], node.hostname: [pid, started]})
    holders = {h: v[0] for h, v in created["holders"].items()}
    if not spec.rootfs:
        agent.write_agent(f["agent"], agent.agent_script(spec, holders))
    _write(f["hostfile"], agent.hostfile_text(spec))
    _write(f["env"], agent.env_text(env))
    record("hosts_block", True)
    etc_hosts.add_block(spec)
    if spec.nat:
        _add_nat(spec, record)
    if spec.rootfs:
        _write(f["known_hosts"], "".join(known))
        for node in spec.node_list():
            upper = f["dir"] / node.hostname / "upper"
            _write(upper / "root/.ssh/known_hosts", "".join(known))
            rootfs.start_sshd(nodes.enter_argv(holders[node.hostname], True))
        for node in spec.node_list():
            rootfs.wait_ssh(rootfs.ssh_argv(f["key"], f["known_hosts"], node.hostname))
        _write_inventory(spec, f)


def _add_nat(spec: Spec, record) -> None:
    forward = Path("/proc/sys/net/ipv4/ip_forward")
    record("ip_forward_was", forward.read_text().strip())
    forward.write_text("1\n")
    for rule in net.nat_rules(spec):
        record("nat", rule)
        net.add_nat(rule)


def inventory(spec: Spec) -> dict:
    """Ansible inventory (JSON, which is also YAML) for --rootfs nodes reached over real SSH."""
    f = files(spec.name)
    group = {"hosts": {n.hostname: {"ansible_host": n.address} for n in spec.node_list()}}
    return {"all": {
        "children": {"pimpi_vcluster": group},
        "vars": {
            "ansible_user": "root",
            "ansible_ssh_private_key_file": str(f["key"]),
            "ansible_ssh_common_args": (f"-o UserKnownHostsFile={f['known_hosts']} "
                                        "-o StrictHostKeyChecking=yes"),
            "ansible_python_interpreter": "/usr/bin/python3",
            "pimpi_vcluster_name": spec.name,
            "pimpi_vcluster_subnet": spec.subnet,
            "pimpi_vcluster_known_hosts": str(f["known_hosts"]),
            **(_imager_vars() if spec.imager else {}),
        },
    }}


def _imager_vars() -> dict:
    """--imager nodes are reached as Imager's named user (sudo may ask for the password kept in
    the state folder: ansible-playbook -K); their board name is in a file, not /proc/device-tree."""
    from pimpi.vcluster.seed import MODEL_FILE, USER

    return {"ansible_user": USER, "raspberrypi_model_file": MODEL_FILE}


def down(name: str, log: Log = _quiet) -> bool:
    """Remove exactly what the state file records; False when there was no such cluster."""
    require_root()
    with state.locked(name):
        data = state.load(name)
        if data is None:
            return False
        _teardown(name, data, log)
    try:
        (state.state_root() / f".vcluster-{name}.lock").unlink()
    except FileNotFoundError:
        pass
    return True


def _teardown(name: str, data: dict, log: Log = _quiet) -> None:
    """Undo DATA['created'] in reverse order, carrying on past errors; raise them at the end."""
    spec = spec_from_dict(data["spec"])
    created = data["created"]
    errors: list[str] = []

    def attempt(what: str, fn, *args) -> None:
        try:
            fn(*args)
        except Exception as exc:  # noqa: BLE001 - keep removing the rest, report all
            errors.append(f"{what}: {exc}")

    errors += vmnodes.stop_all(created)
    by_name = {n.netns: n for n in spec.node_list()}
    for netns in created.get("netns", []):
        node = by_name[netns]
        left = nodes.kill_pids(nodes.node_pids(node))
        if left:
            errors.append(f"processes {left} in {netns} would not die")
    for hostname, (pid, started) in created.get("holders", {}).items():
        if nodes.alive(pid, started):
            nodes.kill_pids([pid])
    for rule in created.get("nat", []):
        net.remove_nat(rule)
    if created.get("ip_forward_was") is not None:
        attempt("ip_forward", Path("/proc/sys/net/ipv4/ip_forward").write_text,
                created["ip_forward_was"] + "\n")
    if created.get("hosts_block"):
        attempt("/etc/hosts", etc_hosts.remove_block, spec.name)
    for netns in created.get("netns", []):
        attempt(netns, net.delete_netns, netns)
    for link in created.get("links", []):
        attempt(link, net.delete_link, link)
    if created.get("bridge"):
        attempt(created["bridge"], net.delete_link, created["bridge"])
    for folder in created.get("etc_netns", []):
        path = Path(folder)
        attempt(folder, lambda p: ((p / "hosts").unlink(missing_ok=True), p.rmdir() if p.exists() else None),
                path)
    if created.get("etc_netns_root"):
        attempt("/etc/netns", lambda p: p.rmdir() if p.exists() and not any(p.iterdir()) else None,
                Path(created["etc_netns_root"]))
    if created.get("dir"):
        attempt(created["dir"], _remove_dir, Path(created["dir"]))
    if errors:
        state.save(name, data)
        raise VclusterError("down left something behind: " + "; ".join(errors))
    state.forget(name)


def _mounts_under(path: Path) -> list[str]:
    prefix = str(path).rstrip("/") + "/"
    found = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4].replace("\\040", " ")
        if point == str(path) or point.startswith(prefix):
            found.append(point)
    return found


def _remove_dir(path: Path) -> None:
    """Remove the state folder, never following a mount out of it."""
    if not path.exists():
        return
    mounted = _mounts_under(path)
    for point in sorted(mounted, reverse=True):
        subprocess.run(["umount", "--recursive", "--lazy", point], capture_output=True, timeout=30, check=False)
    mounted = _mounts_under(path)
    if mounted:
        raise VclusterError(f"still mounted under {path}: {', '.join(mounted)}")
    shutil.rmtree(path)


def _holder(spec: Spec, data: dict, node: Node) -> int:
    pid, started = data["created"]["holders"][node.hostname]
    if not nodes.alive(pid, started):
        raise VclusterError(f"node {node.hostname} is not running (its holder {pid} is gone); "
                            f"pimpi vcluster down --name {spec.name}, then up again")
    return pid


def exec_argv(name: str, ref: str, command: list[str], cwd: str | None = None) -> tuple[list[str], dict]:
    """(argv, env) running COMMAND inside node REF, in CWD when it exists there (else /)."""
    spec, data = _loaded(name)
    node = spec.find(ref)
    if command[:1] == ["--"]:
        command = command[1:]
    if not command:
        raise ValueError("nothing to run: pimpi vcluster exec NODE -- COMMAND")
    if spec.kind == "vm":
        script = f'cd {shlex.quote(cwd or os.getcwd())} 2>/dev/null || cd /; exec {guest.quote(command)}'
        return vmnodes.ssh(files(name), node).command(script), dict(os.environ)
    pid = _holder(spec, data, node)
    env = dict(os.environ)
    env.update(node_env(spec))
    env["PATH"] = agent.python_bin_dir() + os.pathsep + env.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
    script = 'cd "$1" 2>/dev/null || cd /; shift; exec "$@"'
    argv = nodes.enter_argv(pid, spec.rootfs) + ["/bin/sh", "-c", script, "sh", cwd or os.getcwd(), *command]
    return argv, env


def status(name: str) -> dict:
    """What is up: every node's address, link, holder and process count, and the faults injected."""
    spec, data = _loaded(name)
    rows = []
    created = data["created"]
    for node in spec.node_list():
        if spec.kind == "vm":
            rows.append({
                "hostname": node.hostname, "address": node.address, "arch": spec.node_arch(node),
                "accel": created.get("accel", {}).get(spec.node_arch(node)),
                "link": net.link_state(node), "running": vmnodes.running(created, node),
                "rss_mb": vmnodes.rss_mb(created, node), "boot_s": created.get("boot_s", {}).get(node.hostname),
                **data.get("faults", {}).get(node.hostname, {}),
            })
            continue
        pid, started = data["created"]["holders"].get(node.hostname, [0, None])
        rows.append({
            "hostname": node.hostname, "address": node.address, "netns": node.netns,
            "link": net.link_state(node), "running": nodes.alive(pid, started),
            "processes": len(nodes.node_pids(node)), **data.get("faults", {}).get(node.hostname, {}),
        })
    return {"name": spec.name, "status": data.get("status"), "spec": spec.to_dict(),
            "head": {"hostname": spec.head_name, "address": spec.head_address},
            "latency_shaped": not data["created"].get("no_netem", False),
            "accel": data["created"].get("accel"),
            "state_dir": str(files(name)["dir"]), "nodes": rows}


def _fault(name: str, ref: str, **changes) -> Node:
    with state.locked(name):
        spec, data = _loaded(name)
        node = spec.find(ref)
        faults = data.setdefault("faults", {})
        entry = {**faults.get(node.hostname, {}), **changes}
        faults[node.hostname] = {k: v for k, v in entry.items() if v not in (None, False)}
        state.save(name, data)
    return node


def cut(name: str, ref: str) -> str:
    """Pull the node's cable: its link goes down, its processes keep running."""
    node = _fault(name, ref, cut=True)
    net.set_link(node, False)
    return node.hostname


def heal(name: str, ref: str) -> str:
    """Plug the cable back and undo `slow`: the link is up with the profile's shaping."""
    node = _fault(name, ref, cut=False, delay_s=None, rate_bps=None)
    spec = load_spec(name)
    net.set_link(node, True)
    if spec.kind == "vm":
        vmnodes.shape(files(name), node, *_profile_delay(spec))
    else:
        net.shape(node, *_profile_delay(spec), need_delay=False)
    return node.hostname


def slow(name: str, ref: str, delay_s: float | None = None, rate_bps: float | None = None) -> str:
    """Every packet to or from the node waits DELAY_S more and/or the link runs at RATE_BPS
    (what is not given keeps the profile's value). `heal` undoes it."""
    if delay_s is None and rate_bps is None:
        raise ValueError("slow needs --delay or --rate")
    if delay_s is not None and delay_s < 0:
        raise ValueError(f"--delay must not be negative, got {delay_s}")
    if rate_bps is not None and rate_bps <= 0:
        raise ValueError(f"--rate must be positive, got {rate_bps}")
    spec = load_spec(name)
    node = spec.find(ref)
    base, rate = _profile_delay(spec)
    delay = None if delay_s is None else (base or 0) + delay_s
    if spec.kind == "vm":
        vmnodes.shape(files(name), node, delay if delay_s is not None else base, rate_bps or rate)
    else:
        net.shape(node, delay if delay_s is not None else base, rate_bps or rate,
                  need_delay=delay_s is not None)
    _fault(name, ref, delay_s=delay_s, rate_bps=rate_bps)
    return node.hostname


def kill(name: str, ref: str) -> tuple[str, int]:
    """End every process running in the node (like a crash and reboot); the node stays up
    (and in --rootfs mode its sshd is started again). Returns (hostname, processes ended)."""
    spec, data = _loaded(name)
    node = spec.find(ref)
    if spec.kind == "vm":
        return node.hostname, vmnodes.kill_jobs(files(name), node)
    holder = _holder(spec, data, node)
    victims = [p for p in nodes.node_pids(node) if p != holder]
    left = nodes.kill_pids(victims)
    if left:
        raise VclusterError(f"processes {left} in {node.hostname} would not die")
    if spec.rootfs:
        rootfs.start_sshd(nodes.enter_argv(holder, True))
    return node.hostname, len(victims)


def _vm_node(name: str, ref: str, what: str) -> tuple[Spec, dict, Node]:
    spec, data = _loaded(name)
    node = spec.find(ref)
    if spec.kind != "vm":
        raise VclusterError(f"{what} needs VM nodes (cluster {name!r} has namespace nodes: up --vm)")
    return spec, data, node


def _reshape(spec: Spec, data: dict, node: Node) -> None:
    """After a boot the guest's kernel has forgotten its shaping: the profile, then `slow`."""
    base, rate = _profile_delay(spec)
    fault = data.get("faults", {}).get(node.hostname, {})
    delay = base if fault.get("delay_s") is None else (base or 0) + fault["delay_s"]
    vmnodes.shape(files(spec.name), node, delay, fault.get("rate_bps") or rate)


def reboot(name: str, ref: str) -> tuple[str, float]:
    """Reboot the node cleanly (systemctl reboot); (hostname, seconds until it answers again)."""
    spec, data, node = _vm_node(name, ref, "reboot")
    f = files(name)
    seconds = vmnodes.reboot(f, data["created"], node, vmnodes.shares(spec, f["shared"], node))
    _reshape(spec, data, node)
    return node.hostname, seconds


def power_cut(name: str, ref: str, back_after: float | None = None) -> str:
    """Pull the node's power: its QEMU process ends, its disk keeps what was written. With
    BACK_AFTER seconds the power returns by itself then (the node boots, nothing else running)."""
    if back_after is not None and not back_after >= 0:
        raise ValueError(f"--back-after {back_after!r}: give seconds, 0 or more")
    with state.locked(name):
        _spec, data, node = _vm_node(name, ref, "power-cut")
        vmnodes.power_cut(data["created"], node)
        if back_after is not None:
            vmnodes.power_back(name, files(name), data["created"], node, back_after)
            state.save(name, data)
    return node.hostname


def reshape_when_back(name: str, ref: str) -> bool:
    """After the power came back by itself: once the node answers, its link shaping (the
    profile, then `slow`) again, as `boot` does. False when there was nothing to apply."""
    spec, data, node = _vm_node(name, ref, "reshape")
    base, rate = _profile_delay(spec)
    if not (base or rate or data.get("faults", {}).get(node.hostname)):
        return False
    f = files(name)
    vmnodes.ssh(f, node).wait(vmnodes.BOOT_TIMEOUT_S, vmnodes.ready_check(vmnodes.shares(spec, f["shared"], node)),
                              lambda: vmnodes.running(data["created"], node))
    _reshape(spec, data, node)
    return True


def boot(name: str, ref: str) -> tuple[str, float]:
    """Power a cut node on again; (hostname, seconds until it answers over ssh)."""
    with state.locked(name):
        spec, data, node = _vm_node(name, ref, "boot")

        def record(key: str, value) -> None:
            data["created"][key] = value
            state.save(name, data)

        f = files(name)
        seconds = vmnodes.boot(f, data["created"], node, vmnodes.shares(spec, f["shared"], node), record)
        _reshape(spec, data, node)
    return node.hostname, seconds
