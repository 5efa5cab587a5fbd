"""The task farm's policy: which tasks a rank gets next, retries, blocklist (pure, no MPI)."""

from __future__ import annotations

import collections
import heapq
import threading
from typing import Hashable, Sequence

from pimpi.tasks.report import Task

__all__ = ["Pool", "RetryPolicy", "BLOCK_AFTER"]

BLOCK_AFTER = 3  # failed tasks after which a worker gets no more (the default everywhere)


class RetryPolicy:
    """Retries and the blocklist, for any scheduler: which workers a task failed on, whether
    it gets another try, which workers get no more work.

    Tasks and workers are any hashable names (task indices and MPI ranks in the farm, item
    indices and worker ids in pimpi.futures). A task that failed gets another try while it
    failed at most `retries` times; a worker that failed `block_after` tasks is blocked.
    """

    def __init__(self, retries: int, block_after: int = BLOCK_AFTER) -> None:
        if retries < 0:
            raise ValueError(f"retries must be >= 0, got {retries}")
        if block_after < 1:
            raise ValueError(f"block_after must be >= 1, got {block_after}")
        self.retries = retries
        self.block_after = block_after
        self.failed_on: dict[Hashable, list[Hashable]] = collections.defaultdict(list)
        self.failures: collections.Counter = collections.Counter()  # worker -> failed tasks
        self.blocked: set[Hashable] = set()

    def fail(self, task: Hashable, worker: Hashable, blame: bool = True) -> bool:
        """`task` failed on `worker` (`blame=False`: the worker is unknown, so not counted
        toward its block); True while the task may be tried again."""
        self.failed_on[task].append(worker)
        if blame:
            self.failures[worker] += 1
            if self.failures[worker] >= self.block_after:
                self.blocked.add(worker)
        return len(self.failed_on[task]) <= self.retries

    def tried(self, task: Hashable) -> list[Hashable]:
        """The workers `task` failed on, in order."""
        return list(self.failed_on.get(task, ()))

    def avoid(self, *tasks: Hashable) -> set[Hashable]:
        """Workers that should not run `tasks`: the blocked ones and those they failed on."""
        return self.blocked.union(*(self.failed_on.get(t, ()) for t in tasks))


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
        if max_rank_failures < 1:
            raise ValueError(f"max_rank_failures must be >= 1, got {max_rank_failures}")
        self.policy = RetryPolicy(retries, max_rank_failures)
        self.lock = threading.Condition()
        self.tasks = list(tasks)
        # longest expected first; ties keep the given order
        self.heap = [(-float(t.cost), i) for i, t in enumerate(self.tasks)]
        heapq.heapify(self.heap)
        self.size = size
        self.workers = set(workers)
        self.target = target_seconds
        self.attempts = [0] * len(self.tasks)
        self.in_flight: dict[int, int] = {}  # task index -> rank
        self.finished = 0
        self.failed: dict[str, str] = {}
        self.sec_per_cost: float | None = None
        self.stopped = False
        self.error = ""

    @property
    def blocked(self) -> set[int]:
        """Ranks that get no more work."""
        return self.policy.blocked  # type: ignore[return-value]

    def rank_failures(self, rank: int) -> int:
        """How many tasks failed on `rank`."""
        return self.policy.failures[rank]

    # -- called with the lock held ------------------------------------------------
    def _eligible(self, rank: int, index: int) -> bool:
        if rank not in self.policy.failed_on.get(index, ()):
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
        return any(any(r not in self.policy.failed_on.get(i, ()) for r in live) for _, i in self.heap) or bool(self.in_flight)

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
        again = self.policy.fail(index, rank)
        task = self.tasks[index]
        if again and any(
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
