"""Run an unmodified single-machine renderer over chunks of frames on every rank, with resume.

The command is an argv template: `{frame}`, `{start}`, `{end}` and `{out}` (with format
specs, `{frame:04d}`) are substituted into each token; nothing goes through a shell.

* Without `{frame}` in the command it runs ONCE per chunk, given the chunk's range
  (`{start}`..`{end}`, both included). With `{frame}` it runs once per frame of the chunk,
  one after the other on the same rank.
* `{out}` is a fresh temporary folder per chunk. The renderer writes there; when it exits
  with 0, every expected file (the `expect` patterns, relative to `{out}`) must exist, be
  non-empty and, for PNG and JPEG, be complete. Only then are the files renamed into the
  output folder, so a half-written frame never appears under its final name.
* Chunks are tasks of `run_dynamic` (longest first, retried on another rank, a rank that
  keeps failing gets no more work). A chunk is done when rank 0 has journaled its files;
  a rerun skips chunks whose frames are journaled and still match their checksums.
* Shared storage is assumed unless `collect=True`: then ranks other than 0 render into a
  local temporary folder and send the files to rank 0 as uint8 buffers.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import re
import string
import time
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Callable, NoReturn, Sequence

import numpy as np

from pimpi.mpi import agree, check_shared_folder, root_decides
from pimpi.procs import run_process, temporary_folder
from pimpi.fileio import atomic_write
from pimpi.jobstatus import job_status
from pimpi.render.framespec import chunks as split_chunks
from pimpi.render.framespec import format_frames

__all__ = [
    "PLACEHOLDERS",
    "Template",
    "parse_expect",
    "expected_files",
    "check_output_file",
    "png_size",
    "output_problem",
    "pack_files",
    "unpack_files",
    "find_program",
    "CmdJob",
    "CmdResult",
    "render_chunk",
    "run_cmd",
]

PLACEHOLDERS = ("frame", "start", "end", "out")
_EXPECT_FIELDS = ("frame", "start", "end")
_SAMPLE = {"frame": 1, "start": 1, "end": 2, "out": "/tmp/out"}
_STAGE_PREFIX = ".pimpi-chunk-"
MAX_FORMAT_WIDTH = 64  # of a placeholder's format spec ({frame:0999999999d} would fill the memory)
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _fields(token: str, allowed: Sequence[str], what: str) -> set[str]:
    """Placeholder names used by `token`; ValueError naming an unknown or malformed one."""
    used: set[str] = set()
    try:
        parsed = list(string.Formatter().parse(token))
    except ValueError as exc:
        raise ValueError(f"bad {what} {token!r}: {exc} (write {{{{ and }}}} for literal braces)") from None
    for _literal, name, spec, _conversion in parsed:
        if name is None:
            continue
        if name not in allowed:
            known = ", ".join("{" + a + "}" for a in allowed)
            raise ValueError(f"unknown placeholder {{{name}}} in {what} {token!r}; known: {known}")
        if spec and "{" in spec:
            raise ValueError(f"nested placeholder in {what} {token!r} is not supported")
        if spec and any(len(d) > 3 or int(d) > MAX_FORMAT_WIDTH for d in re.findall(r"\d+", spec)):
            raise ValueError(f"format spec {{{name}:{spec}}} in {what} {token!r}: a width or precision "
                             f"over {MAX_FORMAT_WIDTH} makes no file name")
        used.add(name)
    try:
        token.format(**_SAMPLE)
    except (ValueError, TypeError, KeyError, IndexError) as exc:
        raise ValueError(f"bad format in {what} {token!r}: {exc}") from None
    return used


@dataclass(frozen=True)
class Template:
    """A renderer command with placeholders, validated once."""

    argv: tuple[str, ...]
    per_frame: bool
    fields: frozenset[str]

    @classmethod
    def parse(cls, argv: Sequence[str]) -> "Template":
        """Check every token; ValueError names an unknown placeholder or a bad format spec."""
        if not argv:
            raise ValueError("no renderer command given (put it after --)")
        if _fields(argv[0], PLACEHOLDERS, "renderer name"):
            raise ValueError(f"the renderer name {argv[0]!r} cannot contain placeholders")
        used: set[str] = set()
        for token in argv[1:]:
            used |= _fields(token, PLACEHOLDERS, "command argument")
        if "out" not in used:
            raise ValueError("the command must write into {out} (a per-chunk temporary folder), "
                             "e.g. +O{out}/frame.png; no argument mentions {out}")
        return cls(tuple(argv), "frame" in used, frozenset(used))

    def commands(self, chunk: Sequence[int], out: str) -> list[list[str]]:
        """The argv lists to run for `chunk`: one, or one per frame when `{frame}` is used."""
        start, end = chunk[0], chunk[-1]
        frames = list(chunk) if self.per_frame else [start]
        return [[tok.format(frame=f, start=start, end=end, out=out) for tok in self.argv] for f in frames]


def parse_expect(patterns: Sequence[str]) -> tuple[str, ...]:
    """Validate expected-file patterns (relative paths with {frame}/{start}/{end})."""
    if not patterns:
        raise ValueError("give at least one --expect pattern, e.g. 'frame_{frame:04d}.png'")
    for pattern in patterns:
        _fields(pattern, _EXPECT_FIELDS, "--expect pattern")
        name = PurePosixPath(pattern.format(**_SAMPLE))
        if name.is_absolute() or ".." in name.parts or not name.parts or pattern.endswith("/"):
            raise ValueError(f"--expect pattern {pattern!r} must be a file path relative to {{out}}")
    return tuple(patterns)


def expected_files(patterns: Sequence[str], chunk: Sequence[int]) -> dict[int, list[str]]:
    """Expected file names for each frame of `chunk` (a pattern without {frame} names one
    file for the whole chunk; it is listed under every frame of the chunk)."""
    start, end = chunk[0], chunk[-1]
    result: dict[int, list[str]] = {}
    for frame in chunk:
        names = [p.format(frame=frame, start=start, end=end) for p in patterns]
        result[frame] = list(dict.fromkeys(os.path.normpath(n) for n in names))
    return result


def _png_complete(path: Path) -> str:
    """'' when `path` is a structurally complete PNG (chunks walk to IEND at end of file)."""
    size = path.stat().st_size
    with open(path, "rb") as handle:
        if handle.read(8) != _PNG_MAGIC:
            return "not a PNG (bad signature)"
        pos = 8
        while pos + 12 <= size:
            header = handle.read(8)
            length = int.from_bytes(header[:4], "big")
            kind = header[4:8]
            pos += 12 + length
            if kind == b"IEND":
                return "" if pos == size else "data after IEND"
            handle.seek(pos)
    return "incomplete PNG (no IEND chunk: truncated or still being written)"


def _jpeg_complete(path: Path) -> str:
    with open(path, "rb") as handle:
        head = handle.read(3)
        handle.seek(max(0, path.stat().st_size - 64))
        tail = handle.read()
    if head != b"\xff\xd8\xff":
        return "not a JPEG (bad signature)"
    return "" if b"\xff\xd9" in tail else "incomplete JPEG (no end-of-image marker)"


def png_size(path: str | os.PathLike) -> tuple[int, int] | None:
    """(width, height) from a PNG's IHDR chunk, or None when `path` does not start like a PNG."""
    with open(path, "rb") as handle:
        head = handle.read(24)
    if len(head) < 24 or head[:8] != _PNG_MAGIC or head[12:16] != b"IHDR":
        return None
    return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")


def check_output_file(path: str | os.PathLike) -> str:
    """Why `path` is not a finished output ('' when it is): missing, empty, partial PNG/JPEG."""
    p = Path(path)
    if not p.is_file():
        return "missing"
    if p.stat().st_size == 0:
        return "empty"
    suffix = p.suffix.lower()
    if suffix == ".png":
        return _png_complete(p)
    if suffix in (".jpg", ".jpeg"):
        return _jpeg_complete(p)
    return ""


_KINDS = {stat.S_IFIFO: "a FIFO", stat.S_IFSOCK: "a socket", stat.S_IFCHR: "a character device",
          stat.S_IFBLK: "a block device", stat.S_IFDIR: "a folder"}


def output_problem(folder: str | os.PathLike, name: str) -> str:
    """Why `name` is not a regular file of the renderer's own inside `folder` ('' when it is,
    or when it is missing: `check_output_file` says so).

    Nothing a renderer leaves may reach outside its folder: a symbolic link anywhere on the
    path (to /etc/shadow, say), a hard link to a file elsewhere, a FIFO or a device would
    be read, collected to rank 0 or renamed into the output as if it were a frame.
    """
    path = Path(folder)
    parts = PurePosixPath(name).parts
    for depth, part in enumerate(("",) + parts):
        path = path / part if part else path
        try:
            info = os.lstat(path)
        except FileNotFoundError:
            return ""
        if stat.S_ISLNK(info.st_mode):
            return f"{'{out}' if not part else part!r} is a symbolic link to {os.readlink(path)!r}: refused"
        if depth < len(parts) and not stat.S_ISDIR(info.st_mode):
            return ""  # a file where a folder should be: `missing`
    if not stat.S_ISREG(info.st_mode):
        return f"is {_KINDS.get(stat.S_IFMT(info.st_mode), 'not a regular file')}, not a regular file: refused"
    if info.st_nlink > 1:
        inside = sum(1 for p in Path(folder).rglob("*") if _same_file(p, info))
        if inside < info.st_nlink:
            return "is a hard link to a file outside {out}: refused"
    return ""


def _same_file(path: Path, info: os.stat_result) -> bool:
    try:
        other = os.lstat(path)
    except OSError:
        return False
    return (other.st_dev, other.st_ino) == (info.st_dev, info.st_ino)


def _read_regular(path: Path) -> bytes:
    """The bytes of `path`, refusing a symbolic link or anything but a regular file (a
    renderer still running could swap a checked file for a link)."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            raise OSError(f"{path.name}: not a regular file")
        return handle.read()


def find_program(name: str) -> str | None:
    """The path `name` would run as (PATH lookup unless it has a slash), or None."""
    if "/" in name:
        return name if os.path.isfile(name) and os.access(name, os.X_OK) else None
    return shutil.which(name)


def pack_files(folder: Path, names: Sequence[str]) -> np.ndarray:
    """Files of `folder` as one uint8 array: 8-byte header length, JSON [[name, size]...], bytes."""
    blobs = [(name, _read_regular(folder / name)) for name in names]
    header = json.dumps([[name, len(data)] for name, data in blobs]).encode()
    total = 8 + len(header) + sum(len(data) for _, data in blobs)
    array = np.empty(total, dtype=np.uint8)
    array[:8] = np.frombuffer(len(header).to_bytes(8, "little"), dtype=np.uint8)
    array[8:8 + len(header)] = np.frombuffer(header, dtype=np.uint8)
    pos = 8 + len(header)
    for _, data in blobs:
        array[pos:pos + len(data)] = np.frombuffer(data, dtype=np.uint8)
        pos += len(data)
    return array


def unpack_files(array: np.ndarray) -> list[tuple[str, memoryview]]:
    """The inverse of `pack_files`; ValueError when the buffer is inconsistent."""
    raw = memoryview(np.ascontiguousarray(array, dtype=np.uint8)).cast("B")
    if len(raw) < 8:
        raise ValueError("packed files: buffer too short")
    hlen = int.from_bytes(raw[:8], "little")
    try:
        entries = json.loads(bytes(raw[8:8 + hlen]))
    except ValueError:
        raise ValueError("packed files: bad header") from None
    pos = 8 + hlen
    files = []
    for name, size in entries:
        files.append((str(name), raw[pos:pos + int(size)]))
        pos += int(size)
    if pos != len(raw):
        raise ValueError(f"packed files: {len(raw) - pos} bytes unaccounted for")
    return files


@dataclass
class CmdJob:
    """Everything `pimpi render cmd` was asked for (already validated by the CLI)."""

    template: Template
    expect: tuple[str, ...]
    out_dir: Path
    frames: list[int]
    chunk_size: int = 1
    retries: int = 0
    task_timeout: float | None = None
    collect: bool = False
    force: bool = False
    max_rank_failures: int = 3
    image_size: tuple[int, int] | None = None  # every PNG output must be (width, height)

    def chunks(self) -> list[list[int]]:
        return split_chunks(self.frames, self.chunk_size)

    def signature(self) -> dict[str, Any]:
        """What makes two runs the same job for the journal (not the frame list: a rerun
        may extend it; the chunk size only when names or commands depend on the range)."""
        sig: dict[str, Any] = {"kind": "render cmd", "argv": list(self.template.argv), "expect": list(self.expect)}
        ranged = self.template.fields & {"start", "end"} or any("{start" in p or "{end" in p for p in self.expect)
        if ranged:
            sig["chunk"] = self.chunk_size
        return sig


@dataclass
class CmdResult:
    """The outcome on every rank: counts, what failed for good (chunk label -> reason)."""

    chunks: int
    skipped: int
    done: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    frames_failed: list[int] = field(default_factory=list)
    report: Any = None  # ScheduleReport, or None when nothing had to run

    def to_dict(self) -> dict[str, Any]:
        data = {"chunks": self.chunks, "skipped": self.skipped, "done": self.done, "failed": self.failed,
                "frames_failed": format_frames(self.frames_failed)}
        if self.report is not None:
            data["schedule"] = self.report.to_dict()
        return data


def _chunk_key(chunk: Sequence[int]) -> str:
    return f"{chunk[0]}" if len(chunk) == 1 else f"{chunk[0]}-{chunk[-1]}"


def _check_renderer(comm: Any, program: str) -> None:
    import socket

    found = find_program(program)
    problem = "" if found else f"renderer {program!r} not found on PATH of host {socket.gethostname()}"
    agree(comm, problem)


def _prepare_root(job: CmdJob, chunk_list: list[list[int]]) -> tuple[Any, list[list[int]]]:
    """Rank 0: journal, stale staging folders, and the chunks left to do."""
    from pimpi.journal import Journal

    journal = Journal.open(job.out_dir, job.signature(), force=job.force)
    for stale in job.out_dir.glob(_STAGE_PREFIX + "*"):
        shutil.rmtree(stale, ignore_errors=True)
    todo = []
    for chunk in chunk_list:
        if job.force or not all(journal.done(str(f)) for f in chunk):
            todo.append(chunk)
    return journal, todo


def _fail_task(message: str) -> NoReturn:
    from pimpi.tasks import TaskFailed

    raise TaskFailed(message)


def _run_chunk_commands(job: CmdJob, chunk: Sequence[int], stage: Path) -> None:
    """Run the renderer for `chunk` into `stage` within the chunk's time budget."""
    timeout = job.task_timeout
    deadline = None if timeout is None else time.monotonic() + timeout
    for argv in job.template.commands(chunk, str(stage)):
        left = None if deadline is None else deadline - time.monotonic()
        if left is not None and left <= 0:
            _fail_task(f"timed out after {timeout:g} s")
        res = run_process(argv, timeout=left)
        if res.timed_out:
            _fail_task(f"timed out after {timeout:g} s (process group killed)")
        if res.returncode != 0:
            how = "could not start" if res.returncode is None else f"exit code {res.returncode}"
            tail = res.tail.splitlines()[-1] if res.tail else ""
            _fail_task(f"{Path(argv[0]).name}: {how}" + (f": {tail}" if tail else ""))


def _found_instead(stage: Path) -> str:
    """' (the renderer wrote: a.png, b.png)' - the usual cause of a missing file is a name
    pattern that does not match the renderer's numbering (POV-Ray pads to +KFF's digits)."""
    found = sorted(str(p.relative_to(stage)) for p in stage.rglob("*") if p.is_file())
    if not found:
        return " (the renderer wrote nothing into {out})"
    more = f", ... ({len(found)} files)" if len(found) > 3 else ""
    return f" (the renderer wrote: {', '.join(found[:3])}{more})"


def render_chunk(job: CmdJob, chunk: Sequence[int], pack: bool = False) -> np.ndarray | None:
    """Render one chunk in a fresh staging folder, verify every expected file, then rename
    them into `job.out_dir` (or, with `pack`, return them as one uint8 array for rank 0).

    Raises TaskFailed with a one-line reason; the staging folder is always removed (by
    this rank's guard if the rank is killed), so a failed or stopped chunk leaves nothing.
    """
    with temporary_folder(_STAGE_PREFIX, None if pack else job.out_dir) as folder:
        return _render_in(job, chunk, Path(folder), pack)


def _render_in(job: CmdJob, chunk: Sequence[int], stage: Path, pack: bool) -> np.ndarray | None:
    """`render_chunk` inside its staging folder `stage`."""
    _run_chunk_commands(job, chunk, stage)
    names = list(dict.fromkeys(n for ns in expected_files(job.expect, chunk).values() for n in ns))
    for name in names:
        why = output_problem(stage, name) or check_output_file(stage / name)
        if why == "missing":
            why += _found_instead(stage)
        elif not why and job.image_size and name.lower().endswith(".png"):
            size = png_size(stage / name)
            if size != job.image_size:
                why = f"{size[0]}x{size[1]} pixels, expected {job.image_size[0]}x{job.image_size[1]}" if size else "not a PNG"
        if why:
            _fail_task(f"{name}: {why}")
    if pack:
        try:
            return pack_files(stage, names)
        except OSError as exc:  # swapped for a link or FIFO after the check
            _fail_task(f"cannot read output: {exc}")
    for name in names:
        final = job.out_dir / name
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(stage / name, final)
    return None


def run_cmd(comm: Any, job: CmdJob, progress: Callable[[int, int], None] | None = None) -> CmdResult:
    """Render every chunk of `job` across `comm` (collective); see the module docstring.

    ValueError (on every rank alike) for a missing renderer or an output folder rank 0
    cannot share; per-chunk failures are in the result, not raised.
    """
    from pimpi.tasks import Task, run_dynamic

    rank = comm.rank
    chunk_list = job.chunks()
    _check_renderer(comm, job.template.argv[0])

    journal, todo, usage, problem = None, [], "", ""
    if rank == 0:
        if job.out_dir.exists() and not job.out_dir.is_dir():
            usage = f"--out {str(job.out_dir)!r} is a file, not a folder"
        else:
            try:
                journal, todo = _prepare_root(job, chunk_list)
            except Exception as exc:  # noqa: BLE001 - every rank must hear about it, or they wait
                problem = f"cannot prepare output folder {str(job.out_dir)!r}: {exc}"
    usage, problem, ntodo = root_decides(comm, (usage, problem, len(todo)))
    if usage:
        raise ValueError(usage)
    if problem:
        raise RuntimeError(problem)
    if not job.collect:
        check_shared_folder(comm, job.out_dir, "without shared storage use --collect")

    result = CmdResult(chunks=len(chunk_list), skipped=len(chunk_list) - ntodo)
    if ntodo == 0:
        return result

    local_collect = job.collect and rank != 0

    def work(task: Any) -> np.ndarray | None:
        return render_chunk(job, task.data, pack=local_collect)

    def on_result(task: Any, array: np.ndarray | None, source: int) -> None:
        if array is not None:
            for name, data in unpack_files(array):
                rel = PurePosixPath(name)
                if rel.is_absolute() or ".." in rel.parts:
                    raise ValueError(f"rank {source} sent a file outside the output folder: {name!r}")
                target = job.out_dir / name
                target.parent.mkdir(parents=True, exist_ok=True)
                atomic_write(target, data)
        for frame, names in expected_files(job.expect, task.data).items():
            try:
                journal.record(str(frame), names)
            except FileNotFoundError:
                raise RuntimeError(
                    f"{names[0]} rendered on rank {source} is not visible on rank 0: "
                    "without shared storage use --collect") from None

    tasks = [Task(_chunk_key(c), cost=float(len(c)), data=c) for c in todo] if rank == 0 else []
    renderer = Path(job.template.argv[0]).name
    with job_status(comm, job.out_dir, "render-cmd", renderer, total=len(tasks),
                    skipped=result.skipped) as status:
        def on_saved(task: Any, array: np.ndarray | None, source: int) -> None:
            on_result(task, array, source)
            if status is not None:
                names = [n for ns in expected_files(job.expect, task.data).values() for n in ns]
                if names:
                    status.output(str(names[-1]))

        report = run_dynamic(comm, tasks, work, on_result=on_saved, retries=job.retries,
                             max_rank_failures=job.max_rank_failures, progress=progress, status=status)
        if status is not None and report.failed:
            status.finish("failed", f"{len(report.failed)} of {len(tasks)} chunks failed")
    by_key = {_chunk_key(c): c for c in chunk_list}
    result.report = report
    result.done = list(report.done)
    result.failed = dict(report.failed)
    result.frames_failed = sorted(f for key in report.failed for f in by_key.get(key, []))
    return result
