"""VM nodes' machines: bring them up on the cluster bridge, and power them off, on and again.

`cluster.py` owns the bridge, the hosts block, the hostfile and the state file for every
kind of node; this module adds what only VM nodes have: the base image, taps, overlays,
NoCloud seeds, QEMU processes, and link shaping done by each guest's own kernel.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

from pimpi.vcluster import rootfs
from pimpi.vcluster.agent import python_bin_dir
from pimpi.vcluster.backends.vm import guest, qemu, vmenv, vmimage
from pimpi.vcluster.backends.vm.seed import Share, meta_data, user_data, write_seed
from pimpi.vcluster.pids import alive, zombie
from pimpi.vcluster.spec import Node, Spec
from pimpi.vcluster.sysrun import VclusterError, run
from pimpi.fileio import atomic_write

__all__ = ["TOOLS", "BOOT_TIMEOUT_S", "build", "shares", "ssh", "running", "stop_all", "shape",
           "kill_jobs", "ready_check", "reboot", "power_cut", "cancel_power_back", "boot", "rss_mb"]

TOOLS = ("qemu-img", "genisoimage", "mkfs.ext4", "debugfs", "debootstrap", "ssh", "ssh-keygen")
BOOT_TIMEOUT_S = 1800.0  # one node under TCG takes ~1-6 min on two cores, far more when they are busy
Record = Callable[[str, object], None]
# numba compiles its kernels at every run (the shared repo is read-only, no cache) and LLVM under
# emulation takes minutes: the render's NumPy kernel gives the same bytes
_GUEST_ENV = {"PIMPI_NO_NUMBA": "1"}
_BOOT_ID = "/proc/sys/kernel/random/boot_id"  # new at every boot: tells a rebooted node from one that never went


def shares(spec: Spec, shared: Path, node: Node | None = None) -> list[Share]:
    """Folders every node sees at the same path: the repo, venv and Python pimpi runs from
    (read-only, so MPI and pimpi match everywhere) and the cluster's shared folder. A node of
    another architecture also mounts its own venv over this one's path (see vmenv)."""
    paths = rootfs.bind_paths()
    if node is not None and not vmimage.native(spec.node_arch(node)) and _venv_path() not in paths:
        paths.append(_venv_path())  # after the repo holding it, so it mounts on top
    found = [Share(f"pimpi{i}", path, False) for i, path in enumerate(paths)]
    return found + [Share(f"pimpi{len(found)}", str(shared), True)]


def _venv_path() -> str:
    import sys

    return str(Path(sys.prefix).absolute())


def ssh(files: dict[str, Path], node: Node) -> guest.Ssh:
    return guest.Ssh(files["key"], files["known_hosts"], node.address)


def ready_check(node_shares: list[Share]) -> str:
    """Ready means: sshd answers and the shared folders are mounted (first boot mounts them late)."""
    return " && ".join(f"mountpoint -q {guest.quote([s.path])}" for s in node_shares) or "true"


def build(spec: Spec, data: dict, record: Record, files: dict[str, Path], env: dict[str, str],
          profile: tuple[float | None, float | None], log: Callable[[str], None]) -> None:
    """Start every VM node and wait until each answers over SSH with its folders mounted."""
    created = data["created"]
    images = {arch: vmimage.ensure_image(log, arch, suite=spec.suite, imager=spec.imager)
              for arch in sorted({spec.node_arch(n) for n in spec.node_list()})}
    accel = {arch: qemu.accelerator(image, log) for arch, image in images.items()}
    record("accel", accel)
    rootfs.make_key(files["key"], f"pimpi-vcluster-{spec.name}")
    public, private = files["key"].with_suffix(".pub").read_text(), files["key"].read_text()
    known, host_keys = [], {}
    for node in spec.node_list():
        layer = files["dir"] / node.hostname
        layer.mkdir(mode=0o700)
        host_key = layer / "ssh_host_ed25519_key"
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"root@{node.hostname}", "-f", str(host_key)])
        host_keys[node.hostname] = (host_key.read_text(), host_key.with_suffix(".pub").read_text())
        known.append(rootfs.host_key_line(node, host_key.with_suffix(".pub")))
    atomic_write(files["known_hosts"], "".join(known), mode=0o644)
    sources = {arch: _foreign_venv(arch, images[arch], files["dir"], log) for arch in images}
    password_hash = _sudo_password(files["dir"] / "sudo_password") if spec.imager else ""
    instance = f"pimpi-{spec.name}-{int(time.time())}"
    for node in spec.node_list():
        arch = spec.node_arch(node)
        layer = files["dir"] / node.hostname
        node_shares = shares(spec, files["shared"], node)
        record("links", node.host_if)
        run(["ip", "tuntap", "add", "dev", node.host_if, "mode", "tap"])
        run(["ip", "link", "set", node.host_if, "master", spec.bridge, "up"])
        qemu.make_overlay(images[arch], layer / "disk.qcow2")
        write_seed(layer / "seed.iso",
                   user_data(spec, node, public, private, host_keys[node.hostname], "".join(known),
                             {**env, **_GUEST_ENV},
                             [str(Path(p)) for p in _path_dirs()], node_shares, password_hash),
                   meta_data(node, f"{instance}-{node.hostname}"))
        argv = qemu.qemu_argv(spec, node, images[arch], accel[arch], layer / "disk.qcow2", layer / "seed.iso",
                            layer / "console.log", node_shares, sources[arch])
        record("vm_argv", {**created.get("vm_argv", {}), node.hostname: argv})
        log(f"node {node.hostname} at {node.address}: {arch} VM ({accel[arch]}), booting")
        pid, started = qemu.start(argv, layer / "qemu.log")
        record("vms", {**created.get("vms", {}), node.hostname: [pid, started]})
    start = time.monotonic()
    boot_s = {}
    for node in spec.node_list():
        # another instruction set is emulated instruction by instruction: about twice as slow to boot
        budget = BOOT_TIMEOUT_S * (1 if vmimage.native(spec.node_arch(node)) else 2)
        left = budget - (time.monotonic() - start)
        ssh(files, node).wait(max(left, 30), ready_check(shares(spec, files["shared"], node)),
                              lambda n=node: running(created, n))
        boot_s[node.hostname] = round(time.monotonic() - start, 1)
        log(f"node {node.hostname} answers over ssh after {boot_s[node.hostname]:.0f} s")
    record("boot_s", boot_s)
    for node in spec.node_list():
        shape(files, node, *profile)


def _sudo_password(path: Path) -> str:
    """The --imager user's password (made once, kept in the state folder for `-K`); its crypt hash."""
    import secrets

    if not path.exists():
        atomic_write(path, secrets.token_urlsafe(12) + "\n", mode=0o600)
    return run(["openssl", "passwd", "-6", "-stdin"], input=path.read_text().strip(), timeout=30).strip()


def _foreign_venv(arch: str, image: vmimage.Image, state_dir: Path, log: Callable[[str], None]) -> dict[str, str]:
    """For nodes that cannot run this machine's binaries: their own venv, seen at this venv's path."""
    if vmimage.native(arch):
        return {}
    prefix = vmenv.prepare(arch, image.disk, state_dir / f"venv-{arch}", log)
    return {_venv_path(): str(prefix)}


def _path_dirs() -> list[str]:
    return [python_bin_dir()]


def running(created: dict, node: Node) -> bool:
    pid, started = created.get("vms", {}).get(node.hostname, [0, None])
    return alive(pid, started) and not zombie(pid)  # a cut node's QEMU may wait to be reaped


def rss_mb(created: dict, node: Node) -> float | None:
    """Resident memory of the node's QEMU process, MB (None when it is not running)."""
    if not running(created, node):
        return None
    pid = created["vms"][node.hostname][0]
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return None


def stop_all(created: dict) -> list[str]:
    """Power off every VM node (QEMU ended), first ending any power-back timer; the errors, if any."""
    errors = []
    for hostname in list(created.get("power_back", {})):
        try:
            cancel_power_back(created, hostname)
        except VclusterError as exc:
            errors.append(f"{hostname}: {exc}")
    for hostname, (pid, started) in created.get("vms", {}).items():
        try:
            qemu.stop(pid, started)
        except VclusterError as exc:
            errors.append(f"{hostname}: {exc}")
    return errors


def shape(files: dict[str, Path], node: Node, delay_s: float | None, rate_bps: float | None) -> None:
    """Delay each way and rate on the node's link, applied by the guest's kernel (netem, tbf)."""
    ssh(files, node).run(guest.shape_script(delay_s, rate_bps), timeout=60)


def kill_jobs(files: dict[str, Path], node: Node) -> int:
    """End everything started in the node over ssh (a crash of the jobs); how many processes."""
    return int(ssh(files, node).run(guest.kill_script(), timeout=60).strip() or 0)


def reboot(files: dict[str, Path], created: dict, node: Node, node_shares: list[Share]) -> float:
    """A clean reboot (systemctl reboot; QEMU stays, the guest restarts); seconds until back."""
    link = ssh(files, node)
    boot_id = link.run(f"cat {_BOOT_ID}", timeout=60).strip()
    start = time.monotonic()
    link.answers("systemctl reboot", timeout=20)  # the connection may drop before it answers
    back = f'test "$(cat {_BOOT_ID})" != {boot_id} && {ready_check(node_shares)}'
    link.wait(BOOT_TIMEOUT_S, back, lambda: running(created, node))
    return time.monotonic() - start


def power_cut(created: dict, node: Node) -> None:
    """Pull the plug: QEMU is killed at once; what the guest had not written to disk is lost."""
    if not running(created, node):
        raise VclusterError(f"node {node.hostname} is already off (pimpi vcluster boot {node.hostname})")
    pid, started = created["vms"][node.hostname]
    qemu.stop(pid, started)  # SIGTERM: QEMU stops at once, the guest gets no shutdown


def cancel_power_back(created: dict, hostname: str) -> None:
    """End NODE's power-back timer if it still waits (it may have booted the node already)."""
    pid, started = created.get("power_back", {}).pop(hostname, [0, None])
    if pid:
        qemu.stop(pid, started, grace=10.0)


def boot(files: dict[str, Path], created: dict, node: Node, node_shares: list[Share],
         record: Record) -> float:
    """Power the node on again (same disk overlay and seed); seconds until it answers over ssh."""
    cancel_power_back(created, node.hostname)
    if running(created, node):
        raise VclusterError(f"node {node.hostname} is already running")
    argv = created["vm_argv"][node.hostname]
    pid, started = qemu.start(argv, files["dir"] / node.hostname / "qemu.log")
    record("vms", {**created.get("vms", {}), node.hostname: [pid, started]})
    start = time.monotonic()
    ssh(files, node).wait(BOOT_TIMEOUT_S, ready_check(node_shares), lambda: running(created, node))
    return time.monotonic() - start
