"""Run one collective (the library's or a learner's) on a TracingComm and check its result."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from .draw import format_bytes, format_trace, model_warning
from .record import TracingComm
from .rounds import Trace, gather_trace

__all__ = ["UNROOTED_EXTRA", "check_request", "TraceReport", "trace_collective", "trace_call"]


UNROOTED_EXTRA = ("scatterv", "gatherv")  # traceable, but without a choice of algorithm


def check_request(collective: str, algorithm: str | None, root: int, ranks: int) -> str | None:
    """The algorithm to trace (default: the first listed; a non-blocking collective's is
    its schedule's); ValueError naming a bad value."""
    from pimpi.collectives.catalog import ALGORITHMS
    from pimpi.collectives.nonblocking import NONBLOCKING

    if collective in NONBLOCKING:
        follows = NONBLOCKING[collective][1]
        if algorithm not in (None, follows):
            raise ValueError(f"{collective} has one schedule ({follows}); drop --algorithm {algorithm}")
        algorithm = follows
    elif collective in UNROOTED_EXTRA:
        if algorithm is not None:
            raise ValueError(f"{collective} has one algorithm; drop --algorithm {algorithm}")
    elif collective not in ALGORITHMS:
        names = ", ".join((*ALGORITHMS, *UNROOTED_EXTRA, *NONBLOCKING))
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
        out["warning"] = model_warning(self.trace, self.prediction)
        out["mismatch"] = self.mismatch
        return out


def trace_collective(comm: Any, collective: str, algorithm: str | None, length: int,
                     dtype: str = "float64", root: int = 0) -> TraceReport | None:
    """Run one library collective on a TracingComm on every rank; rank 0 gets the report.

    A non-blocking one (iallreduce, ...) is posted and waited for: its schedule's rounds
    are traced, against the cost() of the algorithm it follows."""
    import functools

    from pimpi.collectives import nonblocking
    from pimpi.collectives.registry import function

    if collective in nonblocking.NONBLOCKING:
        blocking, follows = nonblocking.NONBLOCKING[collective]
        post = getattr(nonblocking, collective)

        def wait(comm: Any, *args: Any, **kwargs: Any) -> None:
            post(comm, *args, **kwargs).Wait()

        return trace_call(comm, wait, blocking, length, dtype, root,
                          f"{collective} (schedule: {follows})", (blocking, follows))
    func = function(collective)
    if algorithm is not None:
        func = functools.partial(func, algorithm=algorithm)
    name = collective + (f" ({algorithm})" if algorithm else "")
    predict = (collective, algorithm) if algorithm is not None else None
    return trace_call(comm, func, collective, length, dtype, root, name, predict)


def trace_call(comm: Any, func: Callable[..., Any], kind: str, length: int, dtype: str, root: int,
               name: str, predict: tuple[str, str] | None = None,
               watch: Callable[[str], None] | None = None) -> TraceReport | None:
    """Run `func` (a library collective or a learner's function) as a `kind` case on a
    TracingComm on every rank, check it against MPI's built-in; rank 0 gets the report.

    `predict` = (collective, algorithm) whose cost() the totals are compared with;
    `watch` is told each call before it may block (see TracingComm).
    """
    import numpy as np

    from pimpi.collectives.registry import cost
    from pimpi.collectives.cases import ROOTED, Case, compare, cost_nbytes, prepare

    ranks = comm.Get_size()
    case = Case(kind, ranks, root, length, dtype)
    prepared = prepare(comm, case)
    private = comm.Dup()
    tracer = TracingComm(private, watch)
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

