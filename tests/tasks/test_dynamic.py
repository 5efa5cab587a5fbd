"""run_dynamic: every task once, results on rank 0 as buffers, retries elsewhere, rank 0 works."""

from __future__ import annotations

import numpy as np
import pytest

from pimpi.tasks import Task, TaskFailed, run_dynamic
from pimpi.testing import assert_all_ranks


def _square(task: Task) -> np.ndarray:
    return np.full((3, 2), task.data, dtype=np.int64) ** 2


@pytest.mark.mpi
def test_every_task_result_reaches_rank0(comm) -> None:
    tasks = [Task(f"t{i}", cost=float(i % 5 + 1), data=i) for i in range(23)] if comm.rank == 0 else []
    got: dict[str, np.ndarray] = {}
    ticks: list[int] = []
    report = run_dynamic(comm, tasks, _square, on_result=lambda t, a, r: got.__setitem__(t.key, a),
                         progress=lambda done, total: ticks.append(done))
    ok = sorted(report.done) == sorted(f"t{i}" for i in range(23)) and not report.failed
    if comm.rank == 0:
        ok = ok and len(got) == 23 and all(
            np.array_equal(got[f"t{i}"], np.full((3, 2), i * i)) for i in range(23))
        ok = ok and ticks[-1] == 23
    ok = ok and sum(r.units for r in report.ranks) == 23
    assert_all_ranks(comm, ok, f"done={len(report.done)} failed={report.failed}")


@pytest.mark.mpi(min_size=2)
def test_rank0_also_works(comm) -> None:
    import time

    def slow(task: Task) -> None:
        time.sleep(0.02)
        return None

    tasks = [Task(f"t{i}") for i in range(8 * comm.size)] if comm.rank == 0 else []
    report = run_dynamic(comm, tasks, slow)
    units = [r.units for r in report.ranks]
    assert_all_ranks(comm, report.rank0_works and all(u > 0 for u in units), f"units per rank {units}")


@pytest.mark.mpi(min_size=2)
def test_failing_rank_requeues_elsewhere_and_is_blocklisted(comm) -> None:
    bad = comm.size - 1

    import time

    def flaky(task: Task) -> np.ndarray:
        time.sleep(0.01)
        if comm.rank == bad:
            raise TaskFailed(f"rank {bad} cannot render")
        return np.array([task.data], dtype=np.float64)

    tasks = [Task(f"t{i}", data=i) for i in range(6 * comm.size)] if comm.rank == 0 else []
    got: dict[str, float] = {}
    report = run_dynamic(comm, tasks, flaky, on_result=lambda t, a, r: got.__setitem__(t.key, float(a[0])),
                         retries=1, max_rank_failures=2)
    ok = not report.failed and len(report.done) == 6 * comm.size
    ok = ok and report.ranks[bad].units == 0 and report.ranks[bad].failures >= 1
    ok = ok and report.ranks[bad].failures <= 2 and report.ranks[bad].blocked
    failed_events = [e for e in report.events if not e.ok]
    ok = ok and all(e.rank == bad and "cannot render" in e.error for e in failed_events)
    if comm.rank == 0:
        ok = ok and len(got) == 6 * comm.size
    assert_all_ranks(comm, ok, f"ranks={report.ranks} failed={report.failed}")


@pytest.mark.mpi
def test_task_failing_everywhere_fails_for_good(comm) -> None:
    def picky(task: Task) -> None:
        if task.key == "bad":
            raise RuntimeError("always broken")
        return None

    tasks = [Task("bad"), Task("good1"), Task("good2")] if comm.rank == 0 else []
    report = run_dynamic(comm, tasks, picky, retries=2, max_rank_failures=10)
    ok = list(report.failed) == ["bad"] and "always broken" in report.failed["bad"]
    ok = ok and sorted(report.done) == ["good1", "good2"]
    attempts = sum(1 for e in report.events if e.key == "bad")
    ok = ok and 1 <= attempts <= 3
    assert_all_ranks(comm, ok, f"failed={report.failed} attempts={attempts}")


@pytest.mark.mpi
def test_saving_error_stops_the_job_on_every_rank(comm) -> None:
    def save(task: Task, array, rank: int) -> None:
        raise OSError("disk full")

    tasks = [Task(f"t{i}", data=i) for i in range(4 * comm.size)] if comm.rank == 0 else []
    try:
        run_dynamic(comm, tasks, _square, on_result=save)
    except RuntimeError as exc:
        ok, detail = "disk full" in str(exc), str(exc)
    else:
        ok, detail = False, "no error raised"
    assert_all_ranks(comm, ok, detail)


@pytest.mark.mpi
def test_duplicate_keys_are_refused_everywhere(comm) -> None:
    tasks = [Task("same"), Task("same")] if comm.rank == 0 else []
    try:
        run_dynamic(comm, tasks, _square)
    except RuntimeError as exc:
        ok, detail = "same" in str(exc), str(exc)
    else:
        ok, detail = False, "no error raised"
    assert_all_ranks(comm, ok, detail)
