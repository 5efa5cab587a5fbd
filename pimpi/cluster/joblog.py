"""Read the launcher's stderr while a job runs: which nodes were lost, and what noise to drop.

Open MPI 5 ends a job whose node died or went silent with exit status 0 ("PRTE has lost
communication with a remote daemon", "A daemon failed to report back"), so the exit code
alone would call a lost node a success. `JobLog` passes every line through unchanged,
except two kinds of launcher noise, and remembers the nodes those messages name:

* the `plm:ssh: Warning: setpgid(...) failed` line prterun prints on every launch where its
  ssh agent runs in another session (harmless: the agent still ends with the job);
* prterun's "exited with non-zero status" box when a rank already said why in one line
  (`Error: ...`, or pimpi's exit 2 for bad input): the box only repeats that a rank failed.
"""

from __future__ import annotations

import contextlib
import re
import threading
from typing import IO, Iterable

__all__ = ["JobLog", "KEEPALIVE_ENV"]

# TCP keepalives on the launcher's own connections (prterun <-> every node's prted): a node
# whose cable is cut or whose power is lost is noticed within 10 + 3 * 5 s of silence, and
# prterun ends the job, instead of waiting for a connection that never answers again.
KEEPALIVE_ENV = {
    "PRTE_MCA_oob_tcp_keepalive_time": "10",
    "PRTE_MCA_oob_tcp_keepalive_intvl": "5",
    "PRTE_MCA_oob_tcp_keepalive_probes": "3",
}

_SETPGID = re.compile(rb"^\[[^\]]*\] plm:ssh: Warning: setpgid\(\d+,\d+\) failed")
_RULE = re.compile(rb"^-{20,}\s*$")
# a daemon that died or went silent, in the boxes prterun prints for it
_DAEMON_BOX = re.compile(rb"lost communication with a remote daemon|daemon failed to report back"
                         rb"|daemon .*(died|failed|exited) unexpectedly", re.IGNORECASE)
_DAEMON_HOST = (re.compile(rb"Remote daemon:.* on node (\S+)"), re.compile(rb"^\s*Remote host:\s+(\S+)"))
_NONZERO_BOX = re.compile(rb"exited with non-zero status")
_BOX_CODE = re.compile(rb"^\s*Exit code:\s+(\d+)")
_SAID_WHY = re.compile(rb"^(\S+: )?Error: ")  # a one-line error of pimpi (possibly rank-prefixed)
_MAX_BOX_LINES = 60


class JobLog:
    """Copy each (source, sink) pair (the launcher's stdout and stderr, bytes) line by
    line, one thread each: prterun prints its boxes on stdout, the ranks' errors arrive
    on stderr.

    `lost` lists the nodes the launcher said it lost (in order, once each); `said_why` is
    True once a rank printed a one-line `Error: ...`. Call `start()`, then `join()` once
    the launcher has ended.
    """

    def __init__(self, *pairs: tuple[IO[bytes], IO[bytes]], marker: bytes = b"") -> None:
        self.lost: list[str] = []
        self.marker = marker  # `seen_marker` turns True once a line holds it (a failed start)
        self.seen_marker = False
        self.said_why = False
        self.usage_exit = False  # the launcher's box said the first process to fail exited 2 (bad input)
        self._threads = [threading.Thread(target=self._copy, args=pair, name="pimpi-joblog", daemon=True)
                         for pair in pairs]

    def start(self) -> "JobLog":
        for thread in self._threads:
            thread.start()
        return self

    def join(self, timeout: float = 5.0) -> None:
        """Wait until everything the launcher wrote was passed on (at most `timeout` s in
        all: a stray process of the job could hold a pipe open)."""
        import time

        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    def feed(self, lines: Iterable[bytes], sink: IO[bytes]) -> None:
        """Pass `lines` on to `sink` (a thread's work; also callable directly, for tests)."""
        box: list[bytes] | None = None
        for line in lines:
            if box is not None:
                box.append(line)
                if _RULE.match(line) or len(box) >= _MAX_BOX_LINES:
                    self._box(box, sink)
                    box = None
                continue
            if _RULE.match(line):
                box = [line]
                continue
            self._line(line, sink)
        if box is not None:
            self._box(box, sink, closed=False)

    def _copy(self, source: IO[bytes], sink: IO[bytes]) -> None:
        try:
            self.feed(iter(source.readline, b""), sink)
        except (OSError, ValueError):  # our side went away (`| head`): read on, or the launcher blocks
            with contextlib.suppress(OSError, ValueError):
                while source.read(65536):
                    pass

    def _line(self, line: bytes, sink: IO[bytes]) -> None:
        if self.marker and self.marker in line:
            self.seen_marker = True
        if _SETPGID.match(line) or (b"\x00" in line and not line.strip(b"\x00\n")):
            return  # the setpgid warning, or the stray NUL prterun writes after a box
        if _SAID_WHY.match(line):
            self.said_why = True
        _write(sink, [line])

    def _box(self, lines: list[bytes], sink: IO[bytes], closed: bool = True) -> None:
        """A block between two rules: note lost nodes; drop a redundant exit-status box."""
        text = b"".join(lines)
        if self.marker and self.marker in text:
            self.seen_marker = True
        if _DAEMON_BOX.search(text):
            for line in lines:
                for pattern in _DAEMON_HOST:
                    match = pattern.search(line)
                    if match:
                        self._note_lost(match.group(1).decode("utf-8", "replace"))
        if closed and _NONZERO_BOX.search(text):
            codes = [int(m.group(1)) for m in map(_BOX_CODE.match, lines) if m]
            self.usage_exit = self.usage_exit or codes == [2]
            if self.said_why or codes == [2]:
                return
        if not closed:  # the launcher ended inside a box: pass its lines on as they were
            for line in lines:
                self._line(line, sink) if not _RULE.match(line) else _write(sink, [line])
            return
        _write(sink, lines)

    def _note_lost(self, host: str) -> None:
        host = host.rstrip(".,;:")
        if host and host not in self.lost:
            self.lost.append(host)


def _write(sink: IO[bytes], lines: list[bytes]) -> None:
    sink.write(b"".join(lines))
    sink.flush()
