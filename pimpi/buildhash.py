"""Which build of pimpi this is: a hash of its own files, so a change without a new version number shows.

The hash covers what the wheel carries (the package's Python files and package data, by path and
content), so the source tree on the controller and the package a node installed from a wheel of that
tree give the same hash. Role mpi_venv builds and installs by it; `pimpi doctor` compares it.

    python -m pimpi.buildhash            # the installed pimpi
    python -m pimpi.buildhash SRC        # a source tree (SRC/pimpi)
    python -m pimpi.buildhash WHEEL      # a built wheel (pimpi-*.whl)
"""

from __future__ import annotations

import hashlib
import sys
import zipfile
from pathlib import Path
from typing import Iterable

__all__ = ["build_hash", "wheel_hash", "main"]

# The files setup.cfg puts in the wheel: packages (*.py) and package_data.
SUFFIXES = (".py", ".json", ".txt", ".pov", ".tmpl")
LENGTH = 12  # hex digits shown and compared: enough to tell builds apart


def _digest(files: Iterable[tuple[str, bytes]]) -> str:
    """The hash of (path inside the package, content) pairs, in path order."""
    digest = hashlib.sha256()
    for name, data in sorted(files):
        if name.endswith(SUFFIXES) and "__pycache__" not in name.split("/"):
            digest.update(name.encode() + b"\0" + hashlib.sha256(data).digest())
    return digest.hexdigest()[:LENGTH]


def build_hash(package: str | Path | None = None) -> str:
    """The hash of the pimpi package folder PACKAGE (default: the one imported here)."""
    folder = Path(package) if package is not None else Path(__file__).resolve().parent
    if not (folder / "__init__.py").is_file():
        raise ValueError(f"{str(folder)!r} is not a pimpi package folder (no __init__.py)")
    return _digest((p.relative_to(folder).as_posix(), p.read_bytes()) for p in folder.rglob("*") if p.is_file())


def wheel_hash(wheel: str | Path) -> str:
    """The hash a node shows once it has installed WHEEL (what the wheel holds, not what the tree held:
    a stale build/ folder can add files)."""
    with zipfile.ZipFile(wheel) as zf:
        return _digest((n.removeprefix("pimpi/"), zf.read(n)) for n in zf.namelist()
                       if n.startswith("pimpi/") and not n.endswith("/"))


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) > 1:
        print("usage: python -m pimpi.buildhash [SOURCE_TREE | WHEEL]", file=sys.stderr)
        return 2
    try:
        if args and args[0].endswith(".whl"):
            print(wheel_hash(args[0]))
        else:
            print(build_hash(Path(args[0]) / "pimpi" if args else None))
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
