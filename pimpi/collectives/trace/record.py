"""Record every point-to-point message an algorithm sends: the TracingComm proxy."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from ..phase import phase

__all__ = ["PICKLED", "BUILTIN", "ForbiddenCall", "Event", "TracingComm", "phase"]

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
            if upper in BUILTIN:  # comm.Bcast would be refused too: point at what is allowed
                return (f"uses pickled comm.{self.name}; build it from comm.Send/comm.Recv "
                        "(or Sendrecv, Isend/Irecv) on NumPy buffers")
            return f"uses pickled comm.{self.name}; use comm.{upper} on NumPy buffers"
        return f"uses built-in comm.{self.name}; build it from comm.Send/comm.Recv"


@dataclass
class Event:
    """One send (kind 'S') or completed receive ('R') on one rank, in program order;
    kind 'P' marks the start of a named phase (`label`) of the algorithm."""

    kind: str
    peer: int  # destination of a send, source of a receive (-1: unknown wildcard)
    tag: int
    nbytes: int
    time: float
    label: str = ""  # the phase's name, for kind 'P'



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
        self._requests: list[Any] = []  # every request handed out, to name the ones never completed
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
        self._requests.append(traced)
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

    def phase(self, name: str) -> None:
        """Record that the algorithm starts phase `name` (see `pimpi.collectives.phase`)."""
        self._sweep()
        self.events.append(Event("P", -1, -1, 0, self._mpi.Wtime(), name))

    pimpi_phase = phase  # what `phase(comm, name)` looks for

    def unfinished(self) -> list[str]:
        """'Irecv(source=1, tag=0)' for each request never completed (no Wait, Test or Waitall)."""
        return [req.__dict__.get("_pimpi_desc", "a request") for req in self._requests if req]

    def settle(self) -> None:
        """Wait for every request left open, so that nothing stays in flight into the caller's
        next step (a checker's next case, MPI_Finalize). Not cancelled: whether a cancel wins
        the race with the matching send would change the outcome from run to run."""
        for req in self._requests:
            if req:
                self._mpi.Request.Wait(req)

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

