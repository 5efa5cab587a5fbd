"""The task farm's policy: which tasks a rank gets next, retries, blocklist (pure, no MPI)."""

from __future__ import annotations

import heapq
import threading
from typing import Sequence

from pimpi.tasks.report import Task

__all__ = ["Pool"]


class Pool:
    """Rank 0's bookkeeping: the queue, chunk sizes, retries and the blocklist.

    Pure policy, no MPI: the server thread and rank 0's working thread call it with
    `lock` held (a `threading.Condition`, notified whenever work comes back or ends), and
    the unit tests drive it directly. Tasks are named by their index in `tasks`.

    * `next_chunk(rank)` hands out the longest expected tasks first; once the seconds per
      unit of cost are measured, a chunk grows toward `target_seconds` of work but never
      beyond a fair share of what is left (guided self-scheduling), so the tail stays short.
      A rank asking while its own tasks still run (the workers' prefetch) waits until a
      first task finished and whenever fewer tasks are left than live ranks: whoever is
      free first takes them, as in a shared queue, instead of one rank holding a long
      task behind its own while another rank idles.
    * `fail(index, rank, error)` queues the task again for ANOTHER rank while it has
      retries left; a rank with `max_rank_failures` failures gets no more work.
    """

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
        if self._prefetch_waits(rank):
            return []
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

    def _prefetch_waits(self, rank: int) -> bool:
        """True when `rank` still runs a task and should not reserve another yet: before
        any task finished (the first ones are the longest: two on one rank make the tail)
        or when fewer are left than live ranks."""
        if rank not in self.in_flight.values():
            return False
        return self.sec_per_cost is None or len(self.heap) < len(self.workers - self.blocked)

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
        """Task `index` succeeded on `rank` in `seconds` (which refines the chunk budget)."""
        self.in_flight.pop(index, None)
        self.finished += 1
        cost = max(float(self.tasks[index].cost), 1e-9)
        rate = seconds / cost
        self.sec_per_cost = rate if self.sec_per_cost is None else 0.7 * self.sec_per_cost + 0.3 * rate
        self.lock.notify_all()

    def fail(self, index: int, rank: int, error: str) -> None:
        """Task `index` failed on `rank`: queue it for another rank, or fail it for good."""
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
        """Stop handing out work; `error` becomes the run's error (the first one wins)."""
        self.stopped = True
        self.error = self.error or error
        self.lock.notify_all()

    def all_settled(self) -> bool:
        """True when nothing is queued or running (or the pool was stopped)."""
        return self.stopped or (not self.heap and not self.in_flight)
