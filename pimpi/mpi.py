"""Lazy access to MPI, so `pimpi --help` and serial code never start it."""

from __future__ import annotations

import os
import secrets
import time
from pathlib import Path
from typing import Any, Callable

__all__ = ["world", "env_rank", "under_mpirun", "library_version", "finalize_together",
           "poll_wait", "quiet_barrier", "root_decides", "agree_error", "agree", "check_shared_folder"]


def world() -> Any:
    """Return MPI.COMM_WORLD, starting MPI on first use."""
    from mpi4py import MPI

    return MPI.COMM_WORLD


def env_rank() -> int:
    """This process's rank from the launcher's environment (0 outside mpirun); starts no MPI."""
    for key in ("OMPI_COMM_WORLD_RANK", "PMIX_RANK", "PMI_RANK"):
        if key in os.environ:
            return int(os.environ[key])
    return 0


def under_mpirun() -> bool:
    """True when this process was started by mpirun/mpiexec (Open MPI, MPICH or Hydra)."""
    keys = ("OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK", "PMI_SIZE", "MPI_LOCALNRANKS")
    return any(key in os.environ for key in keys)


def library_version() -> str:
    """The first line of MPI_Get_library_version, e.g. 'Open MPI v5.0.11, ...'."""
    from mpi4py import MPI

    return MPI.Get_library_version().strip().splitlines()[0]


def finalize_together(comm: Any) -> None:
    """Every rank calls this before all exit non-zero together: finalize, so it is no abort.

    `pimpi`'s entry point turns a non-zero exit into MPI_Abort (right for one rank failing
    alone); when all ranks agree on the outcome, a finalized exit ends the job quietly.
    """
    from mpi4py import MPI

    if not MPI.Is_finalized():
        comm.Barrier()
        MPI.Finalize()


def poll_wait(test: Callable[[], bool], timeout: float | None = None, what: str = "message") -> None:
    """Wait until `test()` is true, sleeping between polls so a waiting rank uses no CPU.

    Open MPI's blocking calls spin; on an oversubscribed Pi (or 2 shared cores) a spinning
    waiter steals the core a working rank needs. Raises TimeoutError after `timeout` s.
    """
    deadline = None if timeout is None else time.monotonic() + timeout
    pause = 0.0001
    while not test():
        if deadline is not None and time.monotonic() > deadline:
            raise TimeoutError(f"no {what} after {timeout:g} s")
        time.sleep(pause)
        pause = min(pause * 1.5, 0.002)


def quiet_barrier(comm: Any, timeout: float | None = None, what: str = "barrier") -> None:
    """A barrier that sleeps instead of spinning (ranks that finished early stay off the CPU)."""
    if comm.size > 1:
        request = comm.Ibarrier()
        poll_wait(request.Test, timeout=timeout, what=what)


def root_decides(comm: Any, value: Any, root: int = 0) -> Any:
    """`root`'s `value` on every rank; the others wait without spinning (the root may be busy)."""
    quiet_barrier(comm, what=f"rank {root}")
    return comm.bcast(value, root=root)


def agree_error(comm: Any, error: str | None) -> str | None:
    """Every rank passes its own error (or None); all get the lowest rank's error, or None.

    Call it before any message of a collective moves: an argument one rank alone refuses
    then stops every rank together instead of leaving the others blocked.
    """
    if comm.size == 1:
        return error
    errors = comm.allgather(error)
    return next((e for e in errors if e is not None), None)


def agree(comm: Any, problem: str) -> None:
    """Raise ValueError on every rank if any rank has a `problem` ('' for none): the first
    one, naming every rank that had one (`renderer 'x' not found ... (on ranks 1, 3)`)."""
    problems = comm.allgather(problem)
    bad = [(r, p) for r, p in enumerate(problems) if p]
    if bad:
        first = bad[0][1]
        ranks = ", ".join(str(r) for r, _ in bad)
        raise ValueError(f"{first} (on rank{'s' if len(bad) > 1 else ''} {ranks})")


def check_shared_folder(comm: Any, folder: Path, hint: str) -> None:
    """ValueError on every rank when a rank cannot see the file rank 0 just put in `folder`
    (the output folder is not on shared storage, or mounted elsewhere)."""
    token = secrets.token_hex(8) if comm.rank == 0 else ""
    marker = Path(folder) / f".pimpi-visible-{comm.bcast(token, root=0)}"
    if comm.rank == 0:
        try:
            marker.write_text(marker.name)
        except OSError:
            pass  # then nobody sees it, and the message below says so
    comm.Barrier()
    try:
        seen = marker.read_text() == marker.name
    except OSError:
        seen = False
    unseen = [r for r, ok in enumerate(comm.allgather(seen)) if not ok]
    comm.Barrier()
    if comm.rank == 0:
        marker.unlink(missing_ok=True)
    if unseen:
        raise ValueError(f"folder {str(folder)!r} of rank 0 is not visible on rank"
                         f"{'s' if len(unseen) > 1 else ''} {', '.join(map(str, unseen))}: {hint}")
