"""The worker side of a resumable map: run a batch of items, report each one's outcome."""

from __future__ import annotations

import os
import pickle
import socket
import sys
import time
import traceback
from typing import Any, Callable, Sequence

__all__ = ["worker_id", "run_batch", "DECLINE_PAUSE"]

DECLINE_PAUSE = 0.2  # s a worker waits before handing back a batch it must not run

# One outcome per item: (index, True, result) or (index, False, exception, traceback text).
Outcome = tuple


_LOCAL = False  # set in local worker processes: they are no MPI rank, whatever they inherited


def local_worker(initializer: Callable[..., Any] | None, initargs: tuple) -> None:
    """Initializer of local worker processes: mark them local, then run the user's own."""
    global _LOCAL
    _LOCAL = True
    if initializer is not None:
        initializer(*initargs)


def worker_id() -> str:
    """'rank 3 on pi2 (pid 812)' under MPI, 'pid 1234 on laptop' for a local process.

    A local worker forked from a process in which MPI runs inherits its MPI state; it is
    still no rank, so it is named by its pid (the pid also keeps such workers apart).
    """
    host = socket.gethostname()
    mpi = sys.modules.get("mpi4py.MPI")
    if not _LOCAL and mpi is not None and mpi.Is_initialized() and not mpi.Is_finalized():
        return f"rank {mpi.COMM_WORLD.Get_rank()} on {host} (pid {os.getpid()})"
    return f"pid {os.getpid()} on {host}"


def _portable(exc: BaseException) -> BaseException:
    """`exc` if it survives pickling, else a RuntimeError carrying its type and message."""
    try:
        pickle.loads(pickle.dumps(exc))
        return exc
    except Exception:  # noqa: BLE001 - any failure: send a plain copy instead
        return RuntimeError(f"{type(exc).__name__}: {exc}")


def run_batch(fn: Callable[..., Any], batch: Sequence[tuple[int, tuple[Any, ...]]],
              avoid: frozenset[str]) -> tuple[str, list[Outcome] | None]:
    """(this worker, outcomes) for `batch` of (index, args); (this worker, None) when this
    worker is in `avoid` (it failed these items before, or failed too often): the caller
    gives the batch to another worker."""
    me = worker_id()
    if me in avoid:
        time.sleep(DECLINE_PAUSE)  # let a worker that may run it take the next request
        return me, None
    outcomes: list[Outcome] = []
    for index, args in batch:
        try:
            outcomes.append((index, True, fn(*args)))
        except Exception as exc:  # noqa: BLE001 - reported per item; BaseException ends the job
            text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
            outcomes.append((index, False, _portable(exc), text))
    return me, outcomes
