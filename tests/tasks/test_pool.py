"""The task farm's policy without MPI: order, chunk sizes, retries elsewhere, blocklist."""

from __future__ import annotations

import pytest

from pimpi.tasks.pool import Pool
from pimpi.tasks.report import Task


def _pool(n: int, size: int = 3, retries: int = 0, max_rank_failures: int = 3,
          costs: list[float] | None = None) -> Pool:
    tasks = [Task(f"t{i}", cost=(costs[i] if costs else 1.0)) for i in range(n)]
    pool = Pool(tasks, size, set(range(size)), retries, max_rank_failures, target_seconds=0.5)
    pool.lock.acquire()  # callers hold the lock (the pool notifies waiters); re-entrant
    return pool


def test_longest_first_and_one_task_until_a_rate_is_known() -> None:
    pool = _pool(4, costs=[1.0, 5.0, 3.0, 5.0])
    assert pool.next_chunk(1) == [1]  # ties keep the given order
    assert pool.next_chunk(2) == [3]
    assert pool.next_chunk(0) == [2]


def test_chunks_grow_toward_target_seconds_but_stay_fair() -> None:
    pool = _pool(100)
    first = pool.next_chunk(1)
    pool.finish(first[0], 1, seconds=0.01)  # 10 ms per unit: 50 fit in 0.5 s
    chunk = pool.next_chunk(1)
    assert 1 < len(chunk) <= 99 // (2 * 3)  # a fair share of what is left, not all 50


def test_a_failed_task_is_retried_on_another_rank_only() -> None:
    pool = _pool(1, retries=1)
    [index] = pool.next_chunk(1)
    pool.fail(index, 1, "boom")
    assert pool.next_chunk(1) == []  # rank 1 must wait: another rank can take it
    assert pool.next_chunk(2) == [index]
    pool.finish(index, 2, 0.1)
    assert pool.all_settled() and pool.failed == {}


def test_out_of_retries_fails_for_good() -> None:
    pool = _pool(1, retries=0)
    [index] = pool.next_chunk(0)
    pool.fail(index, 0, "boom")
    assert pool.failed == {"t0": "boom"} and pool.next_chunk(1) is None


def test_a_rank_that_keeps_failing_is_blocklisted() -> None:
    pool = _pool(5, retries=3, max_rank_failures=2)
    for _ in range(2):
        [index] = pool.next_chunk(1)
        pool.fail(index, 1, "bad node")
    assert 1 in pool.blocked and pool.next_chunk(1) is None
    assert pool.next_chunk(2) != []


def test_given_back_tasks_do_not_count_as_attempts() -> None:
    pool = _pool(2)
    chunk = pool.next_chunk(1)
    pool.give_back(chunk)
    assert pool.attempts == [0, 0] and sorted(pool.next_chunk(2)) == chunk


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="duplicate task key 't'"):
        Pool([Task("t"), Task("t")], 1, {0}, 0, 1, 0.5)
    with pytest.raises(ValueError, match="retries"):
        _pool(1, retries=-1)


def test_a_prefetch_waits_when_fewer_tasks_are_left_than_ranks() -> None:
    pool = _pool(5, size=2)
    [first] = pool.next_chunk(0)
    pool.next_chunk(1)
    assert pool.next_chunk(1) == []  # no task finished yet: the longest do not pile up on rank 1
    pool.finish(first, 0, 0.1)
    assert len(pool.next_chunk(1)) == 1  # three left, two ranks: rank 1 may reserve its next
    [mine] = pool.next_chunk(0)
    assert len(pool.heap) == 1
    assert pool.next_chunk(1) == []  # rank 1 still runs tasks: the last one waits for a free rank
    pool.finish(mine, 0, 0.1)
    assert len(pool.next_chunk(0)) == 1  # the rank that is free first takes it
    assert pool.heap == []


def test_a_rank_with_nothing_running_gets_the_last_task() -> None:
    pool = _pool(2, size=2)
    [a] = pool.next_chunk(0)
    pool.finish(a, 0, 0.1)
    assert len(pool.next_chunk(1)) == 1  # nothing of rank 1's runs: it does not wait
