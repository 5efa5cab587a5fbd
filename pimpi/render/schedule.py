"""Dynamic task-pull scheduling over MPI: longest first, adaptive chunks, retries, rank 0 works too.

The API other render commands build on (stable):

    tasks = [Task("f0001", cost=3.0, data=1), ...]
    report = run_dynamic(comm, tasks, work, on_result=save, retries=1)

* `work(task) -> numpy.ndarray | None` runs on whichever rank got the task (rank 0
  included). Raising any `Exception` (or `TaskFailed`) marks that attempt failed: the task
  is queued again for ANOTHER rank, up to `retries` more times; a rank that failed
  `max_rank_failures` tasks gets no more work.
* A returned array travels to rank 0 as a buffer (a tiny pickled header with shape and
  dtype, then `Send` of the raw bytes) and is handed to `on_result(task, array, rank)` on
  rank 0, in a writer thread, one call at a time. So a cluster without shared storage still
  gets every result on rank 0. `None` results are allowed (the work wrote its own output).
* Control messages (task descriptions, headers) are pickled: they are a few hundred bytes.
* Tasks are handed out longest `cost` first. When tasks are short, several are sent
  together: the chunk grows toward `target_seconds` of measured work, and never exceeds a
  fair share of what is left (guided self-scheduling), so the tail stays short.
* A rank asks for its next chunk when the last task of the current one starts, so the
  answer is there when it ends, and sends results with Isend: the round trip to rank 0
  hides behind work (400 tasks of 10 ms on 2 ranks: 2.07 s, ideal 2.00 s).
* Rank 0 works as well: a scheduler thread serves the other ranks (MPI_THREAD_MULTIPLE or
  SERIALIZED; only that thread calls MPI while the job runs) and polls with short sleeps,
  so it costs almost no CPU; rank 0's main thread renders. Without thread support rank 0
  only schedules (and on one rank it just works through the list). Waiting ranks poll
  with sleeps too: Open MPI's blocking calls spin, which on shared cores steals the CPU
  the working ranks need.
* Only rank 0's `tasks` matter (other ranks may pass `[]`); every rank gets the same
  `ScheduleReport` back. A fatal error in `on_result` stops the job and is raised as
  `RuntimeError` on every rank.
"""

from __future__ import annotations

import heapq
import queue
import threading
import time
import traceback
from dataclasses import asdict, dataclass
from typing import Any, Callable, Optional, Sequence

import numpy as np

from pimpi.mpi import poll_wait

__all__ = [
    "Task",
    "TaskFailed",
    "TaskEvent",
    "RankStats",
    "ScheduleReport",
    "run_dynamic",
    "poll_wait",
]

_TAG_CTRL = 71
_TAG_DATA = 72


@dataclass(frozen=True)
class Task:
    """One unit of work: a unique `key`, an expected relative `cost`, small picklable `data`."""

    key: str
    cost: float = 1.0
    data: Any = None


class TaskFailed(Exception):
    """Raise from `work` to fail a task with a clean one-line reason (no traceback kept)."""


@dataclass
class TaskEvent:
    """One attempt of one task: where it ran and when (seconds since the job's start)."""

    key: str
    rank: int
    start: float
    end: float
    ok: bool
    error: str = ""


@dataclass
class RankStats:
    """What one rank did: units finished, time busy in `work`, time idle, failures."""

    rank: int
    units: int = 0
    busy: float = 0.0
    idle: float = 0.0
    failures: int = 0
    blocked: bool = False
    cpu: float = 0.0  # CPU seconds of the whole process during the run (threads included)


@dataclass
class ScheduleReport:
    """The outcome of a run: per-rank stats, every attempt (for a Gantt chart), failures."""

    size: int
    wall: float
    ranks: list[RankStats]
    events: list[TaskEvent]
    done: list[str]
    failed: dict[str, str]  # key -> last error, for tasks that failed for good
    rank0_works: bool
    error: str = ""

    @property
    def imbalance(self) -> float:
        """max busy / mean busy over the ranks that worked (1.0 is perfect)."""
        busy = [r.busy for r in self.ranks if r.rank > 0 or self.rank0_works]
        if not busy or sum(busy) <= 0:
            return 1.0
        return max(busy) / (sum(busy) / len(busy))

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON."""
        data = asdict(self)
        data["imbalance"] = self.imbalance
        return data


def _recv_ctrl(comm: Any, source: int, status: Any = None) -> Any:
    """Receive one pickled control message, waiting politely."""
    from mpi4py import MPI

    st = MPI.Status() if status is None else status
    poll_wait(lambda: comm.iprobe(source=source, tag=_TAG_CTRL, status=st), what="control message")
    return comm.recv(source=st.Get_source(), tag=_TAG_CTRL)


def _as_result(value: Any) -> Optional[np.ndarray]:
    if value is None:
        return None
    if not isinstance(value, np.ndarray):
        raise TypeError(f"work() must return a numpy array or None, got {type(value).__name__}")
    return np.ascontiguousarray(value)


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, TaskFailed):
        return str(exc) or "failed"
    text = f"{type(exc).__name__}: {exc}"
    return text.splitlines()[0] if text else type(exc).__name__


class _Pool:
    """Rank 0's bookkeeping: the queue, chunk sizes, retries and the blocklist (thread-safe)."""

    def __init__(self, tasks: Sequence[Task], size: int, workers: set[int], retries: int,
                 max_rank_failures: int, target_seconds: float) -> None:
        keys = [t.key for t in tasks]
        if len(set(keys)) != len(keys):
            dup = next(k for k in keys if keys.count(k) > 1)
            raise ValueError(f"duplicate task key {dup!r}")
        if retries < 0:
            raise ValueError(f"retries must be >= 0, got {retries}")
        if max_rank_failures < 1:
            raise ValueError(f"max_rank_failures must be >= 1, got {max_rank_failures}")
        self.lock = threading.Condition()
        self.tasks = list(tasks)
        # longest expected first; ties keep the given order
        self.heap = [(-float(t.cost), i) for i, t in enumerate(self.tasks)]
        heapq.heapify(self.heap)
        self.size = size
        self.workers = set(workers)
        self.retries = retries
        self.max_rank_failures = max_rank_failures
        self.target = target_seconds
        self.attempts = [0] * len(self.tasks)
        self.failed_on: list[set[int]] = [set() for _ in self.tasks]
        self.in_flight: dict[int, int] = {}  # task index -> rank
        self.rank_failures = {r: 0 for r in range(size)}
        self.blocked: set[int] = set()
        self.finished = 0
        self.failed: dict[str, str] = {}
        self.sec_per_cost: float | None = None
        self.stopped = False
        self.error = ""

    # -- called with the lock held ------------------------------------------------
    def _eligible(self, rank: int, index: int) -> bool:
        if rank not in self.failed_on[index]:
            return True
        return len(self.workers) == 1  # nobody else could retry it

    def _remaining(self) -> int:
        return len(self.heap)

    def _chunk_budget(self) -> tuple[int, float]:
        """How many tasks at most, and how much cost, one request may take."""
        live = max(1, len(self.workers - self.blocked))
        fair = max(1, self._remaining() // (2 * live))
        if self.sec_per_cost is None or self.sec_per_cost <= 0:
            return 1, float("inf")
        return fair, self.target / self.sec_per_cost

    def next_chunk(self, rank: int) -> list[int] | None:
        """Task indices for `rank`; [] means wait; None means stop.

        A rank is told to stop only when none of its tasks is still running, so every
        result it sends is received by this run (none is left for the next one).
        """
        if self.stopped or rank in self.blocked:
            return [] if rank in self.in_flight.values() else None
        if not self.heap:
            return [] if self.in_flight else None
        max_n, max_cost = self._chunk_budget()
        chunk: list[int] = []
        skipped: list[tuple[float, int]] = []
        cost = 0.0
        while self.heap and len(chunk) < max_n:
            neg_cost, index = heapq.heappop(self.heap)
            if not self._eligible(rank, index):
                skipped.append((neg_cost, index))
                continue
            if chunk and cost + (-neg_cost) > max_cost:
                heapq.heappush(self.heap, (neg_cost, index))
                break
            chunk.append(index)
            cost += -neg_cost
        for item in skipped:
            heapq.heappush(self.heap, item)
        if not chunk:
            # everything left already failed here: wait if someone else can take it
            if self._others_can_take(rank):
                return []
            self._fail_unplaceable()
            return self.next_chunk(rank)
        for index in chunk:
            self.in_flight[index] = rank
            self.attempts[index] += 1
        return chunk

    def _others_can_take(self, rank: int) -> bool:
        live = self.workers - self.blocked - {rank}
        return any(any(r not in self.failed_on[i] for r in live) for _, i in self.heap) or bool(self.in_flight)

    def _fail_unplaceable(self) -> None:
        """Tasks no live rank may run any more fail for good."""
        live = self.workers - self.blocked
        keep = []
        for neg_cost, index in self.heap:
            if any(self._eligible(r, index) for r in live):
                keep.append((neg_cost, index))
            else:
                self.failed.setdefault(self.tasks[index].key, "no rank left to retry it")
        self.heap = keep
        heapq.heapify(self.heap)

    def finish(self, index: int, rank: int, seconds: float) -> None:
        self.in_flight.pop(index, None)
        self.finished += 1
        cost = max(float(self.tasks[index].cost), 1e-9)
        rate = seconds / cost
        self.sec_per_cost = rate if self.sec_per_cost is None else 0.7 * self.sec_per_cost + 0.3 * rate
        self.lock.notify_all()

    def fail(self, index: int, rank: int, error: str) -> None:
        self.in_flight.pop(index, None)
        self.failed_on[index].add(rank)
        self.rank_failures[rank] += 1
        if self.rank_failures[rank] >= self.max_rank_failures:
            self.blocked.add(rank)
        task = self.tasks[index]
        if self.attempts[index] <= self.retries and any(
            self._eligible(r, index) for r in self.workers - self.blocked
        ):
            heapq.heappush(self.heap, (-float(task.cost), index))
        else:
            self.failed[task.key] = error
        if not (self.workers - self.blocked):
            for _, i in self.heap:
                self.failed.setdefault(self.tasks[i].key, "every rank was blocklisted")
            self.heap = []
        self.lock.notify_all()

    def give_back(self, indices: list[int]) -> None:
        """Unstarted tasks of a chunk go back to the queue (not counted as attempts)."""
        for index in indices:
            if self.in_flight.pop(index, None) is not None:
                self.attempts[index] -= 1
                heapq.heappush(self.heap, (-float(self.tasks[index].cost), index))
        self.lock.notify_all()

    def abort(self, error: str) -> None:
        self.stopped = True
        self.error = self.error or error
        self.lock.notify_all()

    def all_settled(self) -> bool:
        return self.stopped or (not self.heap and not self.in_flight)


def _quiet_barrier(comm: Any) -> None:
    """A barrier that sleeps instead of spinning (ranks that finished early stay off the CPU)."""
    request = comm.Ibarrier()
    poll_wait(request.Test, what="barrier")


def _worker_loop(comm: Any, work: Callable[[Task], Any], t0: float) -> None:
    """Ranks > 0: ask rank 0 for chunks, run them, send results back.

    The next chunk is asked for when the last task of the current one starts, so the
    answer is waiting when it ends (the round trip hides behind work). Result buffers go
    out with Isend: the rank renders on while rank 0 picks them up.
    """
    from mpi4py import MPI

    sending: list[tuple[Any, np.ndarray]] = []  # (request, buffer) until delivered
    comm.send(("ready",), dest=0, tag=_TAG_CTRL)
    stale = False  # the chunk on its way was asked for before a failure here
    while True:
        msg = _recv_ctrl(comm, 0)
        if msg[0] == "stop":
            break
        payload = msg[1]
        if stale:  # rank 0 may have blocklisted us since: hand it back, ask afresh
            comm.send(("return", [i for i, _ in payload]), dest=0, tag=_TAG_CTRL)
            comm.send(("ready",), dest=0, tag=_TAG_CTRL)
            stale = False
            continue
        asked = False
        for position, (index, task) in enumerate(payload):
            if position == len(payload) - 1:
                comm.send(("ready",), dest=0, tag=_TAG_CTRL)  # prefetch the next chunk
                asked = True
            start = time.monotonic()
            try:
                result = _as_result(work(task))
                error = ""
            except Exception as exc:  # noqa: BLE001 - any failure of one task is reported
                result, error = None, _one_line(exc)
            end = time.monotonic()
            times = (start - t0, end - t0)
            if error:
                comm.send(("fail", index, times, error), dest=0, tag=_TAG_CTRL)
                rest = [i for i, _ in payload[position + 1:]]
                if rest:  # a failing rank may be blocklisted now: hand the rest back
                    comm.send(("return", rest), dest=0, tag=_TAG_CTRL)
                stale = asked
                break
            if result is None:
                comm.send(("done", index, times, None), dest=0, tag=_TAG_CTRL)
            else:
                comm.send(("done", index, times, (result.shape, result.dtype.str)), dest=0, tag=_TAG_CTRL)
                sending.append((comm.Isend(result, dest=0, tag=_TAG_DATA), result))
            sending = [(req, buf) for req, buf in sending if not req.Test()]
        if not asked:
            comm.send(("ready",), dest=0, tag=_TAG_CTRL)
    if sending:
        requests = [req for req, _ in sending]
        poll_wait(lambda: MPI.Request.Testall(requests), what="result delivery")


class _Rank0:
    """Rank 0: scheduler thread + writer thread + (optionally) working main thread."""

    def __init__(self, comm: Any, pool: _Pool, work: Callable[[Task], Any],
                 on_result: Callable[[Task, Any, int], None] | None,
                 progress: Callable[[int, int], None] | None, t0: float) -> None:
        self.comm = comm
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
                    self.pool.abort(f"saving {task.key!r} failed: {_one_line(exc)}")
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
        if ok:
            self.results.put((index, array, rank))

    # -- serving the other ranks ---------------------------------------------------
    def serve(self) -> None:
        try:
            self._serve()
        except BaseException as exc:  # noqa: BLE001 - reported on every rank
            self.thread_error = _one_line(exc)
            traceback.print_exc()
            with self.pool.lock:
                self.pool.abort(self.thread_error)

    def _serve(self) -> None:
        from mpi4py import MPI

        comm = self.comm
        remote = set(range(1, comm.size))
        waiting: set[int] = set()
        status = MPI.Status()
        pause = 0.0001
        while remote - self.stopped_ranks:
            # hand work to ranks that wait for requeued tasks (or tell them to stop)
            for rank in sorted(waiting):
                with self.pool.lock:
                    chunk = self.pool.next_chunk(rank)
                if chunk != []:
                    waiting.discard(rank)
                    self._reply(rank, chunk)
            if not comm.iprobe(source=MPI.ANY_SOURCE, tag=_TAG_CTRL, status=status):
                time.sleep(pause)
                pause = min(pause * 1.5, 0.002)
                continue
            pause = 0.0001
            rank = status.Get_source()
            msg = comm.recv(source=rank, tag=_TAG_CTRL)
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
                    comm.Recv(array, source=rank, tag=_TAG_DATA)
                self._record(index, rank, times, "", array, True)
            elif kind == "fail":
                _, index, times, error = msg
                self._record(index, rank, times, error, None, False)
            elif kind == "return":
                with self.pool.lock:
                    self.pool.give_back(msg[1])

    def _reply(self, rank: int, chunk: list[int] | None) -> None:
        if chunk is None:
            self.comm.send(("stop",), dest=rank, tag=_TAG_CTRL)
            self.stopped_ranks.add(rank)
        else:
            payload = [(i, self.pool.tasks[i]) for i in chunk]
            self.comm.send(("work", payload), dest=rank, tag=_TAG_CTRL)

    # -- rank 0's own share ---------------------------------------------------------
    def work_locally(self) -> None:
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
                    array = _as_result(self.work(self.pool.tasks[index]))
                    error = ""
                except Exception as exc:  # noqa: BLE001 - any failure of one task is reported
                    array, error = None, _one_line(exc)
                end = time.monotonic()
                self._record(index, 0, (start - self.t0, end - self.t0), error, array, not error)
                if error:
                    with self.pool.lock:
                        self.pool.give_back(chunk[position + 1:])
                    break


def _thread_ok() -> bool:
    from mpi4py import MPI

    return MPI.Query_thread() >= MPI.THREAD_SERIALIZED


def run_dynamic(
    comm: Any,
    tasks: Sequence[Task],
    work: Callable[[Task], Any],
    *,
    on_result: Callable[[Task, Any, int], None] | None = None,
    retries: int = 0,
    max_rank_failures: int = 3,
    progress: Callable[[int, int], None] | None = None,
    target_seconds: float = 0.5,
    rank0_works: bool = True,
) -> ScheduleReport:
    """Run `work` over `tasks` on every rank of `comm` by task pull; see the module docstring.

    Collective: every rank of `comm` must call it. Returns the same report on every rank.
    """
    if target_seconds <= 0:
        raise ValueError(f"target_seconds must be > 0, got {target_seconds}")
    comm = comm.Dup()  # a private channel: no message of this run can reach another
    try:
        return _run_dynamic(comm, tasks, work, on_result, retries, max_rank_failures,
                            progress, target_seconds, rank0_works)
    finally:
        comm.Free()


def _run_dynamic(comm: Any, tasks: Sequence[Task], work: Callable[[Task], Any],
                 on_result: Callable[[Task, Any, int], None] | None, retries: int,
                 max_rank_failures: int, progress: Callable[[int, int], None] | None,
                 target_seconds: float, rank0_works: bool) -> ScheduleReport:
    size, rank = comm.size, comm.rank
    comm.Barrier()
    t0 = time.monotonic()
    cpu0 = time.process_time()
    if rank != 0:
        _worker_loop(comm, work, t0)
        cpu = time.process_time() - cpu0
        _quiet_barrier(comm)
        comm.gather(cpu, root=0)
        report = comm.bcast(None, root=0)
        if report.error:
            raise RuntimeError(report.error)
        return report

    works_here = rank0_works and (size == 1 or _thread_ok())
    workers = set(range(1, size)) | ({0} if works_here else set())
    try:
        pool = _Pool(tasks, size, workers, retries, max_rank_failures, target_seconds)
    except ValueError as exc:
        pool = _Pool([], size, workers, 0, 1, target_seconds)
        with pool.lock:
            pool.abort(str(exc))
    boss = _Rank0(comm, pool, work, on_result, progress, t0)
    writer = threading.Thread(target=boss.writer, name="pimpi-results", daemon=True)
    writer.start()
    server = None
    if size > 1:
        server = threading.Thread(target=boss.serve, name="pimpi-scheduler", daemon=True)
        server.start()
    try:
        if works_here:
            boss.work_locally()
    finally:
        if server is not None:
            server.join()
        boss.results.put(None)
        writer.join()
    wall = time.monotonic() - t0
    cpus = [time.process_time() - cpu0]
    if size > 1:
        _quiet_barrier(comm)
        cpus = comm.gather(cpus[0], root=0)
    ranks = []
    for r in range(size):
        stats = RankStats(r, boss.units[r], boss.busy[r], 0.0, pool.rank_failures[r], r in pool.blocked)
        stats.idle = max(0.0, wall - stats.busy) if r in workers else 0.0
        stats.cpu = cpus[r]
        ranks.append(stats)
    failed = dict(pool.failed)
    if pool.stopped:
        done = set(boss.done_keys)
        for task in pool.tasks:
            if task.key not in done:
                failed.setdefault(task.key, "not run: the job stopped")
    report = ScheduleReport(size, wall, ranks, sorted(boss.events, key=lambda e: e.start),
                            boss.done_keys, failed, works_here, pool.error or boss.thread_error)
    if size > 1:
        report = comm.bcast(report, root=0)
    if report.error:
        raise RuntimeError(report.error)
    return report
