"""One VM node's QEMU process: its command line, starting it, ending it, and which accelerator works.

Nodes boot the image's kernel directly (``-kernel/-initrd``) with a serial console, their
static address on the kernel command line (``ip=``, turned into a systemd-networkd file
by systemd-network-generator), ``net.ifnames=0`` so the interface is ``eth0`` as on a Pi,
a copy-on-write overlay of the base disk, the NoCloud seed, a tap on the cluster bridge
and the host folders shared over virtio 9p. KVM is used only when a kernel really boots
under it (checked once by booting, verdict cached); otherwise TCG emulation.
"""

from __future__ import annotations

import json
import os
import platform
import signal
import subprocess
import time
from pathlib import Path

from pimpi import procs
from pimpi.vcluster.pids import alive, start_time, zombie
from pimpi.vcluster.backends.vm.seed import Share
from pimpi.vcluster.spec import Node, Spec
from pimpi.vcluster.sysrun import VclusterError, run
from pimpi.vcluster.backends.vm.vmimage import Image
from pimpi.fileio import atomic_write

__all__ = ["MEMORY_MB", "qemu_binary", "accelerator", "make_overlay", "qemu_argv", "start", "stop",
           "mac_address", "kernel_cmdline"]

MEMORY_MB = 1024
_QEMU = {"amd64": "qemu-system-x86_64", "arm64": "qemu-system-aarch64"}
_KVM_PROBE_S = 30.0  # a kernel that works under KVM prints its first lines in about a second


def qemu_binary(arch: str) -> str:
    return _QEMU[arch]


def mac_address(node: Node) -> str:
    """A stable locally administered MAC from the node's address (52:54:00 is QEMU's prefix)."""
    octets = [int(x) for x in node.address.split(".")]
    return "52:54:00:{:02x}:{:02x}:{:02x}".format(*octets[1:])


def kernel_cmdline(spec: Spec, node: Node, arch: str) -> str:
    """Root on the first virtio disk, serial console, eth0 with the node's static address.

    mitigations=off: an emulated CPU is not open to Meltdown or Spectre, but a guest kernel that
    believes the CPU model (Nehalem is on the list) isolates its page tables at every system call,
    and each such switch empties QEMU's software TLB: Python started about a third slower."""
    console = "ttyAMA0" if arch == "arm64" else "ttyS0"
    mask = str(spec.network.netmask)
    gateway = spec.head_address if spec.nat else ""
    return (f"root=LABEL=pimpi-root rw console={console} net.ifnames=0 "
            f"ip={node.address}::{gateway}:{mask}:{node.hostname}:eth0:off "
            "quiet loglevel=3 systemd.show_status=false mitigations=off")


def make_overlay(image: Image, disk: Path) -> None:
    """The node's own disk: a qcow2 overlay of the read-only base (writes stay in the overlay)."""
    run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw", "-b", str(image.disk), str(disk)], timeout=60)


def _machine(arch: str, accel: str) -> list[str]:
    if arch == "arm64":
        cpu = "host" if accel == "kvm" else "cortex-a72"
        return ["-M", "virt", "-cpu", cpu, "-accel", "kvm" if accel == "kvm" else "tcg,tb-size=256"]
    if accel == "kvm":
        return ["-M", "pc", "-cpu", "host", "-accel", "kvm"]
    return ["-M", "pc", "-cpu", "Nehalem", "-accel", "tcg,tb-size=256"]


def qemu_argv(spec: Spec, node: Node, image: Image, accel: str, disk: Path, seed: Path, console: Path,
              shares: list[Share], sources: dict[str, str] | None = None) -> list[str]:
    """The full QEMU command line for NODE; SOURCES maps a share's path in the guest to the host
    folder seen there when it is another one (an arm64 node's venv)."""
    sources = sources or {}
    argv = [qemu_binary(image.arch), "-name", f"pimpi-{spec.name}-{node.hostname}",
            *_machine(image.arch, accel), "-smp", "1", "-m", str(MEMORY_MB),
            "-nodefaults", "-no-user-config", "-display", "none", "-serial", f"file:{console}",
            "-rtc", "base=utc",
            "-kernel", str(image.kernel), "-initrd", str(image.initrd),
            "-append", kernel_cmdline(spec, node, image.arch),
            "-drive", f"file={disk},if=virtio,format=qcow2,discard=unmap",
            "-drive", f"file={seed},if=virtio,format=raw,readonly=on",
            "-netdev", f"tap,id=net0,ifname={node.host_if},script=no,downscript=no",
            "-device", f"virtio-net-pci,netdev=net0,mac={mac_address(node)}"]
    for share in shares:
        argv += ["-virtfs", f"local,path={sources.get(share.path, share.path)},mount_tag={share.tag},security_model=none"
                            + ("" if share.writable else ",readonly=on")]
    return argv


def start(argv: list[str], log: Path) -> tuple[int, int]:
    """Start QEMU in its own session (it outlives this command); (pid, start time)."""
    with open(log, "ab") as out:
        proc = procs.start(argv, stdout=out, stderr=subprocess.STDOUT)
    time.sleep(0.5)
    if proc.poll() is not None:
        tail = log.read_text(errors="replace").strip().splitlines()[-1:]
        raise VclusterError(f"{argv[0]} exited at once: {tail[0] if tail else f'exit {proc.returncode}'}")
    started = start_time(proc.pid)
    if started is None:
        raise VclusterError(f"{argv[0]} exited right after starting (see {log})")
    return proc.pid, started


def stop(pid: int, started: int | None, grace: float = 5.0) -> None:
    """End a node's QEMU (SIGTERM, then SIGKILL): the power goes off, the disk keeps what was written."""
    for sig, wait_s in ((signal.SIGTERM, grace), (signal.SIGKILL, 10.0)):
        if not alive(pid, started):
            return
        try:
            os.killpg(pid, sig)  # QEMU leads its own group (procs.start)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline and alive(pid, started) and not zombie(pid):
            time.sleep(0.05)
    if alive(pid, started) and not zombie(pid):
        raise VclusterError(f"QEMU process {pid} would not end")


def _accel_cache(image: Image) -> Path:
    return image.disk.parent / "accel.json"


def accelerator(image: Image, log) -> str:
    """'kvm' when this image's kernel really boots under KVM here, else 'tcg'. Decided once by
    booting (PVM hosts have /dev/kvm, yet stock kernels hang there) and cached with the
    host kernel and QEMU it was measured on; $PIMPI_VM_ACCEL=tcg|kvm overrides."""
    forced = os.environ.get("PIMPI_VM_ACCEL", "")
    if forced:
        if forced not in ("tcg", "kvm"):
            raise ValueError(f"PIMPI_VM_ACCEL={forced!r}: use tcg or kvm")
        return forced
    host_arch = platform.machine()
    if image.arch in ("amd64",) and host_arch != "x86_64" or image.arch == "arm64" and host_arch != "aarch64":
        return "tcg"
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return "tcg"
    key = {"host_kernel": platform.release(), "qemu": qemu_binary(image.arch),
           "image": str(image.kernel), "image_mtime": int(image.kernel.stat().st_mtime)}
    cache = _accel_cache(image)
    try:
        saved = json.loads(cache.read_text())
        if saved.get("key") == key:
            return saved["accel"]
    except (OSError, ValueError):
        pass
    verdict = "kvm" if _boots_under_kvm(image) else "tcg"
    log(f"KVM {'boots' if verdict == 'kvm' else 'does not boot'} this kernel here: nodes use {verdict}")
    atomic_write(cache, json.dumps({"key": key, "accel": verdict}) + "\n")
    return verdict


def _boots_under_kvm(image: Image) -> bool:
    """Boot the kernel under KVM with no root disk: a working one reaches its init quickly."""
    console = image.disk.parent / "kvm-probe.log"
    console.unlink(missing_ok=True)
    argv = [qemu_binary(image.arch), *_machine(image.arch, "kvm"), "-m", "512", "-nodefaults",
            "-no-user-config", "-display", "none", "-no-reboot", "-serial", f"file:{console}",
            "-kernel", str(image.kernel), "-initrd", str(image.initrd),
            "-append", "console=ttyS0 panic=-1 root=/dev/nonexistent rootdelay=0"]
    proc = procs.start(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + _KVM_PROBE_S
    booted = False
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            text = console.read_text(errors="replace") if console.exists() else ""
            if "Run /init as init process" in text or "Freeing unused kernel" in text:
                booted = True
                break
            time.sleep(0.2)
    finally:
        procs.end_group(proc)
    return booted
