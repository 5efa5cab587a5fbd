"""Rank 0 of the task farm: a server thread for the other ranks, a writer thread, local work.

The server thread is the only one calling MPI while the farm runs (so MPI_THREAD_SERIALIZED
suffices) and polls with sleeps of at most 5 ms, so it costs little CPU; rank 0's main thread
works like every other rank. Results are handed to `on_result` in the writer thread, one
at a time, so saving never blocks serving.
"""

from __future__ import annotations

import queue
import time
import traceback
from typing import Any, Callable

import numpy as np

from pimpi.tasks.pool import Pool
from pimpi.tasks.report import Task, TaskEvent, one_line
from pimpi.tasks.worker import TAG_CTRL, TAG_DATA, as_result

__all__ = ["Server"]

# The scheduler's polls: quick right after a message (others often follow), then doubling
# up to 5 ms. Each wake-up costs rank 0 CPU and takes the GIL from its working thread
# (measured ~30 us; at 2 ms it was a tenth of rank 0's work on 13 ms frames); the workers
# ask for their next chunk one task ahead, so a few ms of reply latency stays hidden.
_FIRST_PAUSE = 0.0002
_MAX_PAUSE = 0.005


class Server:
    """Rank 0: scheduler thread + writer thread + (optionally) working main thread.

    `run_dynamic` starts `writer` and `serve` in threads, calls `work_locally` in the main
    thread when rank 0 works too, then reads `events`, `done_keys`, `busy` and `units`.
    """

    def __init__(self, comm: Any, pool: Pool, work: Callable[[Task], Any],
                 on_result: Callable[[Task, Any, int], None] | None,
                 progress: Callable[[int, int], None] | None, t0: float,
                 status: Any = None) -> None:
        self.comm = comm
        self.status = status  # a pimpi.jobstatus.StatusFile, or None
        self.pool = pool
        self.work = work
        self.on_result = on_result
        self.progress = progress
        self.t0 = t0
        self.events: list[TaskEvent] = []
        self.done_keys: list[str] = []
        self.results: queue.Queue = queue.Queue()
        self.busy = [0.0] * comm.size
        self.units = [0] * comm.size
        self.stopped_ranks: set[int] = set()
        self.thread_error = ""

    # -- results, one at a time, in a writer thread ---------------------------------
    def writer(self) -> None:
        """Thread: hand each result to `on_result`, one at a time, until None is queued.
        A failing `on_result` aborts the pool (the run's error); progress never does."""
        total = len(self.pool.tasks)
        count = 0
        while True:
            item = self.results.get()
            if item is None:
                return
            index, array, rank = item
            task = self.pool.tasks[index]
            try:
                if self.on_result is not None:
                    self.on_result(task, array, rank)
            except Exception as exc:  # noqa: BLE001 - becomes a job error on every rank
                with self.pool.lock:
                    self.pool.abort(f"saving {task.key!r} failed: {one_line(exc)}")
                continue
            count += 1
            if self.progress is not None:
                try:
                    self.progress(count, total)
                except Exception:  # noqa: BLE001 - a progress bar never stops a render
                    pass

    def _record(self, index: int, rank: int, times: tuple[float, float], error: str,
                array: Any, ok: bool) -> None:
        key = self.pool.tasks[index].key
        seconds = times[1] - times[0]
        with self.pool.lock:
            self.events.append(TaskEvent(key, rank, times[0], times[1], ok, error))
            self.busy[rank] += seconds
            if ok:
                self.units[rank] += 1
                self.done_keys.append(key)
                self.pool.finish(index, rank, seconds)
            else:
                self.pool.fail(index, rank, error)
        if self.status is not None:
            self.status.event(key, rank, times[0], times[1], ok, error)
        if ok:
            self.results.put((index, array, rank))

    # -- serving the other ranks ---------------------------------------------------
    def serve(self) -> None:
        """Thread: answer the other ranks until each was told to stop; any exception here
        becomes the run's error instead of leaving ranks waiting."""
        try:
            self._serve()
        except BaseException as exc:  # noqa: BLE001 - reported on every rank
            self.thread_error = one_line(exc)
            traceback.print_exc()
            with self.pool.lock:
                self.pool.abort(self.thread_error)

    def _serve(self) -> None:
        from mpi4py import MPI

        comm = self.comm
        remote = set(range(1, comm.size))
        waiting: set[int] = set()
        status = MPI.Status()
        pause = _FIRST_PAUSE
        while remote - self.stopped_ranks:
            # hand work to ranks that wait for requeued tasks (or tell them to stop)
            for rank in sorted(waiting):
                with self.pool.lock:
                    chunk = self.pool.next_chunk(rank)
                if chunk != []:
                    waiting.discard(rank)
                    self._reply(rank, chunk)
            if not comm.iprobe(source=MPI.ANY_SOURCE, tag=TAG_CTRL, status=status):
                time.sleep(pause)
                pause = min(pause * 2, _MAX_PAUSE)
                continue
            pause = _FIRST_PAUSE
            rank = status.Get_source()
            msg = comm.recv(source=rank, tag=TAG_CTRL)
            kind = msg[0]
            if kind == "ready":
                with self.pool.lock:
                    chunk = self.pool.next_chunk(rank)
                if chunk == []:
                    waiting.add(rank)
                else:
                    self._reply(rank, chunk)
            elif kind == "done":
                _, index, times, header = msg
                array = None
                if header is not None:
                    shape, dtype = header
                    array = np.empty(shape, dtype=np.dtype(dtype))
                    comm.Recv(array, source=rank, tag=TAG_DATA)
                self._record(index, rank, times, "", array, True)
            elif kind == "fail":
                _, index, times, error = msg
                self._record(index, rank, times, error, None, False)
            elif kind == "return":
                with self.pool.lock:
                    self.pool.give_back(msg[1])

    def _reply(self, rank: int, chunk: list[int] | None) -> None:
        if chunk is None:
            self.comm.send(("stop",), dest=rank, tag=TAG_CTRL)
            self.stopped_ranks.add(rank)
        else:
            payload = [(i, self.pool.tasks[i]) for i in chunk]
            self.comm.send(("work", payload), dest=rank, tag=TAG_CTRL)

    # -- rank 0's own share ---------------------------------------------------------
    def work_locally(self) -> None:
        """Rank 0's main thread: take chunks from the pool like a remote rank would."""
        while True:
            with self.pool.lock:
                chunk = self.pool.next_chunk(0)
                while chunk == []:
                    self.pool.lock.wait(timeout=0.05)
                    chunk = self.pool.next_chunk(0)
            if chunk is None:
                return
            for position, index in enumerate(chunk):
                start = time.monotonic()
                try:
                    array = as_result(self.work(self.pool.tasks[index]))
                    error = ""
                except Exception as exc:  # noqa: BLE001 - any failure of one task is reported
                    array, error = None, one_line(exc)
                end = time.monotonic()
                self._record(index, 0, (start - self.t0, end - self.t0), error, array, not error)
                if error:
                    with self.pool.lock:
                        self.pool.give_back(chunk[position + 1:])
                    break
