"""Bring a virtual cluster up and down, inspect it, enter its nodes and break them on purpose.

Every object `up` creates is recorded in the state file the moment it exists, so `down`
(also run automatically when `up` fails half-way) removes exactly those and nothing else.
What differs between kinds of node (namespaces, VMs) is their backend's (see backends/);
reboot, power-cut and boot are VM nodes' own (backends/vm/power.py).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Callable

from pimpi import procs
from pimpi.vcluster import agent, etc_hosts, net, state
from pimpi.vcluster.agent import node_env
from pimpi.vcluster.backends import for_kind
from pimpi.vcluster.spec import Node, Spec, spec_from_dict
from pimpi.vcluster.state import files
from pimpi.vcluster.sysrun import VclusterError, require_root, require_tools
from pimpi.fileio import atomic_write

__all__ = ["up", "down", "load_spec", "status", "exec_argv", "node_env", "cut", "heal", "slow",
           "kill", "inventory", "files", "VclusterError"]

Log = Callable[[str], None]
_TOOLS = ("ip", "tc", "nsenter", "unshare", "mount")


def _quiet(_msg: str) -> None:
    pass


def load_spec(name: str) -> Spec:
    """The spec of a running cluster (VclusterError when there is none)."""
    return state.loaded(name)[0]


def up(spec: Spec, log: Log = _quiet) -> None:
    """Create the cluster SPEC describes; on any failure undo everything created so far."""
    require_root()
    backend = for_kind(spec.kind)
    require_tools(*_TOOLS, *backend.tools(spec), *(("iptables",) if spec.nat else ()))
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
        prepared = backend.prepare(spec, log)
        data = {"spec": spec.to_dict(), "status": "starting", "faults": {},
                "created": {"netns": [], "links": [], "etc_netns": [], "holders": {}, "nat": []}}
        state.save(spec.name, data)
        try:
            _build(spec, data, prepared, log)
        except BaseException:
            _teardown(spec.name, data)
            raise
        data["status"] = "up"
        state.save(spec.name, data)


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


def _build(spec: Spec, data: dict, prepared: object, log: Log) -> None:
    """The bridge, the backend's nodes, the shared files and hosts block, NAT; then the backend
    starts its nodes, and nodes reached over SSH get an inventory."""
    backend = for_kind(spec.kind)
    record = _recorder(spec, data)
    f = files(spec.name)
    _state_dir_and_bridge(spec, record, f, log)
    built = backend.build(spec, data, record, f, prepared, log)
    env = node_env(spec)
    atomic_write(f["hostfile"], agent.hostfile_text(spec), mode=0o644)
    atomic_write(f["env"], agent.env_text(env), mode=0o644)
    record("hosts_block", True)
    etc_hosts.add_block(spec)
    if spec.nat:
        _add_nat(spec, record)
    backend.start(spec, data, record, f, built, log)
    if spec.ssh:
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
    from pimpi.vcluster.backends.vm.seed import MODEL_FILE, USER

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

    errors += for_kind(spec.kind).teardown(spec, created)
    for rule in created.get("nat", []):
        net.remove_nat(rule)
    if created.get("ip_forward_was") is not None:
        attempt("ip_forward", Path("/proc/sys/net/ipv4/ip_forward").write_text,
                created["ip_forward_was"] + "\n")
    if created.get("hosts_block"):
        attempt("/etc/hosts", etc_hosts.remove_block, spec.name)
    for link in created.get("links", []):
        attempt(link, net.delete_link, link)
    if created.get("bridge"):
        attempt(created["bridge"], net.delete_link, created["bridge"])
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


def exec_argv(name: str, ref: str, command: list[str], cwd: str | None = None) -> tuple[list[str], dict]:
    """(argv, env) running COMMAND inside node REF, in CWD when it exists there (else /)."""
    spec, data = state.loaded(name)
    node = spec.find(ref)
    if command[:1] == ["--"]:
        command = command[1:]
    if not command:
        raise ValueError("nothing to run: pimpi vcluster exec NODE -- COMMAND")
    argv, env = for_kind(spec.kind).exec_argv(spec, data, files(name), node, command, cwd or os.getcwd())
    _slurm_env(name, env)
    return argv, env


def _slurm_env(name: str, env: dict[str, str]) -> None:
    """After `vcluster slurm up`: what sinfo, sbatch and pimpi submit need (SLURM_CONF),
    unless the caller set it."""
    from pimpi.vcluster import slurm

    if slurm.conf_path(name).exists():
        for key, value in slurm.client_env(name).items():
            env.setdefault(key, value)


def status(name: str) -> dict:
    """What is up: every node's address, link, holder and process count, and the faults injected."""
    spec, data = state.loaded(name)
    backend = for_kind(spec.kind)
    return {"name": spec.name, "status": data.get("status"), "spec": spec.to_dict(),
            "head": {"hostname": spec.head_name, "address": spec.head_address},
            "latency_shaped": not data["created"].get("no_netem", False),
            "accel": data["created"].get("accel"),
            "state_dir": str(files(name)["dir"]),
            "nodes": [backend.status(spec, data, node) for node in spec.node_list()]}


def _fault(name: str, ref: str, **changes) -> Node:
    with state.locked(name):
        spec, data = state.loaded(name)
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
    for_kind(spec.kind).shape(spec, files(name), node, *net.profile_shape(spec), need_delay=False)
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
    base, rate = net.profile_shape(spec)
    delay = None if delay_s is None else (base or 0) + delay_s
    for_kind(spec.kind).shape(spec, files(name), node, delay if delay_s is not None else base, rate_bps or rate,
                              need_delay=delay_s is not None)
    _fault(name, ref, delay_s=delay_s, rate_bps=rate_bps)
    return node.hostname


def kill(name: str, ref: str) -> tuple[str, int]:
    """End every process running in the node (like a crash and reboot); the node stays up
    (and in --rootfs mode its sshd is started again). Returns (hostname, processes ended)."""
    spec, data = state.loaded(name)
    node = spec.find(ref)
    return node.hostname, for_kind(spec.kind).kill(spec, data, files(name), node)


def boot(name: str, ref: str) -> tuple[str, float]:
    """Bring a node back: a backend that powers its nodes boots it (VM nodes: power on, wait
    for SSH); a namespace node restarts as `_boot_namespace` says. (hostname, seconds)."""
    powered = getattr(for_kind(load_spec(name).kind), "boot", None)
    return powered(name, ref) if powered is not None else _boot_namespace(name, ref)


def _boot_namespace(name: str, ref: str) -> tuple[str, float]:
    """A namespace node 'boots' like a machine after a crash: whatever still runs in it ends
    (as `kill`), then its daemons start again (sshd with --rootfs, slurmd after `slurm up`,
    which Slurm takes back: ReturnToService=2). Its link stays as `cut`/`heal` left it.
    (hostname, seconds until its slurmd registered, or until it was up)."""
    from pimpi.vcluster import slurm

    began = time.monotonic()
    host, _ended = kill(name, ref)
    if slurm.runs_slurmd(name, host):
        slurm.start_slurmd(name, host)
        slurm.wait_idle(name, [host])
    return host, time.monotonic() - began
