"""Atomic file output: write to a temporary name in the same folder, then rename."""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import IO, Callable, Iterator

__all__ = ["read_regular", "atomic_write", "atomic_path", "default_mode", "stale_temps", "check_target", "built_once",
           "BUILT", "last_lines"]

BUILT = ".pimpi-complete"  # the marker a folder made by built_once holds, written last


def read_regular(path: str | os.PathLike, what: str = "file") -> bytes:
    """The bytes of the user's file `path`, opened without blocking: a FIFO (which would wait
    for a writer for ever), a directory or a device is refused by kind, as ValueError."""
    import stat

    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    with os.fdopen(fd, "rb") as handle:
        mode = os.fstat(handle.fileno()).st_mode
        if not stat.S_ISREG(mode):
            kinds = ((stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISDIR, "a folder"),
                     (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                     (stat.S_ISSOCK, "a socket"))
            kind = next((name for test, name in kinds if test(mode)), "a special file")
            raise ValueError(f"{os.fspath(path)}: is {kind}, not a {what}")
        return handle.read()


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


# File systems that hold no user output: writing there is a mistake (or changes the kernel).
_SPECIAL_FS = {"proc", "sysfs", "devtmpfs", "devpts", "cgroup", "cgroup2", "debugfs", "tracefs",
               "securityfs", "configfs", "pstore", "bpf", "efivarfs", "fusectl", "mqueue", "hugetlbfs",
               "binfmt_misc", "autofs", "rpc_pipefs", "nsfs"}


def built_once(final: Path, build: Callable[[Path], str]) -> Path:
    """FINAL, a cached folder that BUILD(tmp) fills once; later calls reuse it, and a caller that
    comes while another process builds it waits on a lock beside it and then reuses that build.

    BUILD gets an empty folder next to FINAL and returns the text the marker file records. A
    build that fails or is interrupted leaves nothing under FINAL's name; a folder there without
    the marker (an older, broken build) is replaced."""
    if (final / BUILT).exists():
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    with open(final.parent / f".{final.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (final / BUILT).exists():
            return final
        tmp = final.with_name(final.name + ".partial")
        _release_mounts(tmp)  # a build killed half-way (debootstrap) can leave /proc mounted in it
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        try:
            (tmp / BUILT).write_text(build(tmp))
        except BaseException:
            _release_mounts(tmp)
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)
    return final


def _release_mounts(folder: Path) -> None:
    """Unmount (lazily, deepest first) whatever is mounted at or below FOLDER, so it can be removed."""
    inside = str(folder).rstrip("/") + "/"
    points = []
    try:
        with open("/proc/self/mountinfo") as fh:
            for line in fh:
                point = line.split()[4].encode().decode("unicode_escape")
                if point == str(folder) or point.startswith(inside):
                    points.append(point)
    except (OSError, IndexError):
        return
    for point in sorted(points, key=len, reverse=True):
        subprocess.run(["umount", "--lazy", point], capture_output=True, timeout=30, check=False)


def _fs_type(path: Path) -> str:
    """The file system type of the mount holding `path` (from /proc/self/mountinfo; '' unknown)."""
    best, kind = "", ""
    try:
        with open("/proc/self/mountinfo") as fh:
            for line in fh:
                fields = line.split()
                point = fields[4].encode().decode("unicode_escape")
                mine = str(path) == point or str(path).startswith(point.rstrip("/") + "/")
                if mine and len(point) >= len(best):
                    best, kind = point, fields[fields.index("-") + 1]
    except (OSError, ValueError, IndexError):
        return ""
    return kind


def check_target(path: str | os.PathLike, folder: bool = False) -> None:
    """ValueError unless an output can be written at `path` (a file, or a `folder`); writes nothing.

    Refused: an empty path, a folder where a file is needed (and the reverse), a special
    file (device, pipe, socket: renaming onto it would replace it), a missing parent folder
    (a folder target may be created: its nearest existing ancestor counts), a special file
    system (/proc, /sys, /dev), a folder that cannot be written. Writability is tried for
    real (a probe file made and removed), because permission bits lie for root and on
    read-only mounts. Callers add the option's name; this says what is wrong with the path.
    """
    text = os.fspath(path)
    if not str(text).strip():
        raise ValueError("an empty path")
    target = Path(text)
    if target.is_symlink() and not target.exists():
        raise ValueError(f"{text!r} is a broken symbolic link")
    if target.exists():
        if folder and not target.is_dir():
            raise ValueError(f"{text!r} is a file, not a folder")
        if not folder and target.is_dir():
            raise ValueError(f"{text!r} is a folder, not a file")
        if not folder and not target.is_file():
            raise ValueError(f"{text!r} is a special file (device, pipe or socket), not a regular file")
    elif not folder and str(text).endswith(os.sep):
        raise ValueError(f"{text!r} names a folder, a file is needed")
    parent = target if folder and target.is_dir() else target.absolute().parent
    if folder:
        while not parent.exists() and parent.parent != parent:
            parent = parent.parent
    if not parent.exists():
        raise ValueError(f"{text!r}: folder {str(parent)!r} does not exist")
    if not parent.is_dir():
        raise ValueError(f"{text!r}: {str(parent)!r} is not a folder")
    kind = _fs_type(parent.resolve())
    if kind in _SPECIAL_FS:
        raise ValueError(f"{text!r} is on a {kind} file system, not a place for output")
    try:
        fd, name = tempfile.mkstemp(prefix=".pimpi-probe-", dir=parent)
    except OSError as exc:
        raise ValueError(f"{text!r}: folder {str(parent)!r} is not writable ({exc.strerror or exc})") from None
    os.close(fd)
    os.unlink(name)


def last_lines(source: str | os.PathLike | IO[bytes], count: int, keep: Callable[[str], bool] = str.strip,
               window: int = 8192) -> list[str]:
    """The last `count` lines of a file (a path, or a binary file open for reading) that
    `keep` accepts (default: not blank), right-stripped, read from its last `window` bytes
    (a log may be huge); a carriage return ends a line too (progress bars). [] when the
    file cannot be read."""
    try:
        if isinstance(source, (str, os.PathLike)):
            with open(source, "rb") as handle:
                return last_lines(handle, count, keep, window)
        source.seek(0, os.SEEK_END)
        source.seek(max(0, source.tell() - window))
        text = source.read().decode(errors="replace").replace("\r", "\n")
    except OSError:
        return []
    lines = [line.rstrip() for line in text.splitlines() if keep(line)]
    return lines[-count:] if count > 0 else []
