"""The VM nodes' base disk image: Debian debootstrapped once from this machine's apt sources.

The image holds a Debian kernel, systemd, openssh-server, cloud-init (NoCloud only, like
Raspberry Pi OS), NFS server and client, chrony and Python. It is built once into
``/var/cache/pimpi/vm-<arch>-<suite>/`` (``base.raw`` plus the kernel and a small initrd
for direct boot) and only read afterwards: every node boots a copy-on-write overlay of it.
"""

from __future__ import annotations

import os
import platform
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from pimpi.vcluster.backends.vm import foreignroot, initrd
from pimpi.vcluster.rootfs import host_codename, mirror_for
from pimpi.vcluster.sysrun import VclusterError, run, run_logged
from pimpi.fileio import built_once

__all__ = ["PACKAGES", "IMAGER_PACKAGES", "IMAGER_SUITE", "RECIPE", "Image", "image_dir", "ensure_image", "native", "ARCHES"]

PACKAGES = ["systemd", "systemd-sysv", "udev", "dbus", "kmod", "initramfs-tools", "linux-image-{arch}",
            "openssh-server", "cloud-init", "python3-cffi-backend", "nfs-kernel-server", "nfs-common",
            "chrony", "python3", "python3-venv", "iproute2", "iputils-ping", "procps", "sudo",
            "ca-certificates", "netbase"]
# what Raspberry Pi OS Lite has that plain Debian lacks and a cluster user meets: mDNS (pi0.local)
IMAGER_PACKAGES = ["avahi-daemon", "libnss-mdns"]
IMAGER_SUITE = "trixie"  # what Raspberry Pi Imager writes today (Raspberry Pi OS Trixie, Debian 13)
# what the initrd needs to find a virtio root disk (MODULES=list keeps it ~7 MB, not ~36 MB)
_INITRD_MODULES = ["virtio_pci", "virtio_mmio", "virtio_blk", "virtio_net", "ext4", "crc32c_generic"]
# timers and services a test node does not need at boot (they cost seconds each under emulation)
_MASKED = ["apt-daily.timer", "apt-daily-upgrade.timer", "e2scrub_all.timer", "e2scrub_reap.service",
           "fstrim.timer", "man-db.timer", "dpkg-db-backup.timer", "nfs-server.service",
           "rpcbind.service", "rpcbind.socket", "getty@tty1.service", "systemd-pstore.service",
           # the address is static: nothing to wait for
           "systemd-networkd-wait-online.service",
           # cloud-init runs one stage, `init`, which finds the NoCloud seed itself and does all a
           # seed asks (users, keys, files, hosts, bootcmd); each other stage is one more Python
           # start, ~30 s of CPU under emulation on a 2-core machine shared by three nodes
           "cloud-init-local.service", "cloud-config.service", "cloud-final.service"]
_ENABLED = ["systemd-networkd.service", "systemd-network-generator.service"]
# a foreign root is unpacked, not installed: enable what the packages' scripts would have
_FOREIGN_ENABLED = ["ssh.service", "cloud-init.target", "cloud-init.service", "chrony.service"]
_FOREIGN_EXTRA = ["busybox-static", "mawk"]  # for the natively written initrd; awk by its real name
ARCHES = {"amd64": "x86_64", "arm64": "aarch64"}
RECIPE = 2  # raise when what goes into the image changes
_FOREIGN_RECIPE = 3  # the same for images built without emulation (3: PAM's common-* files)
_SIZE = "3G"  # sparse: the file holds only what is written


@dataclass(frozen=True)
class Image:
    """A built image: the read-only base disk and the kernel + initrd to boot it with."""

    disk: Path
    kernel: Path
    initrd: Path
    arch: str


def image_dir(arch: str, suite: str, imager: bool = False) -> Path:
    """Where the image for ARCH and SUITE lives ($PIMPI_ROOTFS_CACHE overrides the parent); the
    recipe's version is in the name, so a changed recipe builds a new image."""
    recipe = RECIPE if native(arch) else _FOREIGN_RECIPE
    kind = "-pios" if imager else ""
    return Path(os.environ.get("PIMPI_ROOTFS_CACHE", "/var/cache/pimpi")) / f"vm-{arch}-{suite}{kind}-r{recipe}"


def _image(folder: Path, arch: str) -> Image:
    return Image(folder / "base.raw", folder / "vmlinuz", folder / "initrd.img", arch)


def ensure_image(log, arch: str = "amd64", timeout: float = 1800, suite: str = "",
                 imager: bool = False) -> Image:
    """Build the image once (a few minutes for amd64); later calls return the cached one. SUITE
    defaults to this machine's release; IMAGER adds what Raspberry Pi OS Lite has (mDNS)."""
    if arch not in ARCHES:
        raise ValueError(f"unknown --arch {arch!r}; choose one of {', '.join(ARCHES)}")
    suite = suite or host_codename()
    final = image_dir(arch, suite, imager)

    def build(tmp: Path) -> str:
        started = time.monotonic()
        _build(tmp, arch, suite, log, timeout, IMAGER_PACKAGES if imager else [])
        seconds = time.monotonic() - started
        log(f"image {final} ready in {seconds:.0f} s")
        return f"{suite} {arch} built in {seconds:.0f} s\n"

    return _image(built_once(final, build), arch)  # a second `up` waits for the first build


def native(arch: str) -> bool:
    """True when this machine runs ARCH's binaries itself (no emulation needed to build)."""
    return ARCHES[arch] == platform.machine()


def _build(folder: Path, arch: str, suite: str, log, timeout: float, extra: list[str]) -> None:
    mirror = mirror_for(suite)
    root = folder / "rootfs"
    build_log = folder / "build.log"
    include = ",".join(p.format(arch=arch) for p in PACKAGES + extra + ([] if native(arch) else _FOREIGN_EXTRA))
    log(f"debootstrap {suite}/{arch} from {mirror} for the VM image (once; a few minutes, log {build_log})")
    deadline = time.monotonic() + timeout
    run_logged(["debootstrap", "--foreign", "--variant=minbase", f"--arch={arch}", f"--include={include}",
                suite, str(root), mirror], build_log, timeout)
    if native(arch):
        _before_second_stage(root)
        run_logged(["unshare", "--mount", "--propagation", "private", "chroot", str(root),
                    "/debootstrap/debootstrap", "--second-stage"], build_log,
                   max(60.0, deadline - time.monotonic()))
        _configure(root)
    else:
        log(f"unpacking the {arch} packages natively (no emulated install scripts)")
        foreignroot.unpack_all(root, build_log)
        foreignroot.configure(root)
        _configure(root, native=False)
    boot = root / "boot"
    kernels = sorted(boot.glob("vmlinuz-*"))
    if not kernels:
        raise VclusterError(f"the image has no kernel in {boot} (log: {build_log})")
    shutil.copy2(kernels[-1], folder / "vmlinuz")
    if native(arch):
        initrds = sorted(boot.glob("initrd.img-*"))
        if not initrds:
            raise VclusterError(f"the image has no initrd in {boot} (log: {build_log})")
        shutil.copy2(initrds[-1], folder / "initrd.img")
    else:
        release = kernels[-1].name[len("vmlinuz-"):]
        foreignroot.module_index(root, release)
        initrd.write_initrd(root, release, folder / "initrd.img")
    log(f"disk image from {root} (mkfs.ext4 -d, no loop device)")
    run_logged(["mkfs.ext4", "-q", "-F", "-L", "pimpi-root", "-d", str(root), str(folder / "base.raw"), _SIZE],
               build_log, max(60.0, deadline - time.monotonic()))
    os.chmod(folder / "base.raw", 0o444)
    shutil.rmtree(root)


def _put(path: Path, text: str, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    os.chmod(path, mode)


def _before_second_stage(root: Path) -> None:
    """Settings the packages' install scripts must already see (the initrd is built then)."""
    _put(root / "etc/initramfs-tools/conf.d/pimpi.conf", "MODULES=list\nCOMPRESS=gzip\n")
    _put(root / "etc/initramfs-tools/modules.d/pimpi.conf", "\n".join(_INITRD_MODULES) + "\n")
    _put(root / "usr/share/initramfs-tools/modules.d/pimpi.conf", "\n".join(_INITRD_MODULES) + "\n")


def _configure(root: Path, native: bool = True) -> None:
    """Make the installed system a lean, first-boot-ready node image."""
    _put(root / "etc/cloud/cloud.cfg.d/90-pimpi.cfg", "\n".join([
        "# pimpi VM image: the seed comes on a NoCloud disk (label cidata), like Raspberry Pi OS",
        "datasource_list: [NoCloud, None]",
        "# the address is static (kernel ip=, systemd-network-generator): no fallback DHCP",
        "network: {config: disabled}",
        "# only what a node's seed uses: every module costs seconds under emulation",
        "cloud_init_modules: [bootcmd, write-files, set_hostname, update_hostname, update_etc_hosts,",
        "                     users-groups, ssh]",
        "cloud_config_modules: []",
        "cloud_final_modules: []",
        "",
    ]))
    _put(root / "etc/fstab", "LABEL=pimpi-root / ext4 errors=remount-ro 0 1\n")
    _put(root / "etc/machine-id", "")  # every node makes its own at first boot...
    (root / "var/lib/dbus/machine-id").unlink(missing_ok=True)  # ...not dbus's copy of the builder's
    for key in (root / "etc/ssh").glob("ssh_host_*"):
        key.unlink()  # every node gets its own host key (from its seed)
    for deb in (root / "var/cache/apt/archives").glob("*.deb"):
        deb.unlink()
    shutil.rmtree(root / "debootstrap", ignore_errors=True)
    masked = _MASKED
    if (root / "usr/lib/systemd/system/cloud-init-main.service").exists():
        # cloud-init 24.3+ (trixie) runs every stage in one process that waits for each stage's unit
        # to signal it: a masked stage would stall it, and one process costs one Python start anyway
        masked = [u for u in _MASKED if not u.startswith("cloud-")]
    if native:
        run(["chroot", str(root), "systemctl", "enable", *_ENABLED], timeout=60)
        run(["chroot", str(root), "systemctl", "mask", *masked], timeout=60)
    else:  # what the skipped install scripts would have enabled, and ours
        foreignroot.enable_units(root, _FOREIGN_ENABLED + _ENABLED)
        foreignroot.mask_units(root, masked)
