"""One archive per node platform of the wheels a node installs from, so the node gets them in one copy.

Role mpi_venv used to copy a platform's wheelhouse file by file: one module run per file, each
costing seconds on a slow node. The archive holds the platform folder's wheels (what `pip download`
fetched for that platform), the one pimpi wheel built from the source now (never a pimpi wheel left
in the folder by an earlier build of the same version) and one pip wheel, the newest in that folder:
each node bootstraps pip from its own platform's archive, whatever another platform holds.

    python -m pimpi.provision.wheelpack --folder WHEELHOUSE/cp311-aarch64-glibc2.36 \\
        --pimpi BUILD/pimpi-1.0-py3-none-any.whl --out WHEELHOUSE/cp311-aarch64-glibc2.36-HASH.tar
"""

from __future__ import annotations

import argparse
import re
import sys
import tarfile
from pathlib import Path
from typing import Sequence

from pimpi.fileio import atomic_path

__all__ = ["members", "pack", "main"]

_PIP = re.compile(r"^pip-(\d+(?:\.\d+)*)-")


def _pip_version(path: Path) -> tuple[int, ...]:
    found = _PIP.match(path.name)
    return tuple(int(p) for p in found.group(1).split(".")) if found else ()


def members(folder: str | Path, pimpi_wheel: str | Path) -> list[Path]:
    """The wheels the archive holds, in name order: FOLDER's wheels but pimpi's and all pip wheels
    but the newest, plus PIMPI_WHEEL. ValueError when FOLDER has no pip wheel."""
    folder, pimpi_wheel = Path(folder), Path(pimpi_wheel)
    if not pimpi_wheel.is_file() or not pimpi_wheel.name.startswith("pimpi-"):
        raise ValueError(f"--pimpi {str(pimpi_wheel)!r} is not a pimpi wheel")
    wheels = sorted(folder.glob("*.whl")) if folder.is_dir() else []
    pips = sorted((w for w in wheels if _PIP.match(w.name)), key=_pip_version)
    if not pips:
        raise ValueError(f"--folder {str(folder)!r} has no pip wheel (pip download it for this platform)")
    others = [w for w in wheels if not _PIP.match(w.name) and not w.name.startswith("pimpi-")]
    return sorted([*others, pips[-1], pimpi_wheel], key=lambda p: p.name)


def pack(folder: str | Path, pimpi_wheel: str | Path, out: str | Path) -> list[str]:
    """Write OUT (an uncompressed tar: wheels are zip files already), whole or not at all; the
    member names are returned."""
    chosen = members(folder, pimpi_wheel)
    with atomic_path(out, 0o644) as tmp, tarfile.open(tmp, "w", format=tarfile.GNU_FORMAT) as tar:
        for wheel in chosen:
            info = tar.gettarinfo(str(wheel), arcname=wheel.name)
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            info.mode = 0o644
            with open(wheel, "rb") as data:
                tar.addfile(info, data)
    return [w.name for w in chosen]


def main(argv: Sequence[str] | None = None) -> int:
    """The command line the role runs on the controller; exit 2 on bad arguments."""
    parser = argparse.ArgumentParser(prog="python -m pimpi.provision.wheelpack", description=__doc__.splitlines()[0])
    parser.add_argument("--folder", required=True, help="the platform's wheelhouse folder")
    parser.add_argument("--pimpi", required=True, help="the pimpi wheel to ship")
    parser.add_argument("--out", required=True, help="the archive written")
    args = parser.parse_args(argv)
    try:
        names = pack(args.folder, args.pimpi, args.out)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{args.out}: {len(names)} wheels")
    return 0


if __name__ == "__main__":
    sys.exit(main())
