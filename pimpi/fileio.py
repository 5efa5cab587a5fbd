"""Atomic file output: write to a temporary name in the same folder, then rename."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Iterator

__all__ = ["atomic_write", "atomic_path", "default_mode", "stale_temps"]


def _umask() -> int:
    """The process umask, read without changing it: os.umask sets it for every thread at
    once, and a writer thread (render's rank 0) may create files meanwhile."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0)  # no /proc (not Linux): the classic read-and-restore
    os.umask(mask)
    return mask


def default_mode() -> int:
    """The mode an ordinary new file gets here: 0o666 less the process umask."""
    return 0o666 & ~_umask()


def _temp_prefix(name: str) -> str:
    return f".{name}."


def stale_temps(folder: str | os.PathLike, name_glob: str = "*") -> list[Path]:
    """Temporary files `atomic_path` left in `folder` for targets matching `name_glob`
    (a run killed with SIGKILL cannot remove them); callers delete them before a rerun."""
    return sorted(Path(folder).glob(_temp_prefix(name_glob) + "*.tmp*"))


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, mode: int | None = None, *,
                overwrite: bool = True) -> Iterator[Path]:
    """Yield a temporary path beside `path`; when the block ends without error it is renamed
    onto `path` (readers see the old file or the whole new one), otherwise it is removed.

    For outputs written by other code or programs (ffmpeg, savefig, a PNG encoder). The
    temporary name keeps `path`'s extension (ffmpeg and matplotlib pick the format by it).
    The file gets `mode`, or what any new file gets under the umask (mkstemp alone would
    leave 0600). A block that decides not to publish raises; the temporary file goes away.
    With `overwrite=False` an existing `path` is kept and FileExistsError raised instead.
    """
    target = Path(path)
    fd, name = tempfile.mkstemp(prefix=_temp_prefix(target.name), suffix=".tmp" + target.suffix,
                                dir=target.parent if str(target.parent) else ".")
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.chmod(tmp, default_mode() if mode is None else mode)
        if overwrite:
            os.replace(tmp, target)
        else:
            os.link(tmp, target)  # fails if target exists, atomically
            tmp.unlink()
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write(path: str | os.PathLike, data: bytes | str, mode: int | None = None, *,
                 overwrite: bool = True) -> Path:
    """Write `data` (str as UTF-8) to `path` atomically; see `atomic_path` for the mode
    and `overwrite`."""
    payload = data.encode("utf-8") if isinstance(data, str) else data
    target = Path(path)
    with atomic_path(target, mode, overwrite=overwrite) as tmp:
        with open(tmp, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
    return target
