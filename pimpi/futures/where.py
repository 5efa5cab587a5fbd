"""Where an executor's workers are: the ranks `-m pimpi.futures` serves, or local processes."""

from __future__ import annotations

import os
import sys

from pimpi.mpi import under_mpirun

__all__ = ["LOCAL_ENV", "launch_hint", "world_mismatch", "workers_mode", "mark_started", "mark_used",
           "unused_warning"]

LOCAL_ENV = "PIMPI_FUTURES"  # "local": outside mpirun, use this machine's processes
_started = False  # set by `python -m pimpi.futures` before it runs the user's program
_used = False  # set when a cluster executor was made on this job's ranks


def mark_started() -> None:
    """Called by `-m pimpi.futures`: rank 0 runs the program, the other ranks serve it."""
    global _started
    _started = True


def mark_used() -> None:
    """Called when an executor's workers are this job's ranks."""
    global _used
    _used = True


def unused_warning(program: str, size: int) -> str | None:
    """One warning line when `-m pimpi.futures` ran `program` on `size` ranks but it never
    made a cluster executor (it kept the one-machine import): all its work ran on rank 0."""
    if _used or size < 2:
        return None
    return (f"pimpi.futures: warning: {program} never used the cluster executor, so all its work ran on "
            f"rank 0 and the other {size - 1} ranks stayed idle; import ProcessPoolExecutor from pimpi.futures")


def launch_hint(script: str | None = None) -> str:
    """The command that starts this program (`script`, else sys.argv[0]) the right way."""
    script = os.path.basename(script or (sys.argv[0] if sys.argv else "")) or "SCRIPT.py"
    if not script.endswith(".py"):
        script = "SCRIPT.py"
    return f"pimpi run -n N [--hostfile H] -- -m pimpi.futures {script} ARGS"


def _env_size() -> int | None:
    """The job size the launcher announced in the environment (None if it did not)."""
    for key in ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "MPI_LOCALNRANKS"):
        value = os.environ.get(key, "")
        if value.isdigit():
            return int(value)
    return None


def world_mismatch() -> str | None:
    """The 'every process says 0 of 1' trap: mpirun started N processes but mpi4py's MPI
    sees a world of 1 (mpirun of another MPI library). A one-line explanation, or None."""
    size = _env_size()
    if size is None or size <= 1:
        return None
    from mpi4py import MPI

    if MPI.COMM_WORLD.Get_size() != 1:
        return None
    library = MPI.Get_library_version().strip().splitlines()[0].split(",")[0]
    return (f"mpirun started {size} processes but mpi4py's MPI ({library}) sees 1: that mpirun "
            f"belongs to another MPI library; use the mpirun beside this Python (`pimpi run` does)")


def _shared_pool() -> bool:
    """True when mpi4py's shared pool is up (`-m pimpi.futures` or `-m mpi4py.futures`)."""
    if _started:
        return True
    core = sys.modules.get("mpi4py.futures._core")
    return getattr(core, "SharedPool", None) is not None


def workers_mode(fallback: str | None) -> str:
    """'mpi' (the ranks of this job) or 'local' (processes here); RuntimeError saying how to
    start the program when neither applies. `fallback='local'` or PIMPI_FUTURES=local allows
    local processes outside mpirun."""
    if fallback not in (None, "local"):
        raise ValueError(f"fallback must be None or 'local', got {fallback!r}")
    if not under_mpirun():
        if fallback == "local" or os.environ.get(LOCAL_ENV, "") == "local":
            return "local"
        raise RuntimeError(f"pimpi.futures: not started by mpirun, so there are no workers; start it with "
                           f"`{launch_hint()}`, or set {LOCAL_ENV}=local to use this machine's processes")
    mismatch = world_mismatch()
    if mismatch:
        raise RuntimeError(f"pimpi.futures: {mismatch}")
    if not _shared_pool():
        from mpi4py import MPI

        size = MPI.COMM_WORLD.Get_size()
        raise RuntimeError(f"pimpi.futures: this program runs on each of the {size} ranks; start it with "
                           f"`{launch_hint()}` so rank 0 runs it and the other ranks are its workers")
    return "mpi"
