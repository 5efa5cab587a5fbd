"""A map for long runs: results journaled as they arrive, failing items retried on other workers."""

from __future__ import annotations

import collections
import concurrent.futures as cf
import sys
import threading
import time
import traceback
from typing import Any, Callable, Iterable, Iterator, Sequence

from pimpi.futures.attempt import run_batch
from pimpi.futures.failures import Failure, MapError
from pimpi.journal import ResultJournal, function_name, item_key
from pimpi.tasks.pool import BLOCK_AFTER, RetryPolicy

__all__ = ["MapRun", "BLOCK_AFTER"]

ANYWHERE_AFTER = 30.0  # s a batch may go on being declined (no other worker took it) before any worker runs it


def _check_int(name: str, value: Any, least: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {value!r}")
    if value < least:
        raise ValueError(f"{name} must be at least {least}, got {value!r}")
    return value


class MapRun:
    """One resumable map: a driver thread submits batches, retries and journals; `results()`
    yields in input order. Build it with `ClusterExecutor.map(..., journal=..., retries=...)`."""

    def __init__(self, submit: Callable[..., cf.Future], workers: int, fn: Callable[..., Any],
                 iterables: Sequence[Iterable[Any]], *, chunksize: int = 1, journal: Any = None,
                 retries: int = 1, progress: bool = True) -> None:
        if not callable(fn):
            raise TypeError(f"fn must be callable, got {fn!r}")
        self.chunksize = _check_int("chunksize", chunksize, 1)
        self.retries = _check_int("retries", retries, 0)
        self.policy = RetryPolicy(self.retries, BLOCK_AFTER)  # the task farm's: retries and blocklist
        self.submit, self.workers, self.fn = submit, max(1, workers), fn
        self.name = function_name(fn).rsplit(".", 1)[-1] if "<" not in function_name(fn) else repr(fn)
        self.items = [tuple(args) for args in zip(*iterables)]
        self.journal = ResultJournal.open(journal, fn) if journal is not None else None
        self.keys = [item_key(args) for args in self.items] if self.journal else [None] * len(self.items)
        self.done: dict[int, Any] = {}
        recorded = self.journal.load() if self.journal else {}
        for index, key in enumerate(self.keys):
            if key is not None and key in recorded:
                self.done[index] = recorded[key]
        self.resumed = len(self.done)
        self.todo = [i for i in range(len(self.items)) if i not in self.done]
        self.failed: dict[int, Failure] = {}
        self.reason = ""
        self.crash: BaseException | None = None
        self.stop = threading.Event()
        self.cond = threading.Condition()
        self.finished = False
        self.progress = None
        if progress and self.todo:
            from pimpi.render.progress import Progress

            if self.resumed:
                sys.stderr.write(f"map {self.name}: {self.resumed} of {len(self.items)} items recorded in"
                                 f" {str(journal)!r}, computing the other {len(self.todo)}\n")
            self.progress = Progress(len(self.todo), label=f"map {self.name}", unit="items")
        self.thread = threading.Thread(target=self._drive, name=f"pimpi-map-{self.name}")
        self.thread.start()

    # --- the driver thread -------------------------------------------------------------
    def _drive(self) -> None:
        try:
            self._loop()
        except BaseException as exc:  # noqa: BLE001 - handed to the caller by results()
            self.crash = exc
        finally:
            if self.progress is not None:
                self.progress.close()
            with self.cond:
                self.finished = True
                self.cond.notify_all()

    def _loop(self) -> None:
        queue = collections.deque(self.todo[i:i + self.chunksize] for i in range(0, len(self.todo), self.chunksize))
        in_flight: dict[cf.Future, list[int]] = {}
        last: dict[int, tuple[BaseException, str]] = {}  # each item's latest exception and traceback
        declined: dict[int, float] = {}  # a batch's first item -> when it was first declined
        anywhere: set[int] = set()  # batches (first items) declined so often that any worker runs them
        policy = self.policy
        window = 2 * self.workers
        count = 0
        if self.progress is not None:
            self.progress(0)
        while queue or in_flight:
            if self.stop.is_set() or len(policy.blocked) >= self.workers:
                self.reason = (": the executor was shut down" if self.stop.is_set() else
                               f": every worker failed {policy.block_after} items and gets no more")
                for batch in queue:
                    for index in batch:
                        self._give_up(index, *last.get(index, (RuntimeError("not run" + self.reason), "")))
                queue.clear()
            while queue and len(in_flight) < window:
                batch = queue.popleft()
                avoid = policy.avoid(*batch)
                if len(avoid) >= self.workers:  # nowhere else to go: any worker not blocked
                    avoid = set(policy.blocked)
                if batch[0] in anywhere:
                    avoid = set()
                args = [(i, self.items[i]) for i in batch]
                in_flight[self.submit(run_batch, self.fn, args, frozenset(avoid))] = batch
            if not in_flight:
                continue
            finished, _ = cf.wait(in_flight, timeout=1.0, return_when=cf.FIRST_COMPLETED)
            for future in finished:
                batch = in_flight.pop(future)
                worker, outcomes = self._outcomes(future, batch)
                if outcomes is None:  # declined by a worker that must not run it
                    first = declined.setdefault(batch[0], time.monotonic())
                    if time.monotonic() - first > ANYWHERE_AFTER:  # no worker takes it: any may run it
                        anywhere.add(batch[0])
                    queue.appendleft(batch)
                    continue
                ok: dict[int, Any] = {}
                for outcome in outcomes:
                    index = outcome[0]
                    if outcome[1]:
                        ok[index] = outcome[2]
                        continue
                    last[index] = (outcome[2], outcome[3])
                    if policy.fail(index, worker, blame=worker != "?"):
                        queue.append([index])
                    else:
                        self._give_up(index, outcome[2], outcome[3])
                if self.journal is not None:
                    self.journal.record({self.keys[i]: v for i, v in ok.items() if self.keys[i] is not None})
                with self.cond:
                    self.done.update(ok)
                    self.cond.notify_all()
                count += len(ok)
                if self.progress is not None and ok:
                    self.progress(count)

    def _outcomes(self, future: cf.Future, batch: list[int]) -> tuple[str, list | None]:
        """(worker, outcomes) of a finished batch; a batch whose task itself failed (its result
        could not travel back, the executor broke) fails each of its items."""
        try:
            return future.result()
        except Exception as exc:  # noqa: BLE001 - becomes the items' failure
            text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
            return "?", [(index, False, exc, text) for index in batch]

    def _give_up(self, index: int, exc: BaseException, text: str) -> None:
        failure = Failure(index, self.items[index], exc, text, self.policy.tried(index))
        with self.cond:
            self.failed[index] = failure
            self.cond.notify_all()

    # --- the caller's side -------------------------------------------------------------
    def error(self) -> BaseException:
        """The exception that ends the map: the driver's crash, or every item that failed."""
        if self.crash is not None:
            return self.crash
        failures = [self.failed[i] for i in sorted(self.failed)]
        return MapError(self.name, len(self.items), failures, self.reason)

    def results(self, timeout: float | None = None) -> Iterator[Any]:
        """Results in input order; MapError (after every other item finished) at the first
        item that failed for good; TimeoutError when `timeout` s pass from now."""
        deadline = None if timeout is None else time.monotonic() + timeout
        for index in range(len(self.items)):
            with self.cond:
                while index not in self.done and index not in self.failed and not self.finished:
                    left = None if deadline is None else deadline - time.monotonic()
                    if left is not None and left <= 0:
                        raise cf.TimeoutError(f"map {self.name}: item {index} not done after {timeout:g} s")
                    self.cond.wait(0.5 if left is None else min(left, 0.5))
                value = self.done.get(index, self)
            if value is self:
                self.thread.join()
                raise self.error()
            yield value
        self.thread.join()
        if self.crash is not None:
            raise self.crash

    def join(self) -> None:
        """Wait for the driver thread to finish."""
        self.thread.join()
