"""Slurm on a light virtual cluster: munge and slurmctld on the head node, slurmd on the others.

No systemd inside a namespace, so the daemons run in the foreground, started with nsenter
(`ip netns exec` remounts /sys and slurmd 22.05 then fails on /sys/fs/cgroup). Each slurmd
gets a private mount namespace with its own /tmp, as a real node has (PMIx and Open MPI keep
per-job folders there). Everything lives in the cluster's state folder under `slurm/`; the pids
are in `slurm/daemons.json`. `vcluster down` ends them anyway (it ends every node process).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import time
from pathlib import Path

from pimpi import procs
from pimpi.vcluster import pids, state
from pimpi.vcluster.spec import Node, Spec
from pimpi.vcluster.sysrun import VclusterError, require_tools
from pimpi.fileio import atomic_write

__all__ = ["slurm_dir", "conf_path", "slurm_conf", "start", "stop", "start_slurmd", "runs_slurmd", "client_env",
           "wait_idle", "TOOLS"]

TOOLS = ("munged", "munge", "slurmctld", "slurmd", "sinfo", "sbatch", "srun", "scontrol")
_PACKAGES = "apt-get install slurm-wlm munge libpmix2 libpmix-dev"


def slurm_dir(name: str) -> Path:
    return state.state_dir(name) / "slurm"


def conf_path(name: str) -> Path:
    return slurm_dir(name) / "slurm.conf"


def slurm_conf(spec: Spec, compute: list[Node], base: Path, cpus: int, memory_mb: int,
               slurmd_timeout: int = 10) -> str:
    """slurm.conf for SPEC: the head runs slurmctld, COMPUTE run slurmd; one default partition.

    Short timeouts so a lost node is noticed within seconds (a test waits for it); process
    tracking without cgroups (namespaces have none of their own).
    """
    head = spec.node_list()[0]
    lines = [
        f"# pimpi vcluster {spec.name}: written by `pimpi vcluster slurm up`",
        f"ClusterName=pimpi-{spec.name}".lower(),
        f"SlurmctldHost={head.hostname}({head.address})",
        "SlurmUser=root", "SlurmdUser=root",
        "AuthType=auth/munge", "CredType=cred/munge",
        f"AuthInfo=socket={base}/munge/munge.socket,cred_expire=10",  # a requeued job waits this long
        f"StateSaveLocation={base}/ctld",
        f"SlurmctldPidFile={base}/ctld/slurmctld.pid",
        f"SlurmctldLogFile={base}/ctld/slurmctld.log",
        f"SlurmdSpoolDir={base}/%n/spool",
        f"SlurmdPidFile={base}/%n/slurmd.pid",
        f"SlurmdLogFile={base}/%n/slurmd.log",
        "ProctrackType=proctrack/linuxproc", "TaskPlugin=task/none",
        "JobAcctGatherType=jobacct_gather/none", "AccountingStorageType=accounting_storage/none",
        "SwitchType=switch/none", "MpiDefault=pmix",
        "SelectType=select/cons_tres", "SelectTypeParameters=CR_Core",
        "SchedulerType=sched/backfill", "ReturnToService=2", "JobRequeue=1",
        f"SlurmdTimeout={slurmd_timeout}", "SlurmctldTimeout=10", "MessageTimeout=10",
        "KillWait=3", "InactiveLimit=0", "MinJobAge=600", "TmpFS=/tmp",
    ]
    for node in compute:
        lines.append(f"NodeName={node.hostname} NodeAddr={node.address} CPUs={cpus} "
                     f"RealMemory={memory_mb} State=UNKNOWN")
    names = ",".join(n.hostname for n in compute)
    lines.append(f"PartitionName=pimpi Nodes={names} Default=YES MaxTime=INFINITE State=UP")
    return "\n".join(lines) + "\n"


def client_env(name: str) -> dict[str, str]:
    """What sinfo/sbatch/srun need to find this cluster (its slurm.conf)."""
    return {"SLURM_CONF": str(conf_path(name))}


def _memory_mb() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) // 1024
    raise VclusterError("cannot read MemTotal from /proc/meminfo")


def _spawn(argv: list[str], log: Path, env: dict[str, str]) -> tuple[int, int]:
    with open(log, "ab") as out:
        proc = procs.start(argv, stdout=out, stderr=out, env=env)
    started = pids.start_time(proc.pid)
    if started is None:
        raise VclusterError(f"{argv[-1]} exited at once (see {log})")
    return proc.pid, started


def _enter(holder: int, node: Node | None = None, layer: Path | None = None) -> list[str]:
    """Argv prefix running a command in the node's network and hostname. With NODE it also
    gets a private mount namespace: its own /tmp and the node's hosts file, as a real node has.

    The node's /tmp is an overlay on this machine's: what is already there (a checkout or
    venv under /tmp, as in a CI clone) stays visible, while what the node writes (PMIx
    directories, which must not collide between nodes) goes to its own `layer` folder.
    The holder's own mount namespace is not entered: `ip netns exec` made it and remounted
    /sys there, without the cgroup mounts slurmd 22.05 insists on."""
    argv = ["nsenter", "-t", str(holder), "--net", "--uts", "--"]
    if node is not None:
        if layer is None:
            raise ValueError("a node's /tmp needs a layer folder")
        upper, work = layer / "upper", layer / "work"
        for folder in (upper, work):
            folder.mkdir(parents=True, exist_ok=True)
        upper.chmod(0o1777)
        script = (f'mount --bind /etc/netns/{node.netns}/hosts /etc/hosts && '
                  f'mount -t overlay pimpi-node-tmp -o lowerdir=/tmp,upperdir={upper},workdir={work} /tmp '
                  '&& exec "$@"')
        argv += ["unshare", "--mount", "--propagation", "slave", "--", "/bin/sh", "-c", script, "sh"]
    return argv


def _holders(name: str) -> tuple[Spec, dict[str, int]]:
    spec = state.loaded(name)[0]
    if spec.rootfs:
        raise VclusterError("Slurm runs on light nodes only (a --rootfs node has no Slurm packages; "
                            "use the Ansible role `slurm` there)")
    data = state.load(name) or {}
    holders = {}
    for node in spec.node_list():
        pid, started = data["created"]["holders"][node.hostname]
        if not pids.alive(pid, started):
            raise VclusterError(f"node {node.hostname} is not running")
        holders[node.hostname] = pid
    return spec, holders


def _daemons_file(name: str) -> Path:
    return slurm_dir(name) / "daemons.json"


def _record(name: str, key: str, pid_started: tuple[int, int]) -> None:
    path = _daemons_file(name)
    data = json.loads(path.read_text()) if path.exists() else {}
    data[key] = list(pid_started)
    atomic_write(path, json.dumps(data, indent=1) + "\n", mode=0o600)


def start(name: str, head_compute: bool = False, timeout: float = 60) -> list[str]:
    """Start munge, slurmctld and every slurmd on cluster NAME; return the compute node names
    once sinfo shows them all idle. On failure everything started is stopped again."""
    require_tools("nsenter", "unshare")
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        raise VclusterError(f"missing {', '.join(missing)}: {_PACKAGES}")
    spec, holders = _holders(name)
    every = spec.node_list()
    if len(every) < 2 and not head_compute:
        raise ValueError("Slurm needs at least 2 nodes (the head runs slurmctld), or head_compute=True")
    compute = every if head_compute else every[1:]
    base = slurm_dir(name)
    if base.exists():
        raise VclusterError(f"Slurm is already set up on {name!r} ({base}); stop it first")
    try:
        _start(name, spec, holders, compute, base)
        wait_idle(name, [n.hostname for n in compute], timeout=timeout)
    except BaseException:
        stop(name)
        raise
    return [n.hostname for n in compute]


def _start(name: str, spec: Spec, holders: dict[str, int], compute: list[Node], base: Path) -> None:
    base.mkdir(mode=0o700, parents=True)
    for sub in ("munge", "ctld", *(f"{n.hostname}/spool" for n in compute)):
        (base / sub).mkdir(mode=0o700, parents=True)
    key = base / "munge" / "munge.key"
    fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o400)
    with os.fdopen(fd, "wb") as out:
        out.write(os.urandom(1024))
    conf = conf_path(name)
    atomic_write(conf, slurm_conf(spec, compute, base, os.cpu_count() or 1, max(_memory_mb() // 4, 256)))
    env = {**os.environ, **client_env(name)}
    head = spec.node_list()[0]
    munge = base / "munge"
    _record(name, "munged", _spawn(_enter(holders[head.hostname]) + [
        "munged", "--foreground", "--force", f"--socket={munge}/munge.socket", f"--key-file={key}",
        f"--pid-file={munge}/munged.pid", f"--log-file={munge}/munged.log",
        f"--seed-file={munge}/munged.seed"], munge / "stdout.log", env))
    _wait_for(lambda: (munge / "munge.socket").exists(), 15, f"munged did not start (see {munge}/munged.log)")
    _record(name, "slurmctld", _spawn(_enter(holders[head.hostname]) + [
        "slurmctld", "-D", "-i", "-f", str(conf)], base / "ctld" / "stdout.log", env))
    for node in compute:
        start_slurmd(name, node.hostname, holders[node.hostname])


def start_slurmd(name: str, hostname: str, holder: int | None = None) -> None:
    """(Re)start slurmd on one node, with a fresh private /tmp (after `vcluster kill`, a reboot)."""
    spec, holders = _holders(name)
    node = spec.find(hostname)
    holder = holders[node.hostname] if holder is None else holder
    base = slurm_dir(name)
    env = {**os.environ, **client_env(name)}
    layer = base / hostname / "tmp"
    shutil.rmtree(layer, ignore_errors=True)  # the node's /tmp starts empty, as after a boot
    _record(name, f"slurmd:{hostname}", _spawn(_enter(holder, node, layer) + [
        "slurmd", "-D", "-f", str(conf_path(name)), "-N", hostname],
        base / hostname / "stdout.log", env))


def runs_slurmd(name: str, hostname: str) -> bool:
    """True when `slurm up` started a slurmd on HOSTNAME (and Slurm was not stopped since)."""
    path = _daemons_file(name)
    return path.exists() and f"slurmd:{hostname}" in json.loads(path.read_text())


def _wait_for(check, timeout: float, message: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise VclusterError(message)
        time.sleep(0.2)


def node_states(name: str) -> dict[str, str]:
    """Node name -> state as sinfo prints it (idle, alloc, down*, ...)."""
    try:
        out = procs.output(["env", *(f"{k}={v}" for k, v in client_env(name).items()), "sinfo", "-h", "-N",
                            "-o", "%N %t"], timeout=20)
    except procs.CommandError:
        return {}
    return dict(line.split()[:2] for line in out.splitlines() if len(line.split()) >= 2)


def wait_idle(name: str, hostnames: list[str], timeout: float = 60) -> None:
    """Wait until sinfo shows every one of HOSTNAMES idle."""
    last: dict[str, str] = {}

    def idle() -> bool:
        nonlocal last
        last = node_states(name)
        return all(last.get(h) == "idle" for h in hostnames)

    try:
        _wait_for(idle, timeout, "")
    except VclusterError:
        raise VclusterError(f"Slurm nodes not idle after {timeout:g} s: {last or 'sinfo answered nothing'} "
                            f"(logs in {slurm_dir(name)})") from None


def stop(name: str, timeout: float = 15) -> list[str]:
    """End every daemon `start` recorded (SIGTERM, then SIGKILL) and remove the slurm folder.
    Returns what would not end (empty when all is gone)."""
    path = _daemons_file(name)
    daemons = json.loads(path.read_text()) if path.exists() else {}
    live = {key: pid for key, (pid, started) in daemons.items() if pids.alive(pid, started)}
    for pid in live.values():
        try:
            os.killpg(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(pids.alive(p, daemons[k][1]) for k, p in live.items()):
        time.sleep(0.1)
    left = []
    for key, pid in live.items():
        if pids.alive(pid, daemons[key][1]):
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            if pids.kill_pids([pid]):
                left.append(f"{key} ({pid})")
    if not left:
        shutil.rmtree(slurm_dir(name), ignore_errors=True)
    return left
