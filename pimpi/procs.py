"""Running external processes in their own process group, and ending the whole group.

Every program pimpi starts (mpirun, renderers, encoders, graders) goes through `start`,
so one `end_group` ends it with all its children, and `stop_signals` turns SIGTERM and
SIGHUP into an exception so the same cleanup runs as for Ctrl-C. `watch_parent` turns the
death of this process's parent (a dropped ssh session, a SIGKILLed launcher, a rank's
mpirun or prted) into a SIGTERM, so a process that is stopped that way cleans up too.
`stopping` is both together; `EXIT_*` are the exit codes every pimpi command uses.

A process can be killed before its clean-up runs (Open MPI sends a rank SIGKILL 0.2 s
after SIGTERM). So what it starts with `guard=True`, and the folders it makes with
`temporary_folder`, are also registered with a guard: a small process in its own session
that reads a pipe from this one and, when the pipe closes (this process ended, however),
ends every group still registered and removes every folder.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any, Iterator, Sequence

from pimpi.fileio import last_lines

__all__ = ["start", "end_group", "group_alive", "wait", "Stopped", "stop_signals", "watch_parent", "stopping",
           "EXIT_OK", "EXIT_FAILED", "EXIT_USAGE", "EXIT_TIMEOUT", "EXIT_INTERRUPTED", "ProcessResult",
           "run_process", "output", "CommandError", "temporary_folder", "guard_pid", "sweep", "MARK_ENV"]

EXIT_OK = 0
EXIT_FAILED = 1  # a runtime failure
EXIT_USAGE = 2  # bad input, refused before any work
EXIT_TIMEOUT = 124  # as timeout(1)
EXIT_INTERRUPTED = 130  # Ctrl-C; SIGTERM and SIGHUP give 143 and 129 (128 + the signal)


class Stopped(BaseException):
    """SIGTERM or SIGHUP arrived while `stop_signals` was active (BaseException, like Ctrl-C)."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"stopped by {signal.Signals(signum).name}")
        self.signum = signum

    @property
    def exit_code(self) -> int:
        """128 + the signal number, as a shell reports it (143 for SIGTERM, 129 for SIGHUP)."""
        return 128 + self.signum


def start(argv: Sequence[str], guard: bool = False, **popen: Any) -> subprocess.Popen:
    """Start `argv` (no shell) as the leader of a new session and process group.

    stdin defaults to /dev/null, so a child never steals the terminal's input. With
    `guard`, the group is ended by this process's guard if this process dies first
    (`end_group` releases it); for jobs, renderers and encoders, never for daemons meant
    to outlive this process.
    """
    popen.setdefault("stdin", subprocess.DEVNULL)
    proc = subprocess.Popen(list(argv), start_new_session=True, **popen)
    if guard:
        _guard_send(f"+G{proc.pid}")
        _GUARDED.add(proc.pid)
    return proc


# Processes that left their program's group (setsid, a daemonising renderer) still carry the
# environment marker `run_process` gave the program: `sweep` ends them by it. Stdlib only,
# shared by this module and the guard program.
_SWEEP_CODE = r"""
import os, signal, time
def sweep(markers, grace):
    '''SIGTERM, then after `grace` s SIGKILL, every live process whose environment holds
    one of `markers` (b"KEY=VALUE"); returns how many there were.'''
    def marked():
        found = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit() or int(entry) == os.getpid():
                continue
            try:
                with open("/proc/" + entry + "/environ", "rb") as handle:
                    if not markers.intersection(handle.read().split(b"\0")):
                        continue
                with open("/proc/" + entry + "/stat", "rb") as handle:
                    if handle.read().rsplit(b")", 1)[1].split()[0] == b"Z":
                        continue
            except (OSError, IndexError):
                continue
            found.append(int(entry))
        return found
    first = marked()
    if first:
        escalate(marked, os.kill, grace)
    return len(first)
def escalate(live, send, grace):
    '''SIGTERM each item `live()` lists (with `send(item, signal)`), then SIGKILL what is
    still listed after `grace` s; waits up to 5 s more for the last ones.'''
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        items = live()
        if not items:
            return
        for item in items:
            try:
                send(item, sig)
            except OSError:
                pass
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and live():
            time.sleep(0.05)
"""
_sweep_namespace: dict[str, Any] = {}
exec(_SWEEP_CODE, _sweep_namespace)  # noqa: S102 - our own constant code, shared with the guard
sweep = _sweep_namespace["sweep"]
MARK_ENV = "PIMPI_PROC_MARK"  # run_process gives each program a unique value of it

# The guard program: stdlib only (run with -S -I, it needs no site-packages). It ignores
# the stop signals (they are for its owner) and ends with it: on EOF of its stdin.
_GUARD_CODE = _SWEEP_CODE + r"""
import shutil, sys
for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGPIPE):
    signal.signal(s, signal.SIG_IGN)
groups, folders, marks, rest = set(), set(), set(), b""
while True:
    data = os.read(0, 65536)
    if not data:
        break
    *lines, rest = (rest + data).split(b"\n")
    for line in lines:
        text = line.decode("utf-8", "surrogateescape")
        op, kind, value = text[:1], text[1:2], text[2:]
        items = {"G": groups, "M": marks}.get(kind, folders)
        if kind == "G":
            if not value.isdigit():
                continue
            value = int(value)
        (items.add if op == "+" else items.discard)(value)
def alive(pgid):
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
escalate(lambda: [g for g in groups if alive(g)], os.killpg, float(sys.argv[1]))
sweep({m.encode("utf-8", "surrogateescape") for m in marks}, float(sys.argv[1]))
for folder in folders:
    shutil.rmtree(folder, ignore_errors=True)
"""
_GUARD_GRACE = 2.0
_guard_lock = threading.Lock()
_guard: tuple[int, subprocess.Popen] | None = None  # (owner pid, guard process)
_GUARDED: set[int] = set()
_registered: set[str] = set()  # what the guard must know: 'G<pgid>', 'D<path>', 'M<marker>'


def _guard_send(line: str) -> None:
    """Tell this process's guard one change (`+G123`, `-D/path`...). The guard is started on
    first use, and again after a fork or if it died; a new guard is told everything that
    is registered, so nothing is left unguarded."""
    global _guard
    with _guard_lock:
        if _guard is not None and _guard[0] != os.getpid():  # a forked child: its parent's
            _registered.clear()  # groups and folders stay with the parent's guard
            _GUARDED.clear()
        op, item = line[:1], line[1:]
        (_registered.add if op == "+" else _registered.discard)(item)
        for attempt in range(2):
            fresh = _guard is None or _guard[0] != os.getpid() or _guard[1].poll() is not None
            if fresh:
                _guard = (os.getpid(), _start_guard())
            try:
                text = "".join(f"+{i}\n" for i in sorted(_registered)) if fresh else line + "\n"
                _guard[1].stdin.write(text.encode("utf-8", "surrogateescape"))
                _guard[1].stdin.flush()
                return
            except OSError:  # the guard is gone (killed by someone): start another one
                _guard[1].poll()
                _guard = None


def _start_guard() -> subprocess.Popen:
    import sys

    boot = "import os; exec(os.environ.pop('PIMPI_GUARD_CODE'))"  # a short line in ps
    return subprocess.Popen([sys.executable, "-S", "-I", "-c", boot, str(_GUARD_GRACE), "pimpi-guard"],
                            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True, cwd="/", env={**os.environ, "PIMPI_GUARD_CODE": _GUARD_CODE})


def guard_pid() -> int | None:
    """The pid of this process's guard, if it has one (for tests)."""
    return _guard[1].pid if _guard is not None and _guard[0] == os.getpid() else None


@contextlib.contextmanager
def temporary_folder(prefix: str, dir: str | os.PathLike | None = None) -> Iterator[str]:
    """A fresh folder (absolute path) removed when the block ends, and by this process's
    guard if this process is killed inside the block."""
    path = os.path.abspath(tempfile.mkdtemp(prefix=prefix, dir=dir))
    _guard_send(f"+D{path}")
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
        _guard_send(f"-D{path}")


def group_alive(pgid: int) -> bool:
    """True while any process of group `pgid` exists."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def end_group(proc: subprocess.Popen, grace: float = 3.0) -> None:
    """SIGTERM `proc`'s whole process group, SIGKILL what is left after `grace` s.

    The group is ended even when the leader already exited (children may outlive it);
    returns once the leader is reaped and the group is empty (or after a last SIGKILL).
    A Ctrl-C or `Stopped` arriving meanwhile does not cut the clean-up short: the group
    gets SIGKILL at once, and the interruption is raised afterwards.
    """
    pending: BaseException | None = None
    while True:
        try:
            _end_group(proc, grace)
            break
        except (KeyboardInterrupt, Stopped) as exc:  # asked again: no more grace
            pending = pending or exc
            grace = 0.0
    if proc.pid in _GUARDED:
        _GUARDED.discard(proc.pid)
        _guard_send(f"-G{proc.pid}")
    if pending is not None:
        raise pending


def _end_group(proc: subprocess.Popen, grace: float) -> None:
    pgid = proc.pid
    for sig, wait_s in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        if wait_s <= 0:
            continue
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            break
        except PermissionError:
            pass
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            if proc.poll() is not None and not group_alive(pgid):
                break
            time.sleep(0.02)
        else:
            continue
        break
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=5.0)


def wait(proc: subprocess.Popen, timeout: float | None = None, grace: float = 3.0) -> int:
    """Wait for `proc`; on timeout end its group and return EXIT_TIMEOUT (124).

    Ctrl-C or a `Stopped` signal ends the group too and propagates.
    """
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        end_group(proc, grace)
        return EXIT_TIMEOUT
    except BaseException:
        end_group(proc, grace)
        raise


@contextlib.contextmanager
def stop_signals(signals: Sequence[int] = (signal.SIGTERM, signal.SIGHUP)) -> Iterator[None]:
    """Within the block, SIGTERM/SIGHUP raise `Stopped` (so `finally` clean-ups run);
    the previous handlers come back afterwards. Only in the main thread. A signal that is
    ignored (SIGHUP under `nohup`) stays ignored."""
    def handler(signum: int, _frame: Any) -> None:
        raise Stopped(signum)

    previous = {sig: signal.signal(sig, handler) for sig in signals
                if signal.getsignal(sig) is not signal.SIG_IGN}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def watch_parent(interval: float = 0.5, signum: int = signal.SIGTERM) -> None:
    """When this process's parent dies, send `signum` (SIGTERM) to this process, once.

    A process whose parent is killed (even with SIGKILL) is handed to init or a subreaper:
    its parent pid changes. A daemon thread polls for that (PR_SET_PDEATHSIG would fire
    when the parent *thread* that forked us exits, which is not the parent's death). With
    `stop_signals` active the SIGTERM becomes `Stopped`, so the usual cleanup runs.
    Idempotent: one watcher per process.
    """
    global _WATCHER
    with _WATCHER_LOCK:
        if _WATCHER is not None and _WATCHER.is_alive():
            return
        parent = os.getppid()
        if parent <= 1:  # already orphaned (or a container's init): nothing to watch
            return

        def watch() -> None:
            while os.getppid() == parent:
                time.sleep(interval)
            os.kill(os.getpid(), signum)

        _WATCHER = threading.Thread(target=watch, name="pimpi-parent-watch", daemon=True)
        _WATCHER.start()


_WATCHER: threading.Thread | None = None
_WATCHER_LOCK = threading.Lock()


@contextlib.contextmanager
def stopping() -> Iterator[None]:
    """`stop_signals` and `watch_parent` together, for a process that starts others: within
    the block SIGTERM, SIGHUP and its parent's death raise `Stopped` (Ctrl-C stays
    KeyboardInterrupt), so its `finally` clean-ups end what it started. A signal ignored
    when the block starts stays ignored, and under `nohup` (SIGHUP ignored) the parent is
    not watched: the user asked the job to outlive the session."""
    hup_ignored = signal.getsignal(signal.SIGHUP) is signal.SIG_IGN  # under nohup: outlive the session
    with stop_signals():
        if not hup_ignored and threading.current_thread() is threading.main_thread():
            watch_parent()
        yield


@dataclass
class ProcessResult:
    """How an external process ended."""

    returncode: int | None  # None: it could not be started
    timed_out: bool
    seconds: float
    tail: str  # the last lines of its stdout+stderr


def run_process(argv: Sequence[str], timeout: float | None = None, cwd: str | None = None,
                env: dict[str, str] | None = None, tail_lines: int = 6) -> ProcessResult:
    """Run `argv` (no shell) in its own process group; on timeout end the whole group.

    For renderers and encoders whose output only matters when they fail: it goes to a
    temporary file (no pipe can fill up and block the program), and the last `tail_lines`
    lines come back for the error message.
    """
    begin = time.monotonic()
    value = uuid.uuid4().hex
    mark = f"{MARK_ENV}={value}"  # what its children keep after leaving its group (setsid)
    env = {**(os.environ if env is None else env), MARK_ENV: value}
    _guard_send(f"+M{mark}")
    with tempfile.TemporaryFile() as log:
        try:
            proc = start(argv, guard=True, stdout=log, stderr=subprocess.STDOUT, cwd=cwd, env=env)
        except OSError as exc:
            _guard_send(f"-M{mark}")
            return ProcessResult(None, False, 0.0, f"cannot start {argv[0]!r}: {exc.strerror or exc}")
        timed_out = False
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
        finally:
            end_group(proc)  # on timeout, Ctrl-C, and for children that outlive the leader
            sweep({mark.encode()}, 1.0)  # and those that left its group
            _guard_send(f"-M{mark}")
        lines = last_lines(log, tail_lines)
    return ProcessResult(proc.returncode, timed_out, time.monotonic() - begin, "\n".join(lines))


class CommandError(RuntimeError):
    """A short command failed, timed out or was not found; the message is one line naming it."""

    def __init__(self, message: str, missing: bool = False) -> None:
        super().__init__(message)
        self.missing = missing  # the program is not installed


def output(cmd: Sequence[str], timeout: float = 30, input: str | None = None) -> str:
    """Run a short command (a query: ip, sinfo, scontrol...) and return its stdout.

    Raises CommandError with one line: the command and the last line of its error output,
    or that it gave no answer within `timeout` (it is killed), or is not installed.
    """
    cmd = list(cmd)
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, input=input,
                             check=False, stdin=None if input is not None else subprocess.DEVNULL)
    except FileNotFoundError:
        raise CommandError(f"command not found: {cmd[0]}", missing=True) from None
    except subprocess.TimeoutExpired:
        raise CommandError(f"{' '.join(cmd)}: no answer after {timeout:g} s") from None
    if out.returncode != 0:
        err = (out.stderr.strip() or out.stdout.strip()).splitlines()
        raise CommandError(f"{' '.join(cmd)}: {err[-1] if err else f'exit {out.returncode}'}")
    return out.stdout
