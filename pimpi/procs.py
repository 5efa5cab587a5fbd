"""Running external processes in their own process group, and ending the whole group.

Every program pimpi starts (mpirun, renderers, encoders, graders) goes through `start`,
so one `end_group` ends it with all its children, and `stop_signals` turns SIGTERM and
SIGHUP into an exception so the same cleanup runs as for Ctrl-C.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from typing import Any, Iterator, Sequence

__all__ = ["start", "end_group", "group_alive", "wait", "Stopped", "stop_signals", "EXIT_TIMEOUT",
           "ProcessResult", "run_process"]

EXIT_TIMEOUT = 124  # as timeout(1)


class Stopped(BaseException):
    """SIGTERM or SIGHUP arrived while `stop_signals` was active (BaseException, like Ctrl-C)."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"stopped by {signal.Signals(signum).name}")
        self.signum = signum

    @property
    def exit_code(self) -> int:
        """128 + the signal number, as a shell reports it (143 for SIGTERM, 129 for SIGHUP)."""
        return 128 + self.signum


def start(argv: Sequence[str], **popen: Any) -> subprocess.Popen:
    """Start `argv` (no shell) as the leader of a new session and process group.

    stdin defaults to /dev/null, so a child never steals the terminal's input.
    """
    popen.setdefault("stdin", subprocess.DEVNULL)
    return subprocess.Popen(list(argv), start_new_session=True, **popen)


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
    """
    pgid = proc.pid
    for sig, wait_s in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
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
    the previous handlers come back afterwards. Only in the main thread."""
    def handler(signum: int, _frame: Any) -> None:
        raise Stopped(signum)

    previous = {sig: signal.signal(sig, handler) for sig in signals}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


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
    with tempfile.TemporaryFile() as log:
        try:
            proc = start(argv, stdout=log, stderr=subprocess.STDOUT, cwd=cwd, env=env)
        except OSError as exc:
            return ProcessResult(None, False, 0.0, f"cannot start {argv[0]!r}: {exc.strerror or exc}")
        timed_out = False
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
        finally:
            end_group(proc)  # on timeout, Ctrl-C, and for children that outlive the leader
        log.seek(0, os.SEEK_END)
        log.seek(max(0, log.tell() - 8192))
        text = log.read().decode(errors="replace").replace("\r", "\n")
    lines = [line.rstrip() for line in text.splitlines() if line.strip()]
    return ProcessResult(proc.returncode, timed_out, time.monotonic() - begin, "\n".join(lines[-tail_lines:]))
