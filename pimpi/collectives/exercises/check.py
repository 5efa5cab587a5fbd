"""Grade learners' files: each file at each rank count in its own folder and mpirun, judged here.

The verdict never comes from the learner's processes: they send back their results, their
inputs as left after the call and their message logs (see worker.py); this process compares
them with MPI's answers (read before the learner's code was imported), with the reference
solution's message pattern, and with what Open MPI's own monitoring saw move.
"""

from __future__ import annotations

import ast
import contextlib
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from pimpi.fileio import last_lines

from ..cases import Case, Prepared, compare
from .monitor import MonitorReport, read_reports
from . import course, hints, sandbox
from .registry import Exercise, cases_for, get_exercise, reference_path

__all__ = ["Record", "check_file", "check_files", "grade", "verify_source", "format_record",
           "default_jobs"]

STARTUP = 120.0  # seconds mpirun may take to start Python on every rank and prepare every case
STATUSES = ("PASS", "FAIL", "DEADLOCK", "ERROR", "NOT RUN")
GRACE = 3.0  # seconds the other ranks get to finish a case in which one rank failed
FINISH = 5.0  # seconds mpirun may take to end once every rank has ended
MAX_STOPS = 4  # jobs one file may hang or crash per rank count before the rest is not run


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
    op: str = "SUM"
    line: int | None = None  # the learner's line the message is about
    integrity: str = ""  # what the sandbox or Open MPI saw that a right answer does not explain

    @property
    def case(self) -> Case:
        kind = next(f.kind for f in get_exercise(self.exercise).functions if f.name == self.function)
        return Case(kind, self.ranks, self.root, self.length, self.dtype, self.op)


def default_jobs() -> int:
    """How many mpiruns grade at once: one per core."""
    return max(1, os.cpu_count() or 1)


def _definitions(exercise: Exercise, path: str) -> dict[str, int]:
    """{function name: line} of the exercise's functions in `path`; ValueError if it cannot be read."""
    source_path = Path(path)
    if not source_path.is_file():
        raise ValueError(f"no such file: {path}")
    try:
        tree = ast.parse(source_path.read_text(encoding="utf-8"), filename=path)
    except (SyntaxError, UnicodeDecodeError) as exc:
        line = getattr(exc, "lineno", None)
        raise ValueError(f"{path}: cannot parse{f' line {line}' if line else ''}: "
                         f"{getattr(exc, 'msg', exc)}") from None
    defined = {node.name: node.lineno for node in tree.body
               if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))}
    defined.update({t.id: node.lineno for node in tree.body if isinstance(node, ast.Assign)
                    for t in node.targets if isinstance(t, ast.Name)})
    for func in exercise.functions:
        if func.name not in defined:
            raise ValueError(f"{path} defines no function {func.name}() for exercise {exercise.name}")
    return defined


def verify_source(exercise: Exercise, path: str) -> None:
    """Refuse, before any mpirun, a file that is missing, does not parse or lacks a function."""
    _definitions(exercise, path)


def format_record(record: Record, case: Case | None = None, with_file: bool = False) -> str:
    """'FAIL  bcast_linear with 5 ranks, root 2, 7 elements, int32: rank 3 got ...'."""
    where = f"{record.file}: " if with_file else ""
    text = f"{record.status:<8} {where}{record.function} {(case or record.case).describe()}"
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


def _tail(path: Path, lines: int = 3) -> str:
    useful = last_lines(path, lines, keep=lambda line: bool(line.strip()) and not line.startswith("+ "), window=1 << 16)
    return _PID.sub("", " | ".join(useful))  # the same crash reads the same on every run


_PID = re.compile(r" with PID \d+ on node \S+")


def _crash(path: Path, name: str) -> str | None:
    """What Python's faulthandler wrote for a crashed rank ('Segmentation fault at line 9 of x.py; hint: ...')."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    first = next((line for line in text.splitlines() if line.startswith("Fatal Python error")), "")
    if not first:
        return None
    what = first.split(":", 1)[-1].strip()
    lines = re.findall(r'File "([^"]*)", line (\d+)', text)
    mine = [line for file, line in lines if Path(file).name == name]
    where = f" at line {mine[0]} of {name}" if mine else ""
    return f"{what}{where}{hints.for_crash(what)}"


def _load_npz(path: Path) -> dict[str, np.ndarray]:
    """Arrays a rank saved; never unpickles (the learner's process wrote some of these)."""
    try:
        with np.load(path, allow_pickle=False) as data:
            return {key: data[key] for key in data.files}
    except (OSError, ValueError, EOFError):
        return {}


_BASELINES: dict[tuple[str, int, int, int], dict[tuple[int, int], int] | None] = {}
_BASELINE_LOCK = threading.Lock()


@dataclass
class _Segment:
    """What one mpirun over cases [start, end) of one file left behind."""

    done: dict[int, list[dict[str, Any]]]  # case -> every rank's done record (complete cases only)
    prep: dict[int, list[dict[str, Any]]]  # case -> every rank's prep record
    answers: dict[int, list[dict[str, np.ndarray]]]  # case -> every rank's inputs and answer
    stop: tuple[int, str, str] | None  # (case, status, message) when the job was ended early
    monitor: MonitorReport | None  # None: the job did not finish (no monitoring report)
    outdir: Path
    harness_dups: int = 0
    launch_failed: bool = False  # mpirun ended before any rank imported the learner's file
    notes: list[str] = field(default_factory=list)  # what the teacher's integrity column shows

    def results(self, index: int, ranks: int) -> list[dict[str, np.ndarray]]:
        """Every rank's result and inputs after the call to case `index`."""
        return [_load_npz(self.outdir / "res" / f"{r}-{index}.npz") for r in range(ranks)]


class _Job:
    """One file at one rank count: runs segments of cases under mpirun and judges them here."""

    def __init__(self, exercise: Exercise, path: str, ranks: int, timeout: float,
                 stop: threading.Event | None = None) -> None:
        self.exercise, self.path, self.ranks, self.timeout = exercise, path, ranks, timeout
        self.stop = stop or threading.Event()  # set by grade() on Ctrl-C or a signal: end the job
        self.cases = cases_for(exercise, ranks)
        self.lines = _definitions(exercise, path)
        self.name = Path(path).name
        self.monitored = exercise.monitored

    # -- running -------------------------------------------------------------------------
    def _segment(self, root: Path, start: int, end: int) -> _Segment:
        """One mpirun over the cases; run again once when mpirun itself failed to start (the launch
        path's `start_failed`, e.g. "The PMIx server's listener thread failed to start"), as that
        says nothing about the file."""
        seg = self._segment_once(root, start, end)
        if seg.launch_failed and not self.stop.is_set():
            seg = self._segment_once(root, start, end)
        return seg

    def _segment_once(self, root: Path, start: int, end: int) -> _Segment:
        with contextlib.ExitStack() as self._folders:  # the job's shared-memory folder, removed after it
            return self._segment_in(root, start, end)

    def _segment_in(self, root: Path, start: int, end: int) -> _Segment:
        from pimpi import procs
        from pimpi.cluster import launch

        outdir = Path(tempfile.mkdtemp(prefix="out-", dir=root))
        work = Path(tempfile.mkdtemp(prefix="work-", dir=root))  # the learner's cwd: nothing else in it
        for sub in ("prep", "res", "mon", "tmp"):
            (outdir / sub).mkdir()
        for rank in range(self.ranks):
            (work / f"rank{rank}").mkdir()  # the only folder this rank's learner code may write
        src = work / "src"
        src.mkdir()
        copy = src / self.name
        shutil.copyfile(self.path, copy)
        reference = outdir / "reference.py"  # the worker loads it before the learner's import, then deletes it
        shutil.copyfile(reference_path(self.exercise.name), reference)
        shm_root = "/dev/shm" if os.path.isdir("/dev/shm") else str(outdir)
        shm = Path(self._folders.enter_context(procs.temporary_folder("pimpi-grade-", dir=shm_root)))
        env = launch.mpi_env()
        env.update(sandbox.shared_memory(str(shm)))
        env.update(OMPI_MCA_pml_monitoring_enable="2", OMPI_MCA_pml_monitoring_enable_output="3",
                   OMPI_MCA_pml_monitoring_filename=str(outdir / "mon" / "prof"), TMPDIR=str(outdir / "tmp"),
                   PIMPI_GRADE_SEED=str(secrets.randbelow(1 << 30)))  # fresh inputs, read and dropped by the worker
        target = ["-m", "pimpi.collectives.exercises.worker", str(outdir), self.exercise.name, str(copy),
                  str(start), str(end), f"--reference={reference}"]
        cmd = launch.mpirun_command(launch.Launch(nprocs=self.ranks, target=target))
        wrapper = sandbox.rank_wrapper(outdir / "rank.sh", work, [src], [outdir, shm],
                                       [root.parent, reference_path(self.exercise.name).parent])
        if wrapper:
            at = cmd.index(sys.executable)  # each rank: `rank.sh python -m mpi4py -m ...worker`
            cmd[at:at] = wrapper
        cmd = list(sandbox.job_prefix()) + cmd  # every process of the job ends with mpirun
        tails = [_Tail(outdir / f"rank{r}.jsonl") for r in range(self.ranks)]
        seg = _Segment({}, {}, {}, None, None, outdir)
        done: dict[int, dict[int, dict[str, Any]]] = {}
        calls: dict[int, dict[int, dict[str, Any]]] = {}  # rank -> case -> last call
        prepared, ended = set(), set()
        failed_at: dict[int, float] = {}
        log_path = outdir / "mpirun.log"
        exits: dict[int, dict[str, Any]] = {}  # rank -> its os._exit record
        crashes: dict[int, str] = {}  # rank -> what crashed it
        proc = None
        session = contextlib.ExitStack()  # mpirun's private session directory, removed at the end
        base = outdir / "session"  # in the job's own folder: the sandboxed ranks (private /tmp) reach it
        base.mkdir(exist_ok=True)
        env[launch.SESSION_BASE_VARS[0]] = str(base)
        try:
            env = session.enter_context(launch.private_session(env))
            with open(log_path, "w", encoding="utf-8") as log:
                proc = procs.start(cmd, guard=True, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=str(work))
            began, since, current, go = time.monotonic(), time.monotonic(), start, False
            while True:
                if self.stop.is_set():
                    raise RuntimeError("grading stopped")
                exited = proc.poll() is not None
                for rank, tail in enumerate(tails):
                    for rec in tail.new_records():
                        event = rec.get("event")
                        if event == "prep" and not go:
                            seg.prep.setdefault(rec["index"], [{}] * self.ranks)[rank] = rec
                        elif event == "prepared" and not go:
                            prepared.add(rank)
                            seg.harness_dups = rec["harness_dups"]
                        elif event == "call":
                            calls.setdefault(rank, {})[rec["index"]] = rec
                        elif event == "done":
                            done.setdefault(rec["index"], {})[rank] = rec
                        elif event == "end":
                            ended.add(rank)
                        elif event == "exit":
                            exits[rank] = rec
                for rank in range(self.ranks):  # a crash: Python's own last words, with the learner's line
                    if rank not in crashes and rank not in ended:
                        crashes[rank] = _crash(outdir / f"crash{rank}.txt", self.name)
                        if crashes[rank] is None:
                            del crashes[rank]
                if not go and len(prepared) == self.ranks:
                    for index in range(start, end):  # read MPI's answers before the learner's import
                        seg.answers[index] = [_load_npz(outdir / "prep" / f"{r}-{index}.npz")
                                              for r in range(self.ranks)]
                    shutil.rmtree(outdir / "prep", ignore_errors=True)  # no answer left where a rank can read it
                    reference.unlink(missing_ok=True)
                    (outdir / "go").write_text("go\n")
                    go, since = True, time.monotonic()
                while go and current < end and len(done.get(current, {})) == self.ranks:
                    seg.done[current] = [done[current][r] for r in range(self.ranks)]
                    current, since = current + 1, time.monotonic()
                now = time.monotonic()
                if current == end and (exited or self._finished(len(ended) == self.ranks, now - since, seg)):
                    break
                if not go and (now - began > STARTUP or exited):
                    what = "ended" if exited else f"did not prepare its cases in {STARTUP:g} s"
                    seg.stop = (current, "ERROR", f"the job {what}: {_tail(log_path)}")
                    # before "go" no rank imported the learner's file; mpirun itself failed to start?
                    seg.launch_failed = exited and launch.start_failed(log_path.read_text(errors="replace"))
                    break
                failed = [rec for rec in done.get(current, {}).values() if rec["status"] != "RAN"]
                if failed and current not in failed_at:
                    failed_at[current] = now
                waited = now - failed_at.get(current, now)  # a rank failed: the others may wait for it
                gone = {r: rec for r, rec in exits.items() if r not in done.get(current, {})}
                broken = {r: text for r, text in crashes.items() if r not in done.get(current, {})}
                if go and current < end and (gone or broken):  # a rank left mid-case: no need to wait
                    rank = min(gone or broken)
                    seg.stop = (current, "ERROR", self._left(rank, gone.get(rank), broken.get(rank), calls, current))
                    break
                if go and current < end and (now - since > self.timeout or exited or waited > GRACE):
                    seg.stop = (current, *self._stuck(current, done.get(current, {}), calls, exited, log_path))
                    break
                time.sleep(0.05)
            if seg.stop is None:
                if proc.poll() is None:  # every rank ended, but a process it started holds the job open
                    procs.end_group(proc)
                if len(ended) == self.ranks:
                    seg.monitor = read_reports(outdir / "mon", self.ranks)
        finally:
            if proc is not None and proc.poll() is None:
                procs.end_group(proc)
            session.close()
        return seg

    def _finished(self, all_ended: bool, idle: float, seg: _Segment) -> bool:
        """Whether to stop waiting for mpirun once every case is done: every rank ended but mpirun
        goes on for FINISH s (a process the submission started holds a rank's output open), or
        the ranks did not end within the case timeout (code that runs after the last case)."""
        if all_ended and idle > FINISH:
            seg.notes.append("a process the submission started outlived its rank (it was ended)")
            return True
        if idle > self.timeout + FINISH:
            seg.notes.append(f"the ranks did not end within {self.timeout:g} s of the last case (they were ended)")
            return True
        return False

    def _left(self, rank: int, exit_rec: dict[str, Any] | None, crash: str | None,
              calls: dict[int, dict[int, dict[str, Any]]], index: int) -> str:
        """'rank 1 called os._exit(0) at line 9 of x.py in case ...': how a rank left in the middle of a case."""
        if exit_rec is not None:
            where = f" at line {exit_rec['line']} of {self.name}" if exit_rec.get("line") else ""
            return (f"rank {rank} ended its process with os._exit({exit_rec.get('code')}){where} before its "
                    f"function returned: return the result instead (the other ranks then wait for it)")
        last = calls.get(rank, {}).get(index)
        during = f" during comm.{hints.named_peers(last['call'])}" if last and last.get("call") else ""
        return f"rank {rank} crashed{during}: {crash}"

    def _stuck(self, index: int, done: dict[int, dict[str, Any]], calls: dict[int, dict[int, dict[str, Any]]],
               exited: bool, log_path: Path) -> tuple[str, str]:
        """Why case `index` did not finish: a rank's error, or where every rank waits."""
        errors = [rec for rank, rec in sorted(done.items()) if rec["status"] != "RAN"]
        if errors:
            worst = errors[0]
            return worst["status"], self._at(worst["message"], worst.get("line")) + \
                " (the other ranks then waited for it)"
        if exited:
            return "ERROR", f"the job ended before this case finished: {_tail(log_path)}"
        parts = []
        for rank in range(self.ranks):
            last = calls.get(rank, {}).get(index)
            if rank in done:
                parts.append(f"rank {rank} returned")
            elif last is None:
                parts.append(f"rank {rank} made no MPI call in this case (still computing, or a loop that never "
                             f"reaches its MPI call?)")
            elif last["call"] == "":
                parts.append(f"rank {rank} returned")
            else:
                where = f" at line {last['line']}" if last.get("line") else ""
                call = hints.named_peers(last["call"])
                parts.append(f"rank {rank} last called {call}{where} (then Waitall?)"
                             if call.startswith("I") else f"rank {rank} waits in {call}{where}")
        return "DEADLOCK", f"no result after {self.timeout:g} s: " + "; ".join(parts) + f" ({self.name})"

    def _at(self, message: str, line: int | None) -> str:
        return message + (f" (line {line} of {self.name})" if line else "")

    # -- judging -------------------------------------------------------------------------
    def judge(self, index: int, seg: _Segment) -> tuple[str, str, int | None]:
        """(status, message, line) for a case every rank finished."""
        from ..trace import Event, analyse

        done = seg.done[index]
        func = next(f for f in self.exercise.functions if f.kind == self.cases[index].kind)
        def_line = self.lines.get(func.name)
        bad = [r for r in done if r["status"] != "RAN"]
        if bad:
            worst = max(bad, key=lambda r: STATUSES.index(r["status"]))
            same = [r for r in bad if r["status"] == worst["status"]]
            more = f" (and {len(same) - 1} more ranks)" if len(same) > 1 else ""
            return worst["status"], self._at(worst["message"], worst.get("line")) + more, worst.get("line")
        rules = self.exercise.rules
        for rank, rec in enumerate(done):  # the course rules, judged here from what the rank recorded
            if rules is None:
                break
            if not isinstance(rec.get("course"), dict):
                return "FAIL", (f"rank {rank}: the grader's record of this call is missing (did the code "
                                f"change the communicator it was given?) (in {func.name} of {self.name})"), def_line
            case = self.cases[index]
            found = course.judge(rules, rec["course"], {"length": case.length, "ranks": self.ranks,
                                                        "itemsize": np.dtype(case.dtype).itemsize})
            if found is not None:
                text, line = found
                return "FAIL", self._at(f"rank {rank} {text}", line or def_line), line or def_line
        for rank, rec in enumerate(done):  # first: the buffers of such a call are not settled
            if rec.get("unfinished"):
                desc = rec["unfinished"][0]
                return "FAIL", (f"rank {rank} returned before completing {desc}: Wait for every request "
                                f"(or MPI.Request.Waitall) before returning; its buffer may not be filled yet "
                                f"(in {func.name}, line {def_line} of {self.name})"), def_line
        problems: list[str] = []
        results = seg.results(index, self.ranks)
        for rank, rec in enumerate(done):
            meta, answer, got = seg.prep[index][rank], seg.answers[index][rank], results[rank]
            if meta.get("expected"):
                if rec.get("unreadable"):
                    problems.append(f"rank {rank} result unreadable: {rec['unreadable']}")
                else:
                    value = None if rec.get("returned_none") else got.get("result")
                    text = compare(Prepared((), {}, lambda r: r, answer.get("expected"), meta["exact"]), value)
                    if text and value is not None:  # say where, in the exercise's own terms
                        kind = self.cases[index].kind
                        if kind == "halo2d":
                            text = hints.halo_difference(value, answer.get("expected")) or text
                        elif kind == "split_sums":
                            text = hints.pair_difference(value, answer.get("expected"),
                                                         ("row_sum (over your row)", "col_sum (over your column)")) or text
                    if text and self.cases[index].op == "FIRST":
                        text += f" ({hints.OP_FIRST})"
                    if text:
                        problems.append(f"rank {rank} {text}")
        if problems:
            more = f" (and {len(problems) - 1} more ranks)" if len(problems) > 1 else ""
            return "FAIL", problems[0] + more + f" (in {func.name}, line {def_line} of {self.name})", def_line
        for rank in range(self.ranks):
            meta, answer, got = seg.prep[index][rank], seg.answers[index][rank], results[rank]
            for key in meta.get("checked", []):
                if key in done[rank].get("outputs", []):  # returned as its result (filled in place)
                    continue
                before, after = answer.get(key), got.get(key)
                if before is None or after is None or before.shape != after.shape:
                    continue
                if not np.array_equal(before, after):
                    at = int(np.flatnonzero(before.reshape(-1) != after.reshape(-1))[0])
                    arg = int(key[2:]) + 2  # comm is argument 1
                    return "FAIL", (f"rank {rank} changed its input (argument {arg} of {func.name}) during the "
                                    f"call, first at index {at}: the caller's send buffer must stay as it was "
                                    f"(line {def_line} of {self.name})"), def_line
        logs = [[Event(*row) for row in rec["log"]] for rec in done]
        trace = analyse(logs)
        lost = [m for m in trace.messages if m.t_recv is None]
        if lost:
            m = lost[0]
            more = f" (and {len(lost) - 1} more)" if len(lost) > 1 else ""
            return "FAIL", (f"rank {m.src} sent a message to rank {m.dst} ({m.nbytes} bytes, tag {m.tag}) that was "
                            f"never received{more}: every Send needs a matching Recv, zero-length ones too "
                            f"(in {func.name}, line {def_line} of {self.name})"), def_line
        ref = seg.prep[index][0].get("reference")
        if ref is not None and self.exercise.pattern_check == "reference":
            ref_logs = [[Event(*row) for row in seg.prep[index][r]["reference"]] for r in range(self.ranks)]
            text = _pattern_difference(trace, analyse(ref_logs), self.exercise.name)
            if text:
                return "FAIL", text + f" (in {func.name}, line {def_line} of {self.name})", def_line
        return "PASS", "", None

    def run(self, root: Path, emit: Callable[[Record], None]) -> list[Record]:
        verdicts: dict[int, tuple[str, str, int | None]] = {}
        queue = [(0, len(self.cases))]
        stops = 0
        notes: dict[str, None] = {}
        if sandbox.NOTE[sandbox.mode()]:
            notes[sandbox.NOTE[sandbox.mode()]] = None
        while queue and stops <= MAX_STOPS:
            start, end = queue.pop(0)
            seg = self._segment(root, start, end)
            notes.update(dict.fromkeys(seg.notes))
            for index, recs in seg.done.items():
                for rank, rec in enumerate(recs):
                    if rec.get("outside"):
                        notes[f"rank {rank} tried to write outside its folder ({rec['outside']})"] = None
            if seg.stop is None:
                for index in range(start, end):
                    verdicts[index] = self.judge(index, seg)
                self._apply_monitor(seg, start, end, verdicts, root)
                continue
            stops += 1
            index, status, message = seg.stop
            verdicts[index] = (status, message, None)
            if seg.done and index > start:  # finished, but not seen by the monitor: run them again
                queue.insert(0, (start, index))
            if index + 1 < end:
                queue.append((index + 1, end))
            if status == "DEADLOCK":  # one timeout per rank count: the next cases would most likely hang too
                hung = f"not run: the file hung in an earlier case with {self.ranks} ranks (one timeout per rank " \
                       f"count; fix that case first)"
                queue = [(s, e) for s, e in queue if e <= index]  # cases before it still get their verdict
                for index2 in range(index + 1, len(self.cases)):
                    verdicts.setdefault(index2, ("NOT RUN", hung, None))
        for start, end in queue:  # the file hung or crashed too often at this rank count
            for index in range(start, end):
                verdicts.setdefault(index, ("NOT RUN", f"not run: the job crashed {stops} times with "
                                                       f"{self.ranks} ranks", None))
        records = []
        for index, case in enumerate(self.cases):
            status, message, line = verdicts[index]
            func = next(f for f in self.exercise.functions if f.kind == case.kind)
            rec = Record(self.exercise.name, self.path, func.name, self.ranks, case.root, case.length, case.dtype,
                         status, message, case.op, line, "; ".join(notes))
            records.append(rec)
            emit(rec)
        return records

    def _baseline(self, root: Path, start: int, end: int) -> dict[tuple[int, int], int] | None:
        """Point-to-point messages Open MPI counts when the cases are only prepared (cached per class)."""
        from pimpi import procs
        from pimpi.cluster import launch

        key = (self.exercise.name, self.ranks, start, end)
        with _BASELINE_LOCK:
            if key in _BASELINES:
                return _BASELINES[key]
        outdir = Path(tempfile.mkdtemp(prefix="base-", dir=root))
        for sub in ("prep", "res", "mon"):
            (outdir / sub).mkdir()
        env = launch.mpi_env()
        env.update(OMPI_MCA_pml_monitoring_enable="2", OMPI_MCA_pml_monitoring_enable_output="3",
                   OMPI_MCA_pml_monitoring_filename=str(outdir / "mon" / "prof"))
        target = ["-m", "pimpi.collectives.exercises.worker", str(outdir), self.exercise.name, self.path,
                  str(start), str(end), "--prepare-only"]
        cmd = launch.mpirun_command(launch.Launch(nprocs=self.ranks, target=target))
        with launch.private_session(env) as env:
            with open(outdir / "mpirun.log", "w", encoding="utf-8") as log:
                proc = procs.start(cmd, guard=True, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=str(outdir))
            try:
                code = procs.wait(proc, timeout=STARTUP)
            finally:
                if proc.poll() is None:
                    procs.end_group(proc)
        report = read_reports(outdir / "mon", self.ranks) if code == 0 else None
        found = None if report is None else report.sent
        with _BASELINE_LOCK:
            _BASELINES[key] = found
        return found

    def _apply_monitor(self, seg: _Segment, start: int, end: int,
                       verdicts: dict[int, tuple[str, str, int | None]], root: Path) -> None:
        """Fail every case whose traffic Open MPI saw but the trace did not (a bypass)."""
        if not self.monitored or self.ranks == 1:
            return
        if seg.monitor is None:
            found = [(None, "Open MPI's monitoring report is missing (did the code end its process?)")]
        else:
            logs = [[row for index in range(start, end) for row in seg.done[index][r]["log"]]
                    + [row for index in range(start, end) for row in seg.prep[index][r].get("reference", [])]
                    for r in range(self.ranks)]
            found = seg.monitor.problems(logs, seg.harness_dups, start, end)
            if found:  # maybe the preparation's own large messages: count them in a job of their own
                baseline = self._baseline(root, start, end)
                if baseline is not None:
                    mine = [[row for index in range(start, end) for row in seg.done[index][r]["log"]]
                            for r in range(self.ranks)]
                    found = seg.monitor.problems(mine, seg.harness_dups, start, end, baseline)
        for where, text in reversed(found):  # the first problem found is the one shown
            for index in range(start, end):  # going around the grader is the cause of any other failure
                if verdicts[index][0] in ("PASS", "FAIL") and (where is None or where == index):
                    func = next(f.name for f in self.exercise.functions if f.kind == self.cases[index].kind)
                    line = self.lines.get(func)
                    verdicts[index] = ("FAIL", f"{text} (in {func}, line {line} of {self.name})", line)


def _pattern_difference(mine: Any, ref: Any, name: str) -> str | None:
    """Which way the learner's messages differ from the reference algorithm's, or None."""
    def per_rank(trace: Any) -> list[int]:
        counts = [0] * trace.ranks
        for m in trace.messages:
            counts[m.src] += 1
        return counts

    got, want = per_rank(mine), per_rank(ref)
    parts = []
    if mine.rounds != ref.rounds:
        parts.append(f"{mine.rounds} rounds where it takes {ref.rounds} "
                     f"({'extra' if mine.rounds > ref.rounds else 'fewer'} steps)")
    if got != want:
        rank = next(r for r in range(len(got)) if got[r] != want[r])
        parts.append(f"rank {rank} sent {got[rank]} messages where it sends {want[rank]} "
                     f"(messages per rank: yours {got}, the algorithm's {want})")
    return f"not the {name} algorithm: " + "; ".join(parts) if parts else None


def _zero(exercise: Exercise, path: str, sizes: list[int], why: str) -> list[Record]:
    """Every case of a file that cannot be graded at all: that learner's zero."""
    out = []
    for ranks in sizes:
        for case in cases_for(exercise, ranks):
            func = next(f for f in exercise.functions if f.kind == case.kind)
            out.append(Record(exercise.name, path, func.name, ranks, case.root, case.length, case.dtype,
                              "ERROR", why, case.op))
    return out


def grade(pairs: list[tuple[str, str]], sizes: list[int], timeout: float = 10.0,
          emit: Callable[[Record], None] = lambda r: None, jobs: int | None = None,
          strict: bool = True) -> list[Record]:
    """Grade each (exercise name, file) at every rank count in `sizes`, `jobs` mpiruns at once.

    strict: a file that is missing, does not parse or lacks a function raises ValueError
    before anything runs; otherwise it is that learner's zero and the others are graded.
    """
    if timeout <= 0:
        raise ValueError(f"timeout must be > 0, got {timeout!r}")
    exercises = [(get_exercise(name), path) for name, path in pairs]
    broken: dict[int, str] = {}
    for number, (exercise, path) in enumerate(exercises):
        if not Path(path).is_file():
            raise ValueError(f"no such file: {path}")  # a typo of the teacher's, not a learner's zero
        try:
            verify_source(exercise, path)
        except ValueError as exc:
            if strict:
                raise
            broken[number] = str(exc)
    tasks = [(number, ranks) for number in range(len(exercises)) if number not in broken for ranks in sizes]
    from pimpi import procs

    folders = contextlib.ExitStack()  # removed at the end, or by the guard if this process is killed
    root = Path(folders.enter_context(procs.temporary_folder("pimpi-check-")))
    results: dict[tuple[int, int], list[Record]] = {}
    try:
        def one(task: tuple[int, int]) -> list[Record]:
            number, ranks = task
            exercise, path = exercises[number]
            folder = Path(tempfile.mkdtemp(prefix=f"f{number}-n{ranks}-", dir=root))
            try:
                return _Job(exercise, path, ranks, timeout, stop).run(folder, emit)
            finally:
                shutil.rmtree(folder, ignore_errors=True)

        workers = max(1, min(jobs or default_jobs(), len(tasks) or 1))
        stop = threading.Event()
        signals = procs.stop_signals() if threading.current_thread() is threading.main_thread() \
            else contextlib.nullcontext()
        with signals, ThreadPoolExecutor(max_workers=workers) as pool:  # SIGTERM/SIGHUP: Stopped
            try:
                for task, found in zip(tasks, pool.map(one, tasks)):
                    results[task] = found
            except BaseException:  # Ctrl-C, a signal turned exception, a bug: end every running job
                stop.set()
                pool.shutdown(wait=True, cancel_futures=True)
                raise
    finally:
        folders.close()
    records: list[Record] = []
    for number, (exercise, path) in enumerate(exercises):
        if number in broken:
            found = _zero(exercise, path, sizes, broken[number])
            for rec in found:
                emit(rec)
            records += found
            continue
        for ranks in sizes:
            records += results[(number, ranks)]
    return records


def check_files(pairs: list[tuple[str, str]], sizes: list[int], timeout: float = 10.0,
                emit: Callable[[Record, Case], None] = lambda r, c: None, jobs: int | None = None) -> list[Record]:
    """Grade each (exercise name, file) at every rank count in `sizes` (strict about bad files)."""
    return grade(pairs, sizes, timeout, lambda rec: emit(rec, rec.case), jobs, strict=True)


def check_file(name: str, path: str, sizes: list[int], timeout: float = 10.0,
               emit: Callable[[Record, Case], None] = lambda r, c: None) -> list[Record]:
    """Grade `path` for exercise `name` at every rank count in `sizes`."""
    return check_files([(name, path)], sizes, timeout, emit)
