"""A minimal initrd written natively for a foreign-architecture VM node: busybox, the disk drivers, /init.

Debian's initramfs-tools would have to run the target's own binaries (emulated); this
one only needs files: the target's static busybox, the kernel modules that reach a virtio
disk with ext4 (in dependency order, read with modinfo), and a shell script that loads
them, mounts the first virtio disk and switches to its /sbin/init.
"""

from __future__ import annotations

import gzip
import io
import stat
import subprocess
from pathlib import Path

from pimpi.vcluster.sysrun import VclusterError
from pimpi.fileio import atomic_write

__all__ = ["MODULES", "module_order", "init_script", "write_initrd"]

MODULES = ["virtio_mmio", "virtio_pci", "virtio_blk", "crc32c_generic", "ext4"]


def _find(tree: Path, name: str) -> Path | None:
    for candidate in {name, name.replace("_", "-"), name.replace("-", "_")}:
        found = sorted(tree.rglob(f"{candidate}.ko"))
        if found:
            return found[0]
    return None


def module_order(root: Path, release: str, wanted: list[str] = MODULES) -> list[Path]:
    """The .ko files WANTED needs, dependencies first (modules built into the kernel are skipped)."""
    tree = root / "lib/modules" / release / "kernel"
    order: list[Path] = []

    def add(name: str, seen: tuple[str, ...] = ()) -> None:
        path = _find(tree, name)
        if path is None or path in order or name in seen:
            return  # built in (or not needed on this kernel)
        out = subprocess.run(["modinfo", "-F", "depends", str(path)], capture_output=True, text=True,
                             timeout=30, check=False)
        if out.returncode != 0:
            raise VclusterError(f"modinfo {path.name}: {out.stderr.strip() or 'failed'}")
        for dep in filter(None, out.stdout.strip().split(",")):
            add(dep, seen + (name,))
        order.append(path)

    for name in wanted:
        add(name)
    return order


def init_script(modules: list[str]) -> str:
    """/init: load the drivers, wait for the first virtio disk, mount it, hand over to systemd."""
    return "\n".join([
        "#!/bin/busybox sh",
        "/bin/busybox --install -s /bin",
        "mkdir -p /proc /sys /dev /newroot",
        "mount -t devtmpfs devtmpfs /dev",
        "mount -t proc proc /proc",
        "mount -t sysfs sysfs /sys",
        *[f"insmod /{m}" for m in modules],
        "i=0",
        "while [ ! -b /dev/vda ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done",
        "mount -t ext4 -o rw /dev/vda /newroot || { echo 'pimpi initrd: cannot mount /dev/vda'; sh; }",
        "umount /proc /sys",
        "mount --move /dev /newroot/dev",
        "exec switch_root /newroot /sbin/init",
        "",
    ])


class _Cpio:
    """newc cpio writer (the initramfs format)."""

    def __init__(self) -> None:
        self.out = io.BytesIO()
        self.ino = 1

    def add(self, name: str, mode: int, data: bytes = b"", rdev: tuple[int, int] = (0, 0)) -> None:
        encoded = name.encode() + b"\0"
        fields = [self.ino, mode, 0, 0, 1, 0, len(data), 0, 0, rdev[0], rdev[1], len(encoded), 0]
        self.ino += 1
        self.out.write(b"070701" + b"".join(f"{v:08x}".encode() for v in fields) + encoded)
        self.out.write(b"\0" * (-(110 + len(encoded)) % 4))
        self.out.write(data)
        self.out.write(b"\0" * (-len(data) % 4))

    def finish(self) -> bytes:
        self.add("TRAILER!!!", 0)
        return self.out.getvalue()


def write_initrd(root: Path, release: str, path: Path) -> int:
    """Write the gzip'd initrd for the kernel RELEASE of the (foreign) root ROOT; its size."""
    busybox = root / "usr/bin/busybox"
    if not busybox.is_file():
        raise VclusterError(f"no static busybox in {root} (the image needs busybox-static)")
    modules = module_order(root, release)
    cpio = _Cpio()
    for folder in ("bin", "dev", "proc", "sys", "newroot", "lib", "lib/modules"):
        cpio.add(folder, stat.S_IFDIR | 0o755)
    cpio.add("dev/console", stat.S_IFCHR | 0o600, rdev=(5, 1))
    cpio.add("bin/busybox", stat.S_IFREG | 0o755, busybox.read_bytes())
    names = []
    for module in modules:
        name = f"lib/modules/{module.name}"
        cpio.add(name, stat.S_IFREG | 0o644, module.read_bytes())
        names.append(name)
    cpio.add("init", stat.S_IFREG | 0o755, init_script(names).encode())
    data = gzip.compress(cpio.finish(), compresslevel=6)
    atomic_write(path, data)
    return len(data)
