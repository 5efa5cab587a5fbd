"""ClusterExecutor: concurrent.futures' Executor whose workers are the ranks of an MPI job."""

from __future__ import annotations

import concurrent.futures as cf
import threading
import weakref
from typing import Any, Callable, Iterable, Iterator

from pimpi.futures.attempt import local_worker
from pimpi.futures.noted import Noted
from pimpi.futures.where import mark_used, workers_mode

__all__ = ["ClusterExecutor", "ProcessPoolExecutor"]

_runs: "weakref.WeakSet[Any]" = weakref.WeakSet()  # resumable maps still running
_hooked = False


def _finish_runs() -> None:
    """At interpreter exit, before the pools stop: let running resumable maps finish (they
    may still resubmit retries), as Executor.map's submitted work finishes."""
    for run in list(_runs):
        run.join()


def _hook_exit() -> None:
    """Register `_finish_runs` to run before mpi4py's and concurrent.futures' exit hooks (LIFO)."""
    global _hooked
    if not _hooked:
        register = getattr(threading, "_register_atexit", None)
        if register is not None:
            register(_finish_runs)
        _hooked = True


class ClusterExecutor(cf.Executor):
    """An Executor whose workers are the other ranks of a job started with
    `pimpi run -n N -- -m pimpi.futures script.py` (N-1 workers; with one rank, a thread of rank 0).

    Outside mpirun it raises RuntimeError saying how to start the program, unless
    `fallback='local'` (or PIMPI_FUTURES=local) asks for this machine's processes.
    The arguments ProcessPoolExecutor takes are accepted; `max_workers`, `mp_context` and
    `max_tasks_per_child` only matter for local processes (on the cluster, `-n` sets the workers).
    """

    def __init__(self, max_workers: int | None = None, mp_context: Any = None,
                 initializer: Callable[..., Any] | None = None, initargs: tuple = (),
                 max_tasks_per_child: int | None = None, *, fallback: str | None = None) -> None:
        if max_workers is not None and (isinstance(max_workers, bool) or not isinstance(max_workers, int)):
            raise TypeError(f"max_workers must be an int or None, got {max_workers!r}")
        if max_workers is not None and max_workers < 1:
            raise ValueError(f"max_workers must be at least 1, got {max_workers!r}")
        self.mode = workers_mode(fallback)
        if self.mode == "local":
            extra = {"max_tasks_per_child": max_tasks_per_child} if max_tasks_per_child else {}
            self._inner: cf.Executor = cf.ProcessPoolExecutor(max_workers, mp_context, local_worker,
                                                              (initializer, initargs), **extra)
            self._workers = self._inner._max_workers  # type: ignore[attr-defined]
        else:
            from mpi4py.futures import MPIPoolExecutor

            mark_used()
            self._inner = MPIPoolExecutor(max_workers, initializer=initializer, initargs=initargs)
            self._workers = 0
        self._runs: list[Any] = []

    @property
    def num_workers(self) -> int:
        """How many processes run tasks."""
        if not self._workers:
            self._workers = max(1, self._inner.num_workers)  # type: ignore[attr-defined]
        return self._workers

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> cf.Future:
        """Schedule `fn(*args, **kwargs)` on a worker; a Future as concurrent.futures gives
        (an exception keeps its type and gains a note naming the call and the worker)."""
        return self._inner.submit(Noted(fn), *args, **kwargs)

    def map(self, fn: Callable[..., Any], *iterables: Iterable[Any], timeout: float | None = None,
            chunksize: int = 1, journal: Any = None, retries: int | None = None,
            progress: bool | None = None) -> Iterator[Any]:
        """`fn` over the items of `iterables`, results in order, as Executor.map.

        With `journal=PATH` (a folder), `retries=K` or `progress=True` the map is resumable:
        each finished batch of results is recorded in PATH atomically, and the same call
        after a crash, kill or requeue returns the recorded results and computes only the
        rest; an item that raises is retried on another worker up to `retries` times
        (default 1); a worker that failed 3 items gets no more; rank 0 shows a progress line
        (done/total, rate, ETA; `progress=False` hides it). Items that failed for good end
        the iteration with `MapError`, which lists each with its argument and traceback,
        once all other items are done and recorded.
        """
        if journal is None and retries is None and not progress:
            return self._inner.map(Noted(fn), *iterables, timeout=timeout, chunksize=chunksize)
        from pimpi.futures.resumable import MapRun

        run = MapRun(self._inner.submit, self.num_workers, fn, iterables, chunksize=chunksize,
                     journal=journal, retries=1 if retries is None else retries,
                     progress=progress is not False)
        self._runs.append(run)
        _runs.add(run)
        _hook_exit()
        return run.results(timeout)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """As Executor.shutdown; resumable maps finish first (or stop, with cancel_futures)."""
        for run in self._runs:
            if cancel_futures:
                run.stop.set()
            if wait:
                run.join()
        self._inner.shutdown(wait=wait, cancel_futures=cancel_futures)


ProcessPoolExecutor = ClusterExecutor  # the one-line change: import it from pimpi.futures
