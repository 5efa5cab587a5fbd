"""Record every message an algorithm sends, and rebuild its round-by-round picture."""

from __future__ import annotations

import os
import tempfile
from dataclasses import asdict, dataclass, field
from typing import Any, Callable
from xml.sax.saxutils import escape

__all__ = [
    "ForbiddenCall", "TracingComm", "Event", "Message", "Trace", "analyse", "gather_trace",
    "format_bytes", "format_trace", "trace_svg", "write_text_atomic", "write_png",
    "TraceReport", "check_request", "trace_collective", "trace_call",
]

# Pickling (lowercase) calls: the algorithm must move NumPy buffers instead.
PICKLED = (
    "send", "recv", "isend", "irecv", "sendrecv", "ssend", "issend", "bsend", "ibsend",
    "mprobe", "improbe", "bcast", "reduce", "allreduce", "scatter", "gather", "allgather",
    "alltoall", "scan", "exscan",
)
# Built-in collectives: the algorithm must build them from point-to-point calls.
_BUILTIN_BASE = (
    "Bcast", "Reduce", "Allreduce", "Scatter", "Scatterv", "Gather", "Gatherv", "Allgather",
    "Allgatherv", "Alltoall", "Alltoallv", "Alltoallw", "Reduce_scatter", "Reduce_scatter_block",
    "Scan", "Exscan", "Barrier",
)
BUILTIN = _BUILTIN_BASE + tuple("I" + name[0].lower() + name[1:] for name in _BUILTIN_BASE) + tuple(
    name + "_init" for name in _BUILTIN_BASE
) + ("barrier",)


class ForbiddenCall(RuntimeError):
    """An algorithm used a pickled call or a built-in collective on a TracingComm."""

    def __init__(self, name: str, kind: str) -> None:
        self.name, self.kind = name, kind
        if kind == "pickled":
            text = f"pickled {name}() used; this exercise asks for buffer calls (Send/Recv)"
        else:
            text = f"built-in {name}() used; this exercise asks for point-to-point calls (Send/Recv)"
        super().__init__(text)

    def advice(self) -> str:
        """What a learner should do instead, in one line."""
        if self.kind == "pickled":
            upper = self.name[0].upper() + self.name[1:]
            return f"uses pickled comm.{self.name}; use comm.{upper} on NumPy buffers"
        return f"uses built-in comm.{self.name}; build it from comm.Send/comm.Recv"


@dataclass
class Event:
    """One send (kind 'S') or completed receive ('R') on one rank, in program order."""

    kind: str
    peer: int  # destination of a send, source of a receive (-1: unknown wildcard)
    tag: int
    nbytes: int
    time: float


@dataclass
class Message:
    """One matched message with its causal round and its place on the one-port critical path."""

    src: int
    dst: int
    tag: int
    nbytes: int
    round: int
    t_send: float
    t_recv: float | None = None
    path_messages: int = 0
    path_bytes: int = 0
    depth: int = 0  # causal depth: 1 + the deepest message its sender had received


@dataclass
class Trace:
    """A whole run: messages in send order, and its totals."""

    ranks: int
    messages: list[Message] = field(default_factory=list)
    path: tuple[int, int] = (0, 0)  # (messages, bytes) on the one-port critical path

    @property
    def depth(self) -> int:
        """Longest chain of messages each caused by the one before (ignores one-port order)."""
        return max((m.depth for m in self.messages), default=0)

    @property
    def rounds(self) -> int:
        return max((m.round for m in self.messages), default=0)

    @property
    def total_bytes(self) -> int:
        return sum(m.nbytes for m in self.messages)

    @property
    def critical_path(self) -> tuple[int, int]:
        """(messages, bytes) on the longest one-port chain: the α–β cost the run paid."""
        return tuple(self.path)  # type: ignore[return-value]

    def by_round(self) -> dict[int, list[Message]]:
        out: dict[int, list[Message]] = {}
        for msg in sorted(self.messages, key=lambda m: (m.round, m.src, m.dst)):
            out.setdefault(msg.round, []).append(msg)
        return out

    def to_dict(self) -> dict[str, Any]:
        path_msgs, path_bytes = self.critical_path
        return {
            "ranks": self.ranks, "messages": [asdict(m) for m in self.messages],
            "totals": {"messages": len(self.messages), "bytes": self.total_bytes, "rounds": self.rounds, "depth": self.depth,
                       "critical_path_messages": path_msgs, "critical_path_bytes": path_bytes},
        }


def _nbytes(buf: Any) -> int:
    """Bytes in an mpi4py buffer spec: an array, or [array, (count,) datatype]."""
    if isinstance(buf, (list, tuple)):
        if not buf:
            return 0
        data = buf[0]
        rest = [item for item in buf[1:] if item is not None]
        count = next((item for item in rest if isinstance(item, int)), None)
        dtype = next((item for item in rest if hasattr(item, "Get_size")), None)
        if count is not None and dtype is not None:
            return count * dtype.Get_size()
        return _nbytes(data)
    if buf is None:
        return 0
    try:
        return memoryview(buf).nbytes
    except TypeError:
        return int(getattr(buf, "nbytes", 0))


_REQUEST_CLASS: Any = None


def _request_class() -> Any:
    """A Request subclass that reports its completion back to its TracingComm.

    It stays a real MPI.Request, so `MPI.Request.Waitall(list)` accepts it; a
    Waitall completion is noticed at the comm's next call (or at `finish`).
    """
    global _REQUEST_CLASS
    if _REQUEST_CLASS is None:
        from mpi4py import MPI

        class TracedRequest(MPI.Request):
            """MPI.Request that tells its TracingComm when a receive completes."""

            def Wait(self, status: Any = None) -> bool:  # noqa: N802 (mpi4py's name)
                watch = self.__dict__.get("_pimpi_watch")
                if watch is not None:
                    watch(f"Wait() on {self.__dict__.get('_pimpi_desc', 'a request')}")
                st = status if status is not None else MPI.Status()
                MPI.Request.Wait(self, st)
                _notify(self, st)
                return True

            def Test(self, status: Any = None) -> bool:  # noqa: N802
                st = status if status is not None else MPI.Status()
                done = MPI.Request.Test(self, st)
                if done:
                    _notify(self, st)
                return done

        _REQUEST_CLASS = TracedRequest
    return _REQUEST_CLASS


def _notify(req: Any, status: Any) -> None:
    owner = req.__dict__.pop("_pimpi_owner", None)
    if owner is not None:
        owner._complete(req, status)


class TracingComm:
    """A communicator proxy that records every point-to-point message.

    Send/Recv/Sendrecv/Isend/Irecv go to the real communicator and are logged
    in program order; pickled calls and built-in collectives raise ForbiddenCall.
    Rounds are rebuilt later from all ranks' logs (see `analyse`).
    """

    def __init__(self, comm: Any, watch: Callable[[str], None] | None = None) -> None:
        from mpi4py import MPI

        self._comm = comm
        self._mpi = MPI
        self.events: list[Event] = []
        self._pending: list[Any] = []
        self._watch = watch  # told about each call before it may block (the checker logs it)

    # -- what an algorithm may read --------------------------------------------------
    @property
    def rank(self) -> int:
        return self._comm.Get_rank()

    @property
    def size(self) -> int:
        return self._comm.Get_size()

    def Get_rank(self) -> int:  # noqa: N802
        return self._comm.Get_rank()

    def Get_size(self) -> int:  # noqa: N802
        return self._comm.Get_size()

    @property
    def real(self) -> Any:
        """The wrapped communicator (for the harness, not for the algorithm)."""
        return self._comm

    def __getattr__(self, name: str) -> Any:
        if name in PICKLED:
            raise ForbiddenCall(name, "pickled")
        if name in BUILTIN:
            raise ForbiddenCall(name, "builtin")
        return getattr(self._comm, name)

    # -- recording -------------------------------------------------------------------
    def _about(self, call: str, **args: Any) -> str:
        """'Recv(source=any, tag=0)', announced to `watch` before the call may block."""
        text = ", ".join(f"{k}={'any' if v == -1 else v}" for k, v in args.items())
        text = f"{call}({text})"
        if self._watch is not None:
            self._watch(text)
        return text

    def _traced(self, req: Any, desc: str) -> Any:
        traced = _request_class()(req)
        traced.__dict__["_pimpi_desc"] = desc
        if self._watch is not None:
            traced.__dict__["_pimpi_watch"] = self._watch
        return traced

    def _record(self, kind: str, peer: int, tag: int, nbytes: int) -> None:
        self.events.append(Event(kind, int(peer), int(tag), int(nbytes), self._mpi.Wtime()))

    def _sweep(self) -> None:
        """Log receives that completed inside Waitall since the last call."""
        if not self._pending:
            return
        still = []
        for req in self._pending:
            if "_pimpi_owner" not in req.__dict__:
                continue  # already logged through Wait/Test
            if req:  # handle not null: still in flight
                still.append(req)
            else:
                source, tag, nbytes = req.__dict__.pop("_pimpi_posted")
                del req.__dict__["_pimpi_owner"]
                self._record("R", source, tag, nbytes)
        self._pending = still

    def _complete(self, req: Any, status: Any) -> None:
        source, tag, nbytes = req.__dict__.pop("_pimpi_posted")
        got = status.Get_source()
        if got >= 0:
            source, tag, nbytes = got, status.Get_tag(), status.Get_count(self._mpi.BYTE)
        self._record("R", source, tag, nbytes)

    def _log_recv(self, status: Any) -> None:
        self._record("R", status.Get_source(), status.Get_tag(), status.Get_count(self._mpi.BYTE))

    def finish(self) -> list[Event]:
        """Log any receive completed by a final Waitall; return this rank's events."""
        self._sweep()
        return self.events

    # -- point-to-point --------------------------------------------------------------
    def _send(self, name: str, buf: Any, dest: int, tag: int) -> None:
        self._sweep()
        self._about(name, dest=dest, tag=tag)
        self._record("S", dest, tag, _nbytes(buf))
        getattr(self._comm, name)(buf, dest, tag)

    def Send(self, buf: Any, dest: int, tag: int = 0) -> None:  # noqa: N802
        self._send("Send", buf, dest, tag)

    def Ssend(self, buf: Any, dest: int, tag: int = 0) -> None:  # noqa: N802
        self._send("Ssend", buf, dest, tag)

    def Rsend(self, buf: Any, dest: int, tag: int = 0) -> None:  # noqa: N802
        self._send("Rsend", buf, dest, tag)

    def Bsend(self, buf: Any, dest: int, tag: int = 0) -> None:  # noqa: N802
        self._send("Bsend", buf, dest, tag)

    def _isend(self, name: str, buf: Any, dest: int, tag: int) -> Any:
        self._sweep()
        desc = self._about(name, dest=dest, tag=tag)
        self._record("S", dest, tag, _nbytes(buf))
        return self._traced(getattr(self._comm, name)(buf, dest, tag), desc)

    def Isend(self, buf: Any, dest: int, tag: int = 0) -> Any:  # noqa: N802
        return self._isend("Isend", buf, dest, tag)

    def Issend(self, buf: Any, dest: int, tag: int = 0) -> Any:  # noqa: N802
        return self._isend("Issend", buf, dest, tag)

    def Irsend(self, buf: Any, dest: int, tag: int = 0) -> Any:  # noqa: N802
        return self._isend("Irsend", buf, dest, tag)

    def Ibsend(self, buf: Any, dest: int, tag: int = 0) -> Any:  # noqa: N802
        return self._isend("Ibsend", buf, dest, tag)

    def Recv(self, buf: Any, source: int = -1, tag: int = -1, status: Any = None) -> None:  # noqa: N802
        self._sweep()
        self._about("Recv", source=source, tag=tag)
        st = status if status is not None else self._mpi.Status()
        self._comm.Recv(buf, source, tag, st)
        self._log_recv(st)

    def Irecv(self, buf: Any, source: int = -1, tag: int = -1) -> Any:  # noqa: N802
        self._sweep()
        desc = self._about("Irecv", source=source, tag=tag)
        req = self._traced(self._comm.Irecv(buf, source, tag), desc)
        req.__dict__["_pimpi_owner"] = self
        req.__dict__["_pimpi_posted"] = (source, tag, _nbytes(buf))
        self._pending.append(req)
        return req

    def Sendrecv(self, sendbuf: Any, dest: int, sendtag: int = 0, recvbuf: Any = None,  # noqa: N802
                 source: int = -1, recvtag: int = -1, status: Any = None) -> None:
        self._sweep()
        self._about("Sendrecv", dest=dest, source=source)
        st = status if status is not None else self._mpi.Status()
        self._record("S", dest, sendtag, _nbytes(sendbuf))
        self._comm.Sendrecv(sendbuf, dest, sendtag, recvbuf, source, recvtag, st)
        self._log_recv(st)

    def Sendrecv_replace(self, buf: Any, dest: int, sendtag: int = 0, source: int = -1,  # noqa: N802
                         recvtag: int = -1, status: Any = None) -> None:
        self._sweep()
        self._about("Sendrecv_replace", dest=dest, source=source)
        st = status if status is not None else self._mpi.Status()
        self._record("S", dest, sendtag, _nbytes(buf))
        self._comm.Sendrecv_replace(buf, dest, sendtag, source, recvtag, st)
        self._log_recv(st)


def gather_trace(comm: Any, events: list[Event], root: int = 0) -> Trace | None:
    """Gather every rank's log to `root` (pickled: it is the harness, not the algorithm)."""
    logs = comm.gather([(e.kind, e.peer, e.tag, e.nbytes, e.time) for e in events], root=root)
    if comm.Get_rank() != root:
        return None
    return analyse([[Event(*row) for row in log] for log in logs])


def _match(logs: list[list[Event]]) -> dict[tuple[int, int], tuple[int, int]]:
    """Map each receive (rank, index) to its send (rank, index).

    MPI never lets two messages on one (source, destination, tag) channel overtake
    each other, so the k-th receive on a channel matches the k-th send on it.
    """
    sends: dict[tuple[int, int, int], list[tuple[int, int]]] = {}
    for rank, log in enumerate(logs):
        for index, ev in enumerate(log):
            if ev.kind == "S":
                sends.setdefault((rank, ev.peer, ev.tag), []).append((rank, index))
    used: dict[tuple[int, int, int], int] = {}
    matched: dict[tuple[int, int], tuple[int, int]] = {}
    wildcards: list[tuple[int, int]] = []
    for rank, log in enumerate(logs):
        for index, ev in enumerate(log):
            if ev.kind != "R":
                continue
            key = (ev.peer, rank, ev.tag)
            if ev.peer < 0 or ev.tag < 0 or key not in sends:
                wildcards.append((rank, index))
                continue
            k = used.get(key, 0)
            if k < len(sends[key]):
                matched[(rank, index)] = sends[key][k]
                used[key] = k + 1
    taken = set(matched.values())
    for rank, index in wildcards:  # an Irecv(ANY_SOURCE) completed by Waitall: best effort
        ev = logs[rank][index]
        for (src, dst, tag), items in sends.items():
            if dst != rank or (ev.peer >= 0 and src != ev.peer) or (ev.tag >= 0 and tag != ev.tag):
                continue
            free = [item for item in items if item not in taken]
            if free:
                matched[(rank, index)] = free[0]
                taken.add(free[0])
                break
    return matched


def analyse(logs: list[list[Event]]) -> Trace:
    """Messages with rounds and one-port critical-path positions, from all ranks' logs.

    Round of a send = 1 + the highest round this rank has received so far or sent
    before (a Lamport clock that ticks on sends): a rank puts one message out per
    round, so a binomial broadcast takes ceil(log2 p) rounds and a linear one p-1,
    as in the classic step-by-step pictures. The critical path also serialises
    each rank's receives (one message in, one out at a time): what α–β costs count.
    """
    matched = _match(logs)
    by_send: dict[tuple[int, int], Message] = {}
    for rank, log in enumerate(logs):
        for index, ev in enumerate(log):
            if ev.kind == "S":
                by_send[(rank, index)] = Message(rank, ev.peer, ev.tag, ev.nbytes, 0, ev.time)
    ranks = len(logs)
    pos = [0] * ranks
    seen_round = [0] * ranks  # highest round received or sent so far
    seen_depth = [0] * ranks  # deepest message received so far
    # one-port clocks, each a [messages, bytes] pair kept componentwise
    dep = [[0, 0] for _ in range(ranks)]  # critical path of the data this rank holds
    out_port = [[0, 0] for _ in range(ranks)]
    in_port = [[0, 0] for _ in range(ranks)]
    progress = True
    while progress:
        progress = False
        for rank, log in enumerate(logs):
            while pos[rank] < len(log):
                ev = log[pos[rank]]
                if ev.kind == "S":
                    msg = by_send[(rank, pos[rank])]
                    msg.round = seen_round[rank] + 1
                    msg.depth = seen_depth[rank] + 1
                    seen_round[rank] = msg.round
                    msg.path_messages = max(out_port[rank][0], dep[rank][0]) + 1
                    msg.path_bytes = max(out_port[rank][1], dep[rank][1]) + msg.nbytes
                    out_port[rank] = [msg.path_messages, msg.path_bytes]
                    pos[rank] += 1
                    progress = True
                    continue
                # a run of receives completes together: take them in causal order
                end = pos[rank]
                while end < len(log) and log[end].kind == "R":
                    end += 1
                batch = [matched.get((rank, i)) for i in range(pos[rank], end)]
                if any(key is not None and by_send[key].round == 0 for key in batch):
                    break  # a sender has not reached that send yet
                for index, key in zip(range(pos[rank], end), batch):
                    if key is not None:
                        by_send[key].t_recv = log[index].time
                msgs = sorted((by_send[key] for key in batch if key is not None),
                              key=lambda m: (m.path_messages, m.path_bytes))
                for msg in msgs:
                    seen_round[rank] = max(seen_round[rank], msg.round)
                    seen_depth[rank] = max(seen_depth[rank], msg.depth)
                    port = in_port[rank]
                    port[0] = max(port[0] + 1, msg.path_messages)
                    port[1] = max(port[1] + msg.nbytes, msg.path_bytes)
                    dep[rank] = [max(dep[rank][0], port[0]), max(dep[rank][1], port[1])]
                pos[rank] = end
                progress = True
        if not progress and any(pos[r] < len(logs[r]) for r in range(ranks)):
            # only possible with a receive we could not match: skip it and go on
            stuck = next(r for r in range(ranks) if pos[r] < len(logs[r]))
            pos[stuck] += 1
            progress = True
    messages = sorted(by_send.values(), key=lambda m: (m.t_send, m.src))
    path = tuple(max((max(out_port[r][k], dep[r][k]) for r in range(ranks)), default=0) for k in (0, 1))
    return Trace(ranks=ranks, messages=messages, path=path)


UNROOTED_EXTRA = ("scatterv", "gatherv")  # traceable, but without a choice of algorithm


def check_request(collective: str, algorithm: str | None, root: int, ranks: int) -> str | None:
    """The algorithm to trace (default: the first listed); ValueError naming a bad value."""
    from pimpi.collectives import ALGORITHMS

    if collective in UNROOTED_EXTRA:
        if algorithm is not None:
            raise ValueError(f"{collective} has one algorithm; drop --algorithm {algorithm}")
    elif collective not in ALGORITHMS:
        names = ", ".join((*ALGORITHMS, *UNROOTED_EXTRA))
        raise ValueError(f"unknown collective {collective!r}; choose from {names}")
    elif algorithm is None:
        algorithm = ALGORITHMS[collective][0]
    elif algorithm not in ALGORITHMS[collective]:
        raise ValueError(f"unknown algorithm {algorithm!r} for {collective}; "
                         f"choose from {', '.join(ALGORITHMS[collective])}")
    if not 0 <= root < ranks:
        raise ValueError(f"--root {root} out of range for {ranks} ranks")
    return algorithm


@dataclass
class TraceReport:
    """What rank 0 shows after a traced run."""

    title: str
    trace: Trace
    prediction: tuple[int, int] | None
    mismatch: str | None  # None: every rank matched MPI's built-in collective
    meta: dict[str, Any]

    def text(self) -> str:
        verdict = "OK (matches MPI's built-in)" if self.mismatch is None else f"MISMATCH: {self.mismatch}"
        return format_trace(self.trace, self.title, self.prediction) + f"\nresult: {verdict}"

    def to_dict(self) -> dict[str, Any]:
        out = {**self.meta, **self.trace.to_dict()}
        out["prediction"] = None if self.prediction is None else {
            "messages": self.prediction[0], "bytes": self.prediction[1]}
        out["result"] = "OK" if self.mismatch is None else "MISMATCH"
        out["mismatch"] = self.mismatch
        return out


def trace_collective(comm: Any, collective: str, algorithm: str | None, length: int,
                     dtype: str = "float64", root: int = 0) -> TraceReport | None:
    """Run one library collective on a TracingComm on every rank; rank 0 gets the report."""
    import functools

    import pimpi.collectives as library

    func = getattr(library, collective)
    if algorithm is not None:
        func = functools.partial(func, algorithm=algorithm)
    name = collective + (f" ({algorithm})" if algorithm else "")
    predict = (collective, algorithm) if algorithm is not None else None
    return trace_call(comm, func, collective, length, dtype, root, name, predict)


def trace_call(comm: Any, func: Callable[..., Any], kind: str, length: int, dtype: str, root: int,
               name: str, predict: tuple[str, str] | None = None) -> TraceReport | None:
    """Run `func` (a library collective or a learner's function) as a `kind` case on a
    TracingComm on every rank, check it against MPI's built-in; rank 0 gets the report.

    `predict` = (collective, algorithm) whose cost() the totals are compared with.
    """
    import numpy as np

    from pimpi.collectives import cost
    from pimpi.collectives.exercises.cases import ROOTED, Case, compare, cost_nbytes, prepare

    ranks = comm.Get_size()
    case = Case(kind, ranks, root, length, dtype)
    prepared = prepare(comm, case)
    private = comm.Dup()
    tracer = TracingComm(private)
    comm.Barrier()
    returned = func(tracer, *prepared.args, **prepared.kwargs)
    events = tracer.finish()
    private.Free()
    problems = comm.gather(compare(prepared, returned), root=0)
    trace = gather_trace(comm, events)
    if trace is None:
        return None
    bad = [(r, text) for r, text in enumerate(problems) if text is not None]
    mismatch = None if not bad else f"rank {bad[0][0]} {bad[0][1]}" + (
        f" (and {len(bad) - 1} more ranks)" if len(bad) > 1 else "")
    itemsize = np.dtype(dtype).itemsize
    nbytes = cost_nbytes(kind, length, itemsize, ranks)
    prediction = None
    if predict is not None:
        msgs, cbytes = cost(predict[0], predict[1], nbytes, ranks)
        prediction = (int(round(msgs)), int(round(cbytes)))
    where = f", root {root}" if kind in ROOTED else ""
    title = f"{name} on {ranks} ranks{where}, {length} x {dtype} ({format_bytes(length * itemsize)})"
    meta = {"collective": kind, "name": name, "length": length, "dtype": dtype, "root": root,
            "nbytes": nbytes, "algorithm": predict[1] if predict else None}
    return TraceReport(title, trace, prediction, mismatch, meta)


def format_bytes(n: float) -> str:
    """1024 -> '1.0 KiB'; 12 -> '12 B'."""
    if n < 1024:
        return f"{int(n)} B"
    for unit in ("KiB", "MiB", "GiB"):
        n /= 1024.0
        if n < 1024 or unit == "GiB":
            return f"{n:.1f} {unit}"
    return f"{n:.1f} GiB"  # pragma: no cover


def format_trace(trace: Trace, title: str, prediction: tuple[int, int] | None = None,
                 max_per_round: int = 16) -> str:
    """The round-by-round terminal diagram, then totals beside the α–β prediction."""
    lines = [title]
    width = len(f"r{trace.ranks - 1}")
    for rnd, msgs in trace.by_round().items():
        lines.append(f"round {rnd}: {len(msgs)} message{'s' if len(msgs) != 1 else ''}")
        for msg in msgs[:max_per_round]:
            lines.append(f"  r{msg.src:<{width - 1}} -> r{msg.dst:<{width - 1}}  {format_bytes(msg.nbytes)}")
        if len(msgs) > max_per_round:
            lines.append(f"  ... {len(msgs) - max_per_round} more")
    path_msgs, path_bytes = trace.critical_path
    lines.append(f"messages: {len(trace.messages)}   bytes: {format_bytes(trace.total_bytes)}"
                 f"   rounds: {trace.rounds} (causal depth {trace.depth})")
    measured = f"critical path: {path_msgs} messages, {format_bytes(path_bytes)}"
    if prediction is not None:
        measured += f"   (alpha-beta model: {prediction[0]} messages, {format_bytes(prediction[1])})"
    lines.append(measured)
    return "\n".join(lines)


def trace_svg(trace: Trace, title: str = "") -> str:
    """SVG: one horizontal lane per rank, one arrow per message, one column per round."""
    per_round = trace.by_round()
    busiest = max((len(msgs) for msgs in per_round.values()), default=1)
    lane, col, left, top = 40, max(110, 18 * busiest + 30), 60, 50
    rounds = max(trace.rounds, 1)
    width = max(left + col * rounds + 40, left + 7 * len(title) + 20)
    height = top + lane * max(trace.ranks - 1, 0) + 50
    parts = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11">',
        '<defs><marker id="head" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" '
        'fill="#1f5fa8"/></marker></defs>',
        f'<text x="{left}" y="20" font-size="13">{escape(title)}</text>',
    ]
    for rnd in range(1, rounds + 1):
        x = left + col * (rnd - 1) + col // 2
        parts.append(f'<text x="{x}" y="38" text-anchor="middle" fill="#666">round {rnd}</text>')
    for rank in range(trace.ranks):
        y = top + lane * rank
        parts.append(f'<line x1="{left}" y1="{y}" x2="{width - 20}" y2="{y}" stroke="#bbb"/>')
        parts.append(f'<text x="10" y="{y + 4}">r{rank}</text>')
    for rnd, msgs in per_round.items():
        step = (col - 30) / max(len(msgs), 1)
        for k, msg in enumerate(msgs):
            x1 = left + col * (rnd - 1) + 15 + step * k
            x2 = x1 + min(step * 0.8, 24) + 6
            y1, y2 = top + lane * msg.src, top + lane * msg.dst
            label = f"r{msg.src} -> r{msg.dst} {format_bytes(msg.nbytes)} (round {rnd})"
            parts.append(
                f'<line class="msg" x1="{x1:.1f}" y1="{y1}" x2="{x2:.1f}" y2="{y2}" stroke="#1f5fa8" '
                f'stroke-width="1.5" marker-end="url(#head)"><title>{escape(label)}</title></line>'
            )
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def write_text_atomic(path: str, text: str) -> None:
    """Write `text` to a temporary file beside `path`, then rename it into place."""
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".pimpi-", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_png(trace: Trace, path: str, title: str = "") -> None:
    """The same picture as `trace_svg`, drawn with matplotlib (raises ImportError without it)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rounds = max(trace.rounds, 1)
    fig, ax = plt.subplots(figsize=(1.2 + 1.1 * rounds, 0.8 + 0.45 * trace.ranks))
    for rank in range(trace.ranks):
        ax.axhline(rank, color="#bbb", lw=0.8)
    for rnd, msgs in trace.by_round().items():
        step = 0.7 / max(len(msgs), 1)
        for k, msg in enumerate(msgs):
            x1 = rnd - 0.85 + step * k
            ax.annotate("", xy=(x1 + min(step, 0.25), msg.dst), xytext=(x1, msg.src),
                        arrowprops={"arrowstyle": "->", "color": "#1f5fa8", "lw": 1.2})
    ax.set_xlim(0, rounds)
    ax.set_ylim(trace.ranks - 0.5, -0.5)
    ax.set_yticks(range(trace.ranks), [f"r{r}" for r in range(trace.ranks)])
    ax.set_xticks([r - 0.5 for r in range(1, rounds + 1)], [f"round {r}" for r in range(1, rounds + 1)])
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".pimpi-", suffix=".png", dir=folder)
    os.close(fd)
    try:
        fig.savefig(tmp, format="png", dpi=110)
        os.replace(tmp, path)
    finally:
        plt.close(fig)
        if os.path.exists(tmp):
            os.unlink(tmp)

