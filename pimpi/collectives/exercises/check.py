"""Grade a learner's file: one mpirun per rank count, a deadline per case, a record per case."""

from __future__ import annotations

import ast
import contextlib
import json
import os
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

from ..cases import Case
from .registry import Exercise, get_exercise, plan

__all__ = ["Record", "check_file", "check_files", "check_size", "verify_source", "parse_sizes", "format_record",
           "records_json"]

STARTUP = 90.0  # seconds mpirun may take to start Python on every rank and reach the first case
STATUSES = ("PASS", "FAIL", "DEADLOCK", "ERROR", "NOT RUN")


@dataclass
class Record:
    """The verdict on one case: what a teacher's spreadsheet gets."""

    exercise: str
    file: str
    function: str
    ranks: int
    root: int
    length: int
    dtype: str
    status: str
    message: str


def parse_sizes(text: str) -> list[int]:
    """'1,2,3,4,5,8' -> [1, 2, 3, 4, 5, 8]; ValueError naming a bad value."""
    sizes = []
    for part in text.split(","):
        part = part.strip()
        if not part.isdigit() or int(part) < 1:
            raise ValueError(f"-n {text!r}: {part!r} is not a rank count >= 1")
        sizes.append(int(part))
    return list(dict.fromkeys(sizes))


def verify_source(exercise: Exercise, path: str) -> None:
    """Refuse, before any mpirun, a file that is missing, does not parse or lacks a function."""
    source_path = Path(path)
    if not source_path.is_file():
        raise ValueError(f"no such file: {path}")
    try:
        tree = ast.parse(source_path.read_text(encoding="utf-8"), filename=path)
    except (SyntaxError, UnicodeDecodeError) as exc:
        line = getattr(exc, "lineno", None)
        raise ValueError(f"{path}: cannot parse{f' line {line}' if line else ''}: "
                         f"{getattr(exc, 'msg', exc)}") from None
    defined = {node.name for node in tree.body if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))}
    defined |= {t.id for node in tree.body if isinstance(node, ast.Assign)
                for t in node.targets if isinstance(t, ast.Name)}
    for func in exercise.functions:
        if func.name not in defined:
            raise ValueError(f"{path} defines no function {func.name}() for exercise {exercise.name}")


def _function_name(exercise: Exercise, case: Case) -> str:
    return next(f.name for f in exercise.functions if f.kind == case.kind)


def format_record(record: Record, case: Case, with_file: bool = False) -> str:
    """'FAIL  bcast_linear with 5 ranks, root 2, 7 elements, int32: rank 3 got ...'."""
    where = f"{record.file}: " if with_file else ""
    text = f"{record.status:<8} {where}{record.function} {case.describe()}"
    return text + (f": {record.message}" if record.message else "")


class _Tail:
    """The records appended to a JSON-lines file since the last look (whole lines only)."""

    def __init__(self, path: Path) -> None:
        self.path, self.offset = path, 0

    def new_records(self) -> list[dict[str, Any]]:
        try:
            with open(self.path, "rb") as fh:
                fh.seek(self.offset)
                data = fh.read()
        except FileNotFoundError:
            return []
        end = data.rfind(b"\n") + 1  # leave a half-written last line for next time
        self.offset += end
        out = []
        for line in data[:end].decode("utf-8", errors="replace").splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                continue
        return out


def _read_lines(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            continue  # a line cut short by the kill
    return out


def _problems(outdir: Path, index: int) -> list[dict[str, Any]]:
    found = []
    for path in sorted(outdir.glob("rank*.jsonl"), key=lambda p: int(p.stem[4:])):
        found += [r for r in _read_lines(path) if r.get("event") == "problem" and r.get("index") == index]
    return found


def _stuck(outdir: Path, index: int, ranks: int) -> str:
    """'rank 0 in Recv(source=2, tag=0); rank 1 returned' from each rank's last call in a case."""
    parts = []
    for rank in range(ranks):
        calls = [r["call"] for r in _read_lines(outdir / f"rank{rank}.jsonl")
                 if r.get("event") == "call" and r.get("index") == index]
        if not calls:
            parts.append(f"rank {rank} made no call")
        elif calls[-1] == "":
            parts.append(f"rank {rank} returned")
        else:
            last = calls[-1]
            parts.append(f"rank {rank} last called {last} (then Waitall?)" if last.startswith("I")
                         else f"rank {rank} waits in {last}")
    return "; ".join(parts)


def _tail(path: Path, lines: int = 3) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace").strip().splitlines()
    except OSError:
        return ""
    useful = [line for line in text if line.strip() and not line.startswith("+ ")]
    return " | ".join(useful[-lines:])


def check_size(jobs: list[tuple[Exercise, str]], ranks: int, timeout: float,
               emit: Callable[[Record, Case], None] = lambda r, c: None) -> tuple[list[Record], int]:
    """Run every case of every (exercise, file) at `ranks` in one mpirun.

    A case still running after `timeout` s is a DEADLOCK (or the ERROR a rank reported);
    the job is ended and the rest of that file's cases are NOT RUN. Returns the records
    and how many jobs are settled (len(jobs) unless the job was ended early).
    """
    from pimpi import procs
    from pimpi.cluster import launch

    cases = plan([ex for ex, _path in jobs], ranks)
    folders = contextlib.ExitStack()  # removed at the end, or by the guard if this process is killed
    outdir = Path(folders.enter_context(procs.temporary_folder("pimpi-check-")))
    records: list[Record] = []

    def record(index: int, status: str, message: str, show: bool = True) -> None:
        job, case = cases[index]
        exercise, path = jobs[job]
        rec = Record(exercise.name, path, _function_name(exercise, case), ranks, case.root,
                     case.length, case.dtype, status, message)
        records.append(rec)
        if show:
            emit(rec, case)

    proc: subprocess.Popen | None = None
    settled = len(jobs)
    try:
        target = ["-m", "pimpi.collectives.exercises.worker", str(outdir)]
        for exercise, path in jobs:
            target += [exercise.name, os.path.abspath(path)]
        spec = launch.Launch(nprocs=ranks, target=target)
        cmd = launch.mpirun_command(spec)
        log_path = outdir / "mpirun.log"
        with open(log_path, "w", encoding="utf-8") as log:
            proc = procs.start(cmd, guard=True, stdout=log, stderr=subprocess.STDOUT, env=launch.mpi_env())
        progress = _Tail(outdir / "rank0.jsonl")
        waiting_since = time.monotonic()  # since when we wait for the next case to start
        started: dict[int, float] = {}
        done = 0
        verdict: tuple[str, str] | None = None  # why the job stopped early
        while done < len(cases):
            exited = proc.poll() is not None
            for rec in progress.new_records():
                if rec.get("event") == "start":
                    started.setdefault(rec["index"], time.monotonic())
                elif rec.get("event") == "done" and rec["index"] == done:
                    record(done, rec["status"], rec["message"])
                    done += 1
                    waiting_since = time.monotonic()  # the next case must start within `timeout`
            if done == len(cases):
                break
            now = time.monotonic()
            if done in started and now - started[done] > timeout:
                verdict = ("DEADLOCK", f"no result after {timeout:g} s: {_stuck(outdir, done, ranks)}")
            elif done not in started and now - waiting_since > (timeout if done else STARTUP):
                verdict = ("ERROR", f"the job did not reach this case in time: {_tail(log_path)}")
            elif exited:
                verdict = ("ERROR", f"the job ended (exit {proc.returncode}): {_tail(log_path)}")
            if verdict is not None:
                break
            time.sleep(0.05)
        procs.end_group(proc)
        if verdict is not None:
            problems = _problems(outdir, done)
            if problems:  # a rank failed and the others waited for it
                worst = max(problems, key=lambda r: STATUSES.index(r["status"]))
                verdict = (worst["status"], worst["message"] + " (the other ranks then waited for it)")
            record(done, *verdict)
            stopped = cases[done][0]
            rest = range(done + 1, next((i for i, (job, _c) in enumerate(cases) if job > stopped), len(cases)))
            settled = stopped + 1
            for index in rest:  # shown once on the terminal, one record each in --json
                note = f"not run: an earlier case with {ranks} ranks did not finish"
                if index == rest[0] and len(rest) > 1:
                    note += f" (nor did {len(rest) - 1} more cases with {ranks} ranks)"
                record(index, "NOT RUN", note, show=index == rest[0])
    finally:
        if proc is not None:  # Ctrl-C, SIGTERM, SIGHUP or an error here: end the job too
            procs.end_group(proc)
        folders.close()
    return records, settled


def check_files(pairs: list[tuple[str, str]], sizes: list[int], timeout: float = 10.0,
                emit: Callable[[Record, Case], None] = lambda r, c: None) -> list[Record]:
    """Grade each (exercise name, file) at every rank count in `sizes`.

    One mpirun per rank count runs every file in turn (a new one after a file that hangs),
    so a teacher can grade a whole class in one command.
    """
    if timeout <= 0:
        raise ValueError(f"timeout must be > 0, got {timeout!r}")
    jobs = [(get_exercise(name), path) for name, path in pairs]
    for exercise, path in jobs:
        verify_source(exercise, path)
    records: list[Record] = []
    for ranks in sizes:
        todo = jobs
        while todo:  # a file that hangs ends its job; the files after it get a new one
            found, settled = check_size(todo, ranks, timeout, emit)
            records += found
            todo = todo[settled:]
    return records


def check_file(name: str, path: str, sizes: list[int], timeout: float = 10.0,
               emit: Callable[[Record, Case], None] = lambda r, c: None) -> list[Record]:
    """Grade `path` for exercise `name` at every rank count in `sizes`."""
    return check_files([(name, path)], sizes, timeout, emit)


def records_json(records: list[Record]) -> str:
    """The --json file: one object per case."""
    return json.dumps([asdict(r) for r in records], indent=1) + "\n"

