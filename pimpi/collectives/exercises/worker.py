"""The MPI side of `pimpi exercises check`: run ONE learner's file on a range of its cases.

    python -m pimpi.collectives.exercises.worker OUTDIR NAME FILE START END

Before the learner's code is imported, every rank builds its inputs and MPI's answer for
each case (and the reference solution's message log) and writes them to OUTDIR/prep, then
waits for OUTDIR/go, which the checker writes once it has read them: nothing the learner's
code does later changes what it is compared with. Each case gets its own communicator,
made in advance, and the ranks never talk to each other between cases, so Open MPI's
monitoring (enabled by the checker) counts only the learner's traffic. After each call a
rank writes its result, its inputs as they are now and its message log; the checker
judges them in its own process.
"""

from __future__ import annotations

import errno
import importlib.util
import json
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any, Callable, TextIO

import numpy as np

from ..cases import Case
from . import hints
from .course import wrap
from .registry import Exercise, cases_for, get_exercise, reference_path

__all__ = ["load_functions", "learner_line", "main"]

GO_TIMEOUT = 300.0  # seconds a rank waits for the checker's go (it reads every rank's prep)


def load_functions(exercise: Exercise, path: str, in_process: bool = True) -> dict[str, Callable[..., Any]]:
    """Import the learner's file and return its functions by case kind (in_process: a course
    exercise's rules also judged here, for `exercises trace`; the checker judges them itself)."""
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
        found[func.kind] = wrap(exercise.rules, obj, in_process)  # a course exercise's rules, recorded
    return found


def learner_line(path: str, frames: list[Any]) -> int | None:
    """The line of the innermost frame in the learner's file (not Comm.pyx, not pimpi)."""
    real = os.path.realpath(path)
    lines = [f.lineno for f in frames if os.path.realpath(f.filename) == real]
    return lines[-1] if lines else None


def _write(fh: TextIO, record: dict[str, Any]) -> None:
    fh.write(json.dumps(record) + "\n")
    fh.flush()


def _arrays(args: tuple) -> dict[str, np.ndarray]:
    return {f"in{k}": a for k, a in enumerate(args) if isinstance(a, np.ndarray)}


def _result_buffer(prep: Any) -> Any:
    """The argument a collective writes its result into (its reader ignores the return value),
    or None: a course kind grades the return value, and its reader may refuse None."""
    try:
        return prep.result(None) if prep.args else None
    except Exception:  # noqa: BLE001 - e.g. split_sums' reader wants a (row, col) pair
        return None


def _log(events: list[Any]) -> list[list[Any]]:
    return [[e.kind, e.peer, e.tag, e.nbytes, e.time] for e in events]


def _prepare_all(harness: Any, exercise: Exercise, cases: list[tuple[int, Case]], outdir: Path,
                 fh: TextIO, reference_file: str | None = None) -> tuple[dict[int, Any], dict[int, Any]]:
    """Inputs and answers of every case (and the reference's log) before the learner's import."""
    from ..cases import prepare
    from ..trace import TracingComm

    rank = harness.Get_rank()
    prep_comm = harness.Dup()
    prep_comm.Set_name("pimpi-prep")
    dups = 1
    reference = None
    if exercise.pattern_check == "reference" or exercise.monitored:
        reference = load_functions(exercise, reference_file or str(reference_path(exercise.name)))
    prepared: dict[int, Any] = {}
    comms: dict[Any, Any] = {}
    for index, case in cases:
        prep = prepare(prep_comm, case)
        result_buf = _result_buffer(prep)
        inputs = {k: a.copy() for k, a in _arrays(prep.args).items() if a is not result_buf}
        store = dict(inputs)
        if prep.expected is not None:
            store["expected"] = np.asarray(prep.expected)
        np.savez(outdir / "prep" / f"{rank}-{index}.npz", **store)
        meta: dict[str, Any] = {"event": "prep", "index": index, "exact": prep.exact,
                                "checked": sorted(inputs), "expected": prep.expected is not None}
        if reference is not None:
            ref_comm = harness.Dup()
            ref_comm.Set_name(f"pimpi-ref-{index}")
            dups += 1
            again = prepare(prep_comm, case)  # fresh buffers: the reference may write into them
            tracer = TracingComm(ref_comm)
            reference[case.kind](tracer, *again.args, **again.kwargs)
            meta["reference"] = _log(tracer.finish())
            comms[f"ref-{index}"] = ref_comm  # never freed: a reused id would mix Open MPI's counts
        _write(fh, meta)
        prep.expected = None  # in the checker's hands now: not left where the learner's code could find it
        comm = harness.Dup()
        comm.Set_name(f"pimpi-case-{index}")
        dups += 1
        prepared[index], comms[index] = prep, comm
    comms["prep"] = prep_comm
    blank = harness.Dup()  # made like a case's comm and never used: Open MPI's count for an
    blank.Set_name("pimpi-blank")  # unused communicator (making one already counts a message)
    comms["blank"] = blank
    dups += 1
    _write(fh, {"event": "prepared", "harness_dups": dups})
    return prepared, comms


def _wait_go(outdir: Path) -> None:
    deadline = time.monotonic() + GO_TIMEOUT
    while not (outdir / "go").exists():
        if time.monotonic() > deadline:
            raise SystemExit("the checker never said go")
        time.sleep(0.02)


def _run_case(comm: Any, func: Callable[..., Any], prep: Any, path: str, index: int,
              fh: TextIO, outdir: Path) -> dict[str, Any]:
    """Call the learner's function once; save what it left; describe how it ended."""
    from ..trace import ForbiddenCall, TracingComm

    rank = comm.Get_rank()

    def watch(call: str) -> None:
        frames = traceback.extract_stack()
        _write(fh, {"event": "call", "index": index, "call": call, "line": learner_line(path, frames)})

    tracer = TracingComm(comm, watch)
    done: dict[str, Any] = {"event": "done", "index": index, "status": "RAN", "message": "", "line": None}
    returned = None
    try:
        returned = func(tracer, *prep.args, **prep.kwargs)
    except ForbiddenCall as exc:
        done.update(status="FAIL", message=f"rank {rank} {exc.advice()}",
                    line=learner_line(path, traceback.extract_tb(exc.__traceback__)))
    except SystemExit as exc:
        done.update(status="ERROR", message=f"rank {rank} ended its process with sys.exit({exc.code!r}) (or exit() "
                    f"or raise SystemExit) inside the function: return the result instead; the other ranks "
                    f"then wait for it", line=learner_line(path, traceback.extract_tb(exc.__traceback__)))
    except Exception as exc:  # noqa: BLE001 - the learner's bug is the report
        done.update(status="ERROR", message=f"rank {rank} raised {type(exc).__name__}: {exc}{hints.for_error(exc)}",
                    line=learner_line(path, traceback.extract_tb(exc.__traceback__)))
        if isinstance(exc, OSError) and exc.errno == errno.EROFS and exc.filename \
                and not os.path.realpath(str(exc.filename)).startswith(os.getcwd()):
            done["outside"] = str(exc.filename)  # the sandbox refused a write outside the rank's folder
    _write(fh, {"event": "call", "index": index, "call": "", "line": None})  # returned
    facts = getattr(tracer, "course_facts", None)
    if facts is not None:
        done["course"] = facts
    done["unfinished"] = tracer.unfinished()
    done["log"] = _log(tracer.finish())
    store = {k: a for k, a in _arrays(prep.args).items()}
    try:
        value = prep.result(returned)
        if value is None:
            done["returned_none"] = True
        else:
            arr = np.asarray(value)
            if arr.dtype.hasobject:
                raise TypeError(f"not a number or array: {type(value).__name__}")
            store["result"] = arr
            # an input the call returned filled in place (cart_halo's block) is its result
            done["outputs"] = [k for k, a in _arrays(prep.args).items() if np.may_share_memory(a, arr)]
    except Exception as exc:  # noqa: BLE001 - reported by the checker
        done["unreadable"] = f"{type(exc).__name__}: {exc}"
    np.savez(outdir / "res" / f"{rank}-{index}.npz", **store)
    tracer.settle()  # a request left open must not land in a later case or crash MPI_Finalize
    return done


def _watch_exits(fh: TextIO, path: str, outdir: Path, rank: int) -> None:
    """Name an early end plainly: os._exit is recorded (which call, which line, what code) before it
    happens, and a crash (segfault, abort) leaves Python's traceback in crash<rank>.txt for the checker."""
    import faulthandler

    crash = open(outdir / f"crash{rank}.txt", "w", encoding="utf-8")  # noqa: SIM115 - open until the end
    faulthandler.enable(file=crash, all_threads=False)
    real_exit = os._exit

    def _exit(code: int) -> None:
        line = learner_line(path, traceback.extract_stack())
        _write(fh, {"event": "exit", "call": "os._exit", "code": code, "line": line})
        real_exit(code)

    os._exit = _exit


def _private_copy(path: str, rank: int) -> str:
    """Copy the learner's file into a folder of this rank's own and make it the cwd, so what
    one rank's import does to its folder (deleting it, say) cannot touch another rank's."""
    import shutil

    folder = Path.cwd() / f"rank{rank}"
    folder.mkdir(exist_ok=True)
    copy = folder / Path(path).name
    shutil.copyfile(path, copy)
    os.chdir(folder)
    return str(copy)


def main(argv: list[str] | None = None) -> int:
    from mpi4py import MPI

    args = argv if argv is not None else sys.argv[1:]
    options = [a for a in args[5:] if a.startswith("--")]
    if len(args) - len(options) != 5:
        raise SystemExit("usage: worker OUTDIR NAME FILE START END [--prepare-only] [--reference=PATH]")
    outdir, name, path, start, end = Path(args[0]), args[1], args[2], int(args[3]), int(args[4])
    prepare_only = "--prepare-only" in options  # Open MPI's counts of the preparation alone
    reference_file = next((a.split("=", 1)[1] for a in options if a.startswith("--reference=")), None)
    from .. import cases as case_inputs

    case_inputs.set_salt(int(os.environ.pop("PIMPI_GRADE_SEED", "0")))  # drawn by the checker, then gone
    world = MPI.COMM_WORLD
    rank = world.Get_rank()
    exercise = get_exercise(name)
    cases = list(enumerate(cases_for(exercise, world.Get_size())))[start:end]
    with open(outdir / f"rank{rank}.jsonl", "a", encoding="utf-8") as fh:
        harness = world.Dup()  # the only collective on COMM_WORLD: the checker allows for it
        harness.Set_name("pimpi-harness")
        prepared, comms = _prepare_all(harness, exercise, cases, outdir, fh, reference_file)
        comms["harness"] = harness  # not freed (see _prepare_all): the checker sees any collective
        # the learner's code runs on it in Open MPI's counts
        if prepare_only:
            _write(fh, {"event": "end"})
            return 0
        _wait_go(outdir)  # the checker has read the answers and removed them and the reference
        path = _private_copy(path, rank)
        _watch_exits(fh, path, outdir, rank)
        try:
            funcs: dict[str, Callable[..., Any]] | str = load_functions(exercise, path, in_process=False)
        except BaseException as exc:  # noqa: BLE001 - a broken file is a result, not a crash
            line = learner_line(path, traceback.extract_tb(exc.__traceback__))
            funcs = f"cannot load {Path(path).name}: {type(exc).__name__}: {exc}"
            if line:
                funcs += f" (line {line} of {Path(path).name})"
        for index, case in cases:
            _write(fh, {"event": "start", "index": index})
            if isinstance(funcs, str):
                _write(fh, {"event": "done", "index": index, "status": "ERROR", "message": funcs,
                            "line": None, "log": [], "unfinished": []})
                continue
            _write(fh, _run_case(comms[index], funcs[case.kind], prepared[index], path, index, fh, outdir))
        # no comm.Free(): in Open MPI it is itself a collective, counted by the monitoring
        _write(fh, {"event": "end"})
    return 0


if __name__ == "__main__":
    sys.exit(main())
