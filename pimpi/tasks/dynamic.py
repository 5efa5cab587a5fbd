"""`run_dynamic`: the task farm's entry point, collective over a communicator.

Rank 0 serves tasks (longest expected first, adaptive chunks, retries on other ranks, a
blocklist for ranks that keep failing) and works too; the other ranks pull. See the
package docstring for the contract of `work` and `on_result`.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Callable, Sequence

from pimpi.mpi import quiet_barrier
from pimpi.tasks.pool import BLOCK_AFTER, Pool
from pimpi.tasks.report import RankStats, ScheduleReport, Task
from pimpi.tasks.server import Server
from pimpi.tasks.worker import worker_loop

__all__ = ["run_dynamic"]


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
    max_rank_failures: int = BLOCK_AFTER,
    progress: Callable[[int, int], None] | None = None,
    target_seconds: float = 0.5,
    rank0_works: bool = True,
    status: Any = None,
) -> ScheduleReport:
    """Run `work` over `tasks` on every rank of `comm` by task pull; see `pimpi.tasks`.

    Collective: every rank of `comm` must call it. Returns the same report on every rank.
    `status` (rank 0, optional): a `pimpi.jobstatus.StatusFile` told of every attempt.
    """
    if target_seconds <= 0:
        raise ValueError(f"target_seconds must be > 0, got {target_seconds}")
    comm = comm.Dup()  # a private channel: no message of this run can reach another
    try:
        return _run_dynamic(comm, tasks, work, on_result, retries, max_rank_failures,
                            progress, target_seconds, rank0_works, status)
    finally:
        comm.Free()


def _run_dynamic(comm: Any, tasks: Sequence[Task], work: Callable[[Task], Any],
                 on_result: Callable[[Task, Any, int], None] | None, retries: int,
                 max_rank_failures: int, progress: Callable[[int, int], None] | None,
                 target_seconds: float, rank0_works: bool, status: Any = None) -> ScheduleReport:
    size, rank = comm.size, comm.rank
    comm.Barrier()
    t0 = time.monotonic()
    cpu0 = time.process_time()
    if rank != 0:
        worker_loop(comm, work, t0)
        cpu = time.process_time() - cpu0
        quiet_barrier(comm)
        comm.gather(cpu, root=0)
        report = comm.bcast(None, root=0)
        if report.error:
            raise RuntimeError(report.error)
        return report

    works_here = rank0_works and (size == 1 or _thread_ok())
    workers = set(range(1, size)) | ({0} if works_here else set())
    try:
        pool = Pool(tasks, size, workers, retries, max_rank_failures, target_seconds)
    except ValueError as exc:
        pool = Pool([], size, workers, 0, 1, target_seconds)
        with pool.lock:
            pool.abort(str(exc))
    boss = Server(comm, pool, work, on_result, progress, t0, status)
    writer = threading.Thread(target=boss.writer, name="pimpi-results", daemon=True)
    writer.start()
    server = None
    if size > 1:
        server = threading.Thread(target=boss.serve, name="pimpi-scheduler", daemon=True)
        server.start()
    try:
        if works_here:
            boss.work_locally()
    except BaseException:
        # Ctrl-C, SIGTERM (procs.Stopped) or a dying parent on rank 0: leave at once. The
        # job is being ended; waiting for the scheduler to settle with ranks that may never
        # answer again would keep this rank (and its clean-ups' results) hanging.
        with pool.lock:
            pool.abort("the job was stopped")
        raise
    if server is not None:
        server.join()
    boss.results.put(None)
    writer.join()
    wall = time.monotonic() - t0
    cpus = [time.process_time() - cpu0]
    if size > 1:
        quiet_barrier(comm)
        cpus = comm.gather(cpus[0], root=0)
    ranks = []
    for r in range(size):
        stats = RankStats(r, boss.units[r], boss.busy[r], 0.0, pool.rank_failures(r), r in pool.blocked)
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
