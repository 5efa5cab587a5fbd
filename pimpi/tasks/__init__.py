"""The task farm: any list of independent tasks run across the ranks of an MPI job.

Dynamic task pull: longest first, adaptive chunks, retries on other ranks, rank 0 works
too. Nothing here knows what a task means (render frames, command chunks, video segments
and benchmarks all use it); a cluster executor can be built on the same calls. Rooms:
`report` (Task, TaskFailed and the report types every schedule returns), `pool` (the
policy, pure and tested without MPI), `worker` (ranks > 0 and the wire), `server`
(rank 0's threads), `dynamic` (`run_dynamic`, the entry point).

The API (stable):

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
  so it costs almost no CPU; rank 0's main thread works. Without thread support rank 0
  only schedules (and on one rank it just works through the list). Waiting ranks poll
  with sleeps too: Open MPI's blocking calls spin, which on shared cores steals the CPU
  the working ranks need.
* Only rank 0's `tasks` matter (other ranks may pass `[]`); every rank gets the same
  `ScheduleReport` back. A fatal error in `on_result` stops the job and is raised as
  `RuntimeError` on every rank.
"""

from typing import Any

from pimpi.tasks.report import RankStats, ScheduleReport, Task, TaskEvent, TaskFailed

__all__ = ["Task", "TaskFailed", "TaskEvent", "RankStats", "ScheduleReport", "run_dynamic"]


def __getattr__(name: str) -> Any:
    """`run_dynamic` is imported when first used: the policy (`pool`) and the report types
    are pure Python, so pimpi.futures can use them without loading NumPy or MPI."""
    if name == "run_dynamic":
        from pimpi.tasks.dynamic import run_dynamic

        return run_dynamic
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
