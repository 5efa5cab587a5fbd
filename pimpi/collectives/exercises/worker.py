"""The MPI side of `pimpi exercises check`: run a learner's file on every case, log progress.

    python -m mpi4py -m pimpi.collectives.exercises.worker OUTDIR NAME FILE [NAME FILE ...]

Rank 0 appends `start`/`done` lines to OUTDIR/rank0.jsonl before and after each case,
so when a deadlocked job is killed the parent knows which case hung. A rank whose
call raises writes a `problem` line to its own file at once, and aborts the job if
the other ranks do not finish the case within a few seconds (they wait for it).
"""

from __future__ import annotations

import importlib.util
import json
import sys
import traceback
from pathlib import Path
from typing import Any, Callable, TextIO

from ..cases import Case, compare, prepare
from .course import wrap
from .registry import Exercise, get_exercise, plan

__all__ = ["load_functions", "run_case", "main"]

GRACE = 3.0  # seconds a failed rank waits for the others before aborting the job
SEVERITY = {"PASS": 0, "FAIL": 1, "ERROR": 2}


def load_functions(exercise: Exercise, path: str) -> dict[str, Callable[..., Any]]:
    """Import the learner's file and return its functions by case kind."""
    spec = importlib.util.spec_from_file_location(f"pimpi_learner_{exercise.name}", path)
    if spec is None or spec.loader is None:
        raise ValueError(f"cannot import {path!r}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    found = {}
    for func in exercise.functions:
        obj = getattr(module, func.name, None)
        if not callable(obj):
            raise ValueError(f"{path} defines no function {func.name}()")
        found[func.kind] = wrap(exercise.rules, obj)  # a course exercise's rules, checked
    return found


def run_case(comm: Any, private: Any, func: Callable[..., Any], case: Case,
             watch: Callable[[str], None] | None = None) -> tuple[str, str]:
    """Run `func` on a TracingComm over `private` for one case; (status, message) on this rank."""
    from pimpi.collectives.trace import ForbiddenCall, TracingComm

    prepared = prepare(comm, case)
    rank = comm.Get_rank()
    try:
        returned = func(TracingComm(private, watch), *prepared.args, **prepared.kwargs)
        if watch is not None:
            watch("")  # returned: not stuck in this case
        detail = compare(prepared, returned)
        if detail is None:
            return "PASS", ""
        return "FAIL", f"rank {rank} {detail}"
    except ForbiddenCall as exc:
        return "FAIL", f"rank {rank} {exc.advice()}"
    except Exception as exc:  # noqa: BLE001 - the learner's bug is the report
        where = _learner_frame(exc)
        return "ERROR", f"rank {rank} raised {type(exc).__name__}: {exc}{where}"


def _learner_frame(exc: BaseException) -> str:
    """' (line 12 of my_bcast.py)' for the innermost frame in the learner's file."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if "pimpi" not in Path(f.filename).parts]
    if not frames:
        return ""
    return f" (line {frames[-1].lineno} of {Path(frames[-1].filename).name})"


def _write(fh: TextIO, record: dict[str, Any]) -> None:
    fh.write(json.dumps(record) + "\n")
    fh.flush()


def _agree(comm: Any, failed: bool) -> None:
    """Wait until every rank finished the case; a failed rank aborts if the others hang."""
    from pimpi.mpi import poll_wait

    req = comm.Ibarrier()
    if not failed:
        req.Wait()
        return
    try:
        poll_wait(req.Test, timeout=GRACE, what="other ranks")
    except TimeoutError:
        comm.Abort(4)  # the others wait for this rank forever: end the job now


def _load_everywhere(comm: Any, exercise: Exercise, path: str) -> dict[str, Callable[..., Any]] | str:
    """The file's functions, or why it cannot be loaded (agreed by every rank)."""
    try:
        funcs: dict[str, Callable[..., Any]] | str = load_functions(exercise, path)
    except BaseException as exc:  # noqa: BLE001 - a broken file is a result, not a crash
        funcs = f"cannot load {Path(path).name}: {type(exc).__name__}: {exc}"
    errors = [e for e in comm.allgather(funcs if isinstance(funcs, str) else None) if e]
    return errors[0] if errors else funcs


def _run_all(comm: Any, fh: TextIO, exercises: list[Exercise], paths: list[str]) -> None:
    rank = comm.Get_rank()
    loaded: dict[int, dict[str, Callable[..., Any]] | str] = {}
    for index, (job, case) in enumerate(plan(exercises, comm.Get_size())):
        if job not in loaded:  # also lines the ranks up: a case's deadline counts only its own time
            loaded[job] = _load_everywhere(comm, exercises[job], paths[job])
        funcs = loaded[job]
        if rank == 0:
            _write(fh, {"event": "start", "index": index})
        if isinstance(funcs, str):
            if rank == 0:
                _write(fh, {"event": "done", "index": index, "status": "ERROR", "message": funcs})
            continue
        private = comm.Dup()  # a fresh channel: stray messages of earlier cases cannot leak in
        status, message = run_case(comm, private, funcs[case.kind], case,
                                   lambda call, i=index: _write(fh, {"event": "call", "index": i,
                                                                     "call": call}))
        if status != "PASS":
            _write(fh, {"event": "problem", "index": index, "status": status, "message": message})
        _agree(comm, status != "PASS")
        private.Free()
        verdicts = comm.gather((status, message), root=0)
        if rank == 0:
            worst = max(verdicts, key=lambda v: SEVERITY[v[0]])
            bad = [v for v in verdicts if v[0] == worst[0]]
            text = bad[0][1] + (f" (and {len(bad) - 1} more ranks)" if len(bad) > 1 else "")
            _write(fh, {"event": "done", "index": index, "status": worst[0],
                        "message": text if worst[0] != "PASS" else ""})


def main(argv: list[str] | None = None) -> int:
    from mpi4py import MPI

    args = argv if argv is not None else sys.argv[1:]
    outdir, pairs = args[0], args[1:]
    if not pairs or len(pairs) % 2:
        raise SystemExit("usage: worker OUTDIR NAME FILE [NAME FILE ...]")
    comm = MPI.COMM_WORLD
    exercises = [get_exercise(name) for name in pairs[0::2]]
    with open(Path(outdir) / f"rank{comm.Get_rank()}.jsonl", "a", encoding="utf-8") as fh:
        _run_all(comm, fh, exercises, list(pairs[1::2]))
        if comm.Get_rank() == 0:
            _write(fh, {"event": "end"})
    return 0


if __name__ == "__main__":
    sys.exit(main())
