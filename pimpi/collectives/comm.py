"""Comm(comm): an mpi4py communicator whose uppercase collectives run pimpi's algorithms.

    from pimpi.collectives import Comm
    comm = Comm(MPI.COMM_WORLD)                 # or Comm(MPI.COMM_WORLD, {"allreduce": "ring"})
    comm.Allreduce(MPI.IN_PLACE, [x, MPI.DOUBLE], op=MPI.SUM)

Bcast, Gather(v), Scatter(v), Allgather(v), Alltoall(v), Reduce, Allreduce,
Reduce_scatter(_block), Scan, Exscan and Barrier take mpi4py's buffer specs and run
pimpi's algorithms; Ibcast, Iallreduce, Iallgather, Ialltoall and Ibarrier run pimpi's
schedules (pimpi.collectives.nonblocking) and return a Schedule, whose Wait/Test complete
it (MPI.Request.Waitall does not take one: use Schedule.Waitall); everything else,
the other non-blocking collectives included, passes through to the wrapped communicator.
A call pimpi cannot run itself (a derived datatype, MPI.BOTTOM, MAXLOC, ...) is
refused on every rank together and run by MPI's built-in instead; `counts` tells,
per collective, how many calls pimpi ran and how many it refused.
"""

from __future__ import annotations

from typing import Any, Callable

from .bufspec import Refused, is_in_place, simple, vector
from .call import agree

__all__ = ["Comm", "COLLECTIVES"]

COLLECTIVES = ("Barrier", "Bcast", "Gather", "Gatherv", "Scatter", "Scatterv", "Allgather",
               "Allgatherv", "Alltoall", "Alltoallv", "Reduce", "Allreduce",
               "Reduce_scatter_block", "Reduce_scatter", "Scan", "Exscan")
NO_ALGORITHM = ("scatterv", "gatherv")


def _mpi() -> Any:
    from mpi4py import MPI

    return MPI


def _read(spec: Any, blocks: int = 1) -> Any:
    """A send buffer spec as `blocks` blocks."""
    return simple(spec, writable=False).blocks(blocks)


def _write(spec: Any, blocks: int = 1) -> Any:
    """A receive buffer spec as `blocks` blocks."""
    return simple(spec, writable=True).blocks(blocks)


def _or_in_place(spec: Any, read: Callable[[Any, int], Any], blocks: int = 1) -> Any:
    """MPI.IN_PLACE for what mpi4py takes as in place (IN_PLACE, None), else read(spec, blocks)."""
    return _mpi().IN_PLACE if is_in_place(spec) else read(spec, blocks)


def _op(op: Any) -> Any:
    """`op` if pimpi can apply it; Refused otherwise (MAXLOC, MINLOC, REPLACE, NO_OP)."""
    from .ops import resolve_op

    try:
        resolve_op(op)
    except ValueError as exc:
        raise Refused(str(exc)) from None
    return op


class Comm:
    """Drop-in for an mpi4py intracommunicator (see the module docstring).

    `algorithms` maps a collective ("allreduce") to the algorithm to use; others follow
    the decision table. Dup/Clone/Split return a Comm too, sharing `algorithms` and `counts`.
    """

    def __init__(self, comm: Any, algorithms: dict[str, str] | None = None, *,
                 trace: bool = False, check: bool = True) -> None:
        if isinstance(comm, Comm):
            comm = comm.comm
        if comm.Is_inter():
            raise TypeError("Comm wraps intracommunicators only")
        self.comm = comm
        self.algorithms = dict(algorithms or {})
        self.trace = trace  # record pimpi's messages (see `tracer`)
        self.check = check  # False: the trusted fast path, no agreement (see `_run`)
        self.tracer: Any = None  # the TracingComm of the algorithms, once traced
        self._private: Any = None  # pimpi's messages travel here: never matched by the user's
        self.counts: dict[str, dict[str, int]] = {}  # Bcast -> {"pimpi": n, "refused": n}
        self.refusals: dict[str, int] = {}  # reason -> calls

    def __getattr__(self, name: str) -> Any:
        return getattr(self.comm, name)

    def __repr__(self) -> str:
        return f"pimpi.collectives.Comm({self.comm!r})"

    def _algorithm_comm(self) -> Any:
        """A private duplicate (made at the first collective, by every rank together), so
        the algorithms' point-to-point messages never meet the program's own."""
        if self._private is None:
            self._private = self.comm.Dup()
            if self.trace:
                from .trace import TracingComm

                self.tracer = TracingComm(self._private)
        return self.tracer if self.tracer is not None else self._private

    def Free(self) -> None:  # noqa: N802
        if self._private is not None:
            self._private.Free()
            self._private = self.tracer = None
        self.comm.Free()

    def __eq__(self, other: Any) -> bool:
        return self.comm == (other.comm if isinstance(other, Comm) else other)

    # -- communicators made from this one stay pimpi's ----------------------------------
    def _child(self, comm: Any) -> Any:
        if comm == _mpi().COMM_NULL:
            return comm
        child = Comm(comm, self.algorithms, check=self.check)
        child.counts, child.refusals = self.counts, self.refusals
        return child

    def Dup(self, *args: Any) -> Any:  # noqa: N802 (mpi4py's names)
        return self._child(self.comm.Dup(*args))

    def Clone(self) -> Any:  # noqa: N802
        return self._child(self.comm.Clone())

    def Split(self, color: int = 0, key: int = 0) -> Any:  # noqa: N802
        return self._child(self.comm.Split(color, key))

    # -- the machinery ------------------------------------------------------------------
    def _count(self, name: str, outcome: str, reason: str | None = None) -> None:
        entry = self.counts.setdefault(name, {"pimpi": 0, "refused": 0})
        entry[outcome] += 1
        if reason is not None:
            self.refusals[reason] = self.refusals.get(reason, 0) + 1

    def _algorithm(self, collective: str, op: Any) -> str | None:
        """The algorithm asked for, unless `op` is not commutative and it needs one
        (then the decision table picks an ordered one)."""
        from .ops import resolve_op
        from .catalog import ORDERED

        algorithm = self.algorithms.get(collective)
        if algorithm is not None and op is not None and algorithm not in ORDERED.get(collective, ()):
            if not resolve_op(op).commutative:
                return None
        return algorithm

    def _run(self, name: str, build: Callable[[], tuple[tuple, dict]], builtin: Callable[[], Any],
             op: Any = None) -> None:
        """Parse and check on this rank, agree with every rank, then run pimpi's algorithm,
        or MPI's built-in when any rank refused.

        With check=False (a program whose calls have been checked) nothing is agreed: an
        argument error, or a call pimpi cannot run (TypeError naming why), raises on this
        rank only, and the job must end (pimpi's entry points end it).
        """
        from .registry import function

        if not self.check:
            return self._run_trusted(name, build, op)

        collective = name.lower()
        prepared = error = reason = None
        try:
            args, kwargs = build()
            if collective not in NO_ALGORITHM:
                kwargs["algorithm"] = self._algorithm(collective, op)
            prepared = function(collective).prepare(self._algorithm_comm(), *args, **kwargs)
        except Refused as exc:
            reason = str(exc)
        except (TypeError, ValueError) as exc:
            error = exc
        if agree(self._algorithm_comm(), error, prepared.same if prepared is not None else (),
                 refuse=reason is not None, cells=function(collective).cells,
                 facts=prepared.facts if prepared is not None else ()):
            self._count(name, "refused", reason or "refused on another rank")
            builtin()
            return
        prepared.run()  # type: ignore[union-attr]
        self._count(name, "pimpi")

    def _run_trusted(self, name: str, build: Callable[[], tuple[tuple, dict]], op: Any) -> None:
        from .registry import function

        collective = name.lower()
        try:
            args, kwargs = build()
        except Refused as exc:
            raise TypeError(f"{name}: pimpi cannot run this call ({exc}); "
                            "Comm(check=True) runs MPI's built-in instead") from None
        if collective not in NO_ALGORITHM:
            kwargs["algorithm"] = self._algorithm(collective, op)
        function(collective).prepare(self._algorithm_comm(), *args, **kwargs).run()
        self._count(name, "pimpi")

    def _post(self, name: str, build: Callable[[], tuple], builtin: Callable[[], Any]) -> Any:
        """Parse and check on this rank, then post pimpi's schedule. The ranks agree inside
        it (so check=False changes nothing here) and run MPI's built-in (`builtin()`, a
        request) instead when any rank refused."""
        from .nonblocking import schedule

        args: tuple = ()
        reason = error = None
        try:
            args = build()
        except Refused as exc:
            reason = str(exc)
        except (TypeError, ValueError) as exc:
            error = exc

        def fallback() -> Any:
            if reason is None:  # refused on another rank: not pimpi's after all
                self.counts[name]["pimpi"] -= 1
                self._count(name, "refused", "refused on another rank")
            return builtin()

        self._count(name, "refused" if reason is not None else "pimpi", reason)
        return schedule(self._algorithm_comm(), name.lower(), args, refuse=reason is not None,
                        error=error, fallback=fallback)

    # -- the non-blocking collectives pimpi has schedules for -----------------------------
    def Ibarrier(self) -> Any:  # noqa: N802
        return self._post("Ibarrier", lambda: (), self.comm.Ibarrier)

    def Ibcast(self, buf: Any, root: int = 0) -> Any:  # noqa: N802
        def build():
            return ((_read if self.comm.Get_rank() == root else _write)(buf), root)

        return self._post("Ibcast", build, lambda: self.comm.Ibcast(buf, root))

    def Iallreduce(self, sendbuf: Any, recvbuf: Any, op: Any = None) -> Any:  # noqa: N802
        op = _mpi().SUM if op is None else op

        def build():
            from .ops import resolve_op

            if not resolve_op(_op(op)).commutative:
                raise Refused("a non-commutative op (pimpi's iallreduce is a ring)")
            return _or_in_place(sendbuf, _read), _write(recvbuf), op

        return self._post("Iallreduce", build, lambda: self.comm.Iallreduce(sendbuf, recvbuf, op))

    def Iallgather(self, sendbuf: Any, recvbuf: Any) -> Any:  # noqa: N802
        def build():
            return _or_in_place(sendbuf, _read), _write(recvbuf, self.comm.Get_size())

        return self._post("Iallgather", build, lambda: self.comm.Iallgather(sendbuf, recvbuf))

    def Ialltoall(self, sendbuf: Any, recvbuf: Any) -> Any:  # noqa: N802
        def build():
            size = self.comm.Get_size()
            return _or_in_place(sendbuf, _read, size), _write(recvbuf, size)

        return self._post("Ialltoall", build, lambda: self.comm.Ialltoall(sendbuf, recvbuf))

    def _root_rank(self, root: Any) -> tuple[int, int, bool]:
        return self.comm.Get_size(), self.comm.Get_rank(), self.comm.Get_rank() == root

    # -- the collectives ----------------------------------------------------------------
    def Barrier(self) -> None:  # noqa: N802
        self._run("Barrier", lambda: ((), {}), self.comm.Barrier)

    def Bcast(self, buf: Any, root: int = 0) -> None:  # noqa: N802
        def build():
            is_root = self.comm.Get_rank() == root
            return ((_read if is_root else _write)(buf), root), {}

        self._run("Bcast", build, lambda: self.comm.Bcast(buf, root))

    def Gather(self, sendbuf: Any, recvbuf: Any, root: int = 0) -> None:  # noqa: N802
        def build():
            size, _rank, is_root = self._root_rank(root)
            if not is_root:
                return (_read(sendbuf), None, root), {}
            return (_or_in_place(sendbuf, _read), _write(recvbuf, size), root), {}

        self._run("Gather", build, lambda: self.comm.Gather(sendbuf, recvbuf, root))

    def Scatter(self, sendbuf: Any, recvbuf: Any, root: int = 0) -> None:  # noqa: N802
        def build():
            size, _rank, is_root = self._root_rank(root)
            if not is_root:
                return (None, _write(recvbuf), root), {}
            return (_read(sendbuf, size), _or_in_place(recvbuf, _write), root), {}

        self._run("Scatter", build, lambda: self.comm.Scatter(sendbuf, recvbuf, root))

    def Gatherv(self, sendbuf: Any, recvbuf: Any, root: int = 0) -> None:  # noqa: N802
        def build():
            size, _rank, is_root = self._root_rank(root)
            if not is_root:
                return (_read(sendbuf), None, None, root), {}
            recv = vector(recvbuf, writable=True, blocks=size)
            return (_or_in_place(sendbuf, _read), recv.data, recv.counts, root), {"displs": recv.displs}

        self._run("Gatherv", build, lambda: self.comm.Gatherv(sendbuf, recvbuf, root))

    def Scatterv(self, sendbuf: Any, recvbuf: Any, root: int = 0) -> None:  # noqa: N802
        def build():
            size, _rank, is_root = self._root_rank(root)
            if not is_root:
                return (None, None, _write(recvbuf), root), {}
            send = vector(sendbuf, writable=False, blocks=size)
            return (send.data, send.counts, _or_in_place(recvbuf, _write), root), {"displs": send.displs}

        self._run("Scatterv", build, lambda: self.comm.Scatterv(sendbuf, recvbuf, root))

    def Allgather(self, sendbuf: Any, recvbuf: Any) -> None:  # noqa: N802
        def build():
            recv = _write(recvbuf, self.comm.Get_size())
            return (_or_in_place(sendbuf, _read), recv), {}

        self._run("Allgather", build, lambda: self.comm.Allgather(sendbuf, recvbuf))

    def Allgatherv(self, sendbuf: Any, recvbuf: Any) -> None:  # noqa: N802
        def build():
            recv = vector(recvbuf, writable=True, blocks=self.comm.Get_size())
            return (_or_in_place(sendbuf, _read), recv.data, recv.counts), {"displs": recv.displs}

        self._run("Allgatherv", build, lambda: self.comm.Allgatherv(sendbuf, recvbuf))

    def Alltoall(self, sendbuf: Any, recvbuf: Any) -> None:  # noqa: N802
        def build():
            size = self.comm.Get_size()
            return (_or_in_place(sendbuf, _read, size), _write(recvbuf, size)), {}

        self._run("Alltoall", build, lambda: self.comm.Alltoall(sendbuf, recvbuf))

    def Alltoallv(self, sendbuf: Any, recvbuf: Any) -> None:  # noqa: N802
        def build():
            size = self.comm.Get_size()
            recv = vector(recvbuf, writable=True, blocks=size)
            kwargs = {"rdispls": recv.displs}
            if is_in_place(sendbuf):
                return (_mpi().IN_PLACE, None, recv.data, recv.counts), kwargs
            send = vector(sendbuf, writable=False, blocks=size)
            return (send.data, send.counts, recv.data, recv.counts), {**kwargs, "sdispls": send.displs}

        self._run("Alltoallv", build, lambda: self.comm.Alltoallv(sendbuf, recvbuf))

    def Alltoallw(self, sendbuf: Any, recvbuf: Any) -> None:  # noqa: N802
        """Not one of pimpi's: every call is MPI's built-in (counted as refused)."""
        self._count("Alltoallw", "refused", "Alltoallw (per-rank datatypes)")
        self.comm.Alltoallw(sendbuf, recvbuf)

    def Reduce(self, sendbuf: Any, recvbuf: Any, op: Any = None, root: int = 0) -> None:  # noqa: N802
        op = _mpi().SUM if op is None else op

        def build():
            _size, _rank, is_root = self._root_rank(root)
            recv = _write(recvbuf) if is_root else None
            send = _or_in_place(sendbuf, _read) if is_root else _read(sendbuf)
            return (send, recv, _op(op), root), {}

        self._run("Reduce", build, lambda: self.comm.Reduce(sendbuf, recvbuf, op, root), op)

    def _reduction(self, name: str, sendbuf: Any, recvbuf: Any, op: Any, builtin: Callable) -> None:
        op = _mpi().SUM if op is None else op

        def build():
            return (_or_in_place(sendbuf, _read), _write(recvbuf), _op(op)), {}

        self._run(name, build, lambda: builtin(sendbuf, recvbuf, op), op)

    def Allreduce(self, sendbuf: Any, recvbuf: Any, op: Any = None) -> None:  # noqa: N802
        self._reduction("Allreduce", sendbuf, recvbuf, op, self.comm.Allreduce)

    def Scan(self, sendbuf: Any, recvbuf: Any, op: Any = None) -> None:  # noqa: N802
        self._reduction("Scan", sendbuf, recvbuf, op, self.comm.Scan)

    def Exscan(self, sendbuf: Any, recvbuf: Any, op: Any = None) -> None:  # noqa: N802
        self._reduction("Exscan", sendbuf, recvbuf, op, self.comm.Exscan)

    def Reduce_scatter_block(self, sendbuf: Any, recvbuf: Any, op: Any = None) -> None:  # noqa: N802
        op = _mpi().SUM if op is None else op

        def build():
            size = self.comm.Get_size()
            if is_in_place(sendbuf):
                return (_mpi().IN_PLACE, _write(recvbuf, size), _op(op)), {}
            recv = _write(recvbuf)
            return (_read(sendbuf, size), recv, _op(op)), {}

        self._run("Reduce_scatter_block", build,
                  lambda: self.comm.Reduce_scatter_block(sendbuf, recvbuf, op), op)

    def Reduce_scatter(self, sendbuf: Any, recvbuf: Any, recvcounts: Any = None,  # noqa: N802
                       op: Any = None) -> None:
        op = _mpi().SUM if op is None else op
        counts = recvcounts
        if counts is None and not is_in_place(sendbuf):  # as mpi4py: every rank's recv count
            try:
                mine = _write(recvbuf).size
            except (Refused, TypeError, ValueError):
                mine = -1  # this rank's spec is refused or wrong: _run says so below
            counts = self.comm.allgather(mine)

        def build():
            if counts is None:
                raise ValueError("Reduce_scatter with MPI.IN_PLACE needs recvcounts")
            if -1 in counts:
                raise Refused("a receive buffer another rank could not read")
            recv = simple(recvbuf, writable=True)
            recv_data = recv.data[:sum(counts)] if is_in_place(sendbuf) else recv.blocks(1)
            return (_or_in_place(sendbuf, _read), recv_data, list(counts), _op(op)), {}

        self._run("Reduce_scatter", build,
                  lambda: self.comm.Reduce_scatter(sendbuf, recvbuf, recvcounts, op), op)
