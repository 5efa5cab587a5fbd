"""How a learner's job is contained: every process it starts ends with it, and each rank writes only its folder.

Two layers, each used when this machine has it (`mode()` says which):

- a PID namespace around mpirun (`unshare --pid --fork --kill-child --mount-proc`, so /proc shows its own processes; with
  `--map-current-user` when not root): when mpirun ends, the kernel ends every process
  the job started, whatever session, process group or pipe it holds (a detached child
  keeping a rank's stderr open once made the grade hang);
- bubblewrap around each rank: the whole file system read-only, a private /tmp, the
  grader's folder of all jobs hidden under an empty tmpfs, the reference solutions hidden,
  and writable only the rank's own folder, the job's record folder and MPI's session
  folder. bubblewrap rather than a separate user: it needs no account set up by the
  teacher and no root (Debian lets users make the namespaces it uses), and it hides
  folders a second user could still read.

Without either, the grade still runs (and says so in its integrity column).
"""

from __future__ import annotations

import functools
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

__all__ = ["mode", "job_prefix", "rank_wrapper", "shared_memory", "NOTE"]

NOTE = {"bwrap": "", "pidns": "no bubblewrap: ranks could write outside their folder",
        "none": "no sandbox: no PID namespace and no bubblewrap on this machine"}


def _works(argv: list[str]) -> bool:
    try:
        return subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, timeout=20).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


@functools.lru_cache(maxsize=1)
def job_prefix() -> tuple[str, ...]:
    """The command that puts mpirun in a PID namespace of its own, or () when none can be made."""
    unshare = shutil.which("unshare")
    if unshare is None or os.environ.get("PIMPI_GRADE_SANDBOX") == "none":
        return ()
    prefix = [unshare] + ([] if os.geteuid() == 0 else ["--map-current-user"]) + \
        ["--pid", "--fork", "--kill-child", "--mount-proc"]
    return tuple(prefix) if _works(prefix + ["true"]) else ()


@functools.lru_cache(maxsize=1)
def _bwrap() -> str | None:
    found = shutil.which("bwrap")
    if found is None or os.environ.get("PIMPI_GRADE_SANDBOX") in ("none", "pidns"):
        return None
    return found if _works([found, "--ro-bind", "/", "/", "--dev-bind", "/dev", "/dev", "true"]) else None


def mode() -> str:
    """'bwrap' (PID namespace and a read-only file system per rank), 'pidns' or 'none'."""
    if not job_prefix():
        return "none"
    return "bwrap" if _bwrap() else "pidns"


def shared_memory(folder: str) -> dict[str, str]:
    """Open MPI's settings that put a job's shared-memory files in `folder`: in a PID namespace every
    mpirun is pid 1, so two jobs' default names in /dev/shm (made from that pid) would collide."""
    return {f"OMPI_MCA_{name}_backing_directory": folder for name in ("btl_sm", "osc_sm", "osc_rdma")}


def _runtime_under_tmp() -> list[Path]:
    """The Python installation, the venv and the checkout holding pimpi, where they lie under /tmp
    (which each rank gets empty): bound back read-only, or the rank could not even start Python."""
    import pimpi

    wanted = {Path(sys.prefix).absolute(), Path(sys.base_prefix).resolve(), Path(pimpi.__file__).resolve().parent.parent}
    under = sorted(str(p) for p in wanted if str(p).startswith("/tmp/"))
    return [Path(p) for p in under if not any(p != q and p.startswith(q + "/") for q in under)]


def rank_wrapper(script: Path, work: Path, readable: list[Path], writable: list[Path],
                 hidden: list[Path]) -> list[str] | None:
    """Write `script`: run its arguments in a bubblewrap where only work/rank$RANK and `writable`
    can be written, `hidden` folders look empty but for `readable` (read-only) and the writable
    ones, and no rank sees another's folder; the argv that runs it (None: no bubblewrap)."""
    bwrap = _bwrap()
    if bwrap is None or not job_prefix():
        return None
    q = shlex.quote
    args = ["--ro-bind", "/", "/", "--dev-bind", "/dev", "/dev", "--tmpfs", "/tmp", "--tmpfs", "/dev/shm"]
    for folder in _runtime_under_tmp():  # a venv or checkout in /tmp (CI's clone) stays visible, read-only
        args += ["--ro-bind", str(folder), str(folder)]
    for folder in hidden:
        args += ["--tmpfs", str(folder)]
    for folder in readable:
        args += ["--ro-bind", str(folder), str(folder)]
    for folder in writable:
        args += ["--bind", str(folder), str(folder)]
    mine = f'"{work}/rank$OMPI_COMM_WORLD_RANK"'
    sealed = " ".join(f"--remount-ro {q(str(folder))}" for folder in hidden)  # no private scratch there either
    script.write_text("#!/bin/sh\n# one rank of a graded job: only its own folder writable\n"
                      f"exec {q(bwrap)} {' '.join(q(a) for a in args)} --bind {mine} {mine} {sealed} "
                      f'--die-with-parent -- "$@"\n', encoding="utf-8")
    script.chmod(0o755)
    return [str(script)]
