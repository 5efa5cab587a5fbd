"""Rules of the course exercises: a recording communicator a submission may split, turn into a grid or a window.

A course exercise (one with "rules" in exercises.json) gets, instead of the plain
TracingComm, a proxy that IS an mpi4py Intracomm (so `MPI.Win.Create(buf, comm=comm)`
and `comm.Create_cart(...)` work as in any MPI program) and that

- records point-to-point messages through the checker's TracingComm, and those on
  communicators made from it (Split, Create_cart, Dup, Sub) with ranks translated back;
- refuses pickled calls, and built-in collectives unless the exercise allows them
  (optionally only on communicators the submission made);
- notes banned calls, messages without the derived datatype the exercise asks for, and
  missing required calls, and fails the case after the function returns (so every rank
  finishes the case and the next cases still run);
- tells a `Work` argument whether a non-blocking collective is in flight when called.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Callable

from pimpi.collectives.trace.record import BUILTIN, PICKLED, ForbiddenCall, TracingComm, _nbytes

__all__ = ["Rules", "RuleBroken", "Work", "parse_rules", "wrap", "in_flight", "judge", "caller_line"]

P2P = ("Send", "Ssend", "Rsend", "Bsend", "Isend", "Issend", "Irsend", "Ibsend", "Recv", "Irecv",
       "Sendrecv", "Sendrecv_replace")
SENDS = ("Send", "Ssend", "Rsend", "Bsend", "Isend", "Issend", "Irsend", "Ibsend", "Sendrecv",
         "Sendrecv_replace")
MAKERS = ("Dup", "Clone", "Split", "Split_type", "Create", "Create_group", "Create_cart", "Sub")
BLOCKING = ("Probe", "Mprobe", "Split", "Create_cart", "Dup", "Create")  # announced to the watch
WHEN = ("always", "ranks>1", "root")


@dataclass(frozen=True)
class Required:
    """At least one of `calls` must be made on a rank where `when` holds."""

    calls: tuple[str, ...]
    when: str = "always"  # always | ranks>1 | root (the case's root, when there are other ranks)
    why: str = ""


@dataclass(frozen=True)
class Rules:
    """What one course exercise allows, refuses and requires (exercises.json "rules")."""

    allowed: tuple[str, ...] = ()  # built-in collectives this exercise allows
    allowed_on: str = "any"  # any | new: only on communicators the submission made
    banned: tuple[str, ...] = ()  # point-to-point calls this exercise refuses
    banned_why: str = ""
    required: tuple[Required, ...] = ()
    derived: str = ""  # "" | sends | all: which non-empty messages need a derived datatype
    max_sends: int | None = None  # messages one rank may send in one call
    max_sends_why: str = ""
    any_source: str = ""  # "" | root: the root must receive from MPI.ANY_SOURCE (with 3+ ranks)
    any_source_why: str = ""
    layout: str = ""  # "" | column: every derived send is Create_vector(rows, 1, size) on the input itself


def parse_rules(data: dict[str, Any], where: str) -> Rules:
    """Rules from an exercises.json entry; ValueError naming a bad field."""
    known = {"allowed", "allowed_on", "banned", "banned_why", "required", "derived", "max_sends",
             "max_sends_why", "any_source", "any_source_why", "layout"}
    unknown = set(data) - known
    if unknown:
        raise ValueError(f"{where}: unknown rule {sorted(unknown)[0]!r}")
    required = []
    for item in data.get("required", []):
        req = Required(tuple(item["calls"]), item.get("when", "always"), item.get("why", ""))
        if req.when not in WHEN:
            raise ValueError(f"{where}: required when {req.when!r} is not one of {', '.join(WHEN)}")
        required.append(req)
    rules = Rules(tuple(data.get("allowed", ())), data.get("allowed_on", "any"),
                  tuple(data.get("banned", ())), data.get("banned_why", ""), tuple(required),
                  data.get("derived", ""), data.get("max_sends"), data.get("max_sends_why", ""),
                  data.get("any_source", ""), data.get("any_source_why", ""), data.get("layout", ""))
    if rules.allowed_on not in ("any", "new"):
        raise ValueError(f"{where}: allowed_on {rules.allowed_on!r} is not any or new")
    if rules.any_source not in ("", "root"):
        raise ValueError(f"{where}: any_source {rules.any_source!r} is not root")
    if rules.layout not in ("", "column"):
        raise ValueError(f"{where}: layout {rules.layout!r} is not column")
    if rules.derived not in ("", "sends", "all"):
        raise ValueError(f"{where}: derived {rules.derived!r} is not sends or all")
    return rules


class RuleBroken(ForbiddenCall):
    """The submission broke one of its exercise's rules; `advice()` says which and what to do."""

    def __init__(self, text: str) -> None:  # noqa: super-init-not-called (ForbiddenCall's is for names)
        RuntimeError.__init__(self, text)
        self.name, self.kind, self.text = "", "rule", text

    def advice(self) -> str:
        return self.text


_ACTIVE: list["_State"] = []  # the state of the call running on this rank (at most one)


def in_flight() -> bool | None:
    """Whether a non-blocking collective of the running call is still in flight (None: no call)."""
    if not _ACTIVE:
        return None
    from mpi4py import MPI

    return any(req != MPI.REQUEST_NULL for req in _ACTIVE[-1].requests)


class Work:
    """Local work a submission must run while a non-blocking collective is in flight."""

    def __init__(self, job: Callable[[], Any]) -> None:
        self.job = job
        self.calls = 0
        self.overlapped = False

    def __call__(self) -> Any:
        self.calls += 1
        if in_flight():
            self.overlapped = True
        return self.job()

    def problem(self) -> str | None:
        return Work.explain(self.calls, self.overlapped)

    @staticmethod
    def explain(calls: int, overlapped: bool) -> str | None:
        """What is wrong with how work() was called, or None."""
        if calls == 0:
            return "never called work(): run it between starting the reduction and waiting for it"
        if not overlapped:
            return ("called work() while no non-blocking collective was in flight: start it "
                    "(req = comm.Iallreduce(...)), call work(), then req.Wait()")
        return None


def _is_derived(spec: Any) -> bool:
    """Whether an mpi4py buffer spec names a derived (constructed) datatype."""
    from mpi4py import MPI

    if not isinstance(spec, (list, tuple)):
        return False
    return any(isinstance(item, MPI.Datatype) and item != MPI.DATATYPE_NULL
               and item.combiner not in (MPI.COMBINER_NAMED, MPI.COMBINER_DUP) for item in spec)


def peer_name(peer: Any) -> str:
    """'rank 3', or MPI.PROC_NULL / MPI.ANY_SOURCE by name (not -2 / -1)."""
    return {-2: "MPI.PROC_NULL", -1: "MPI.ANY_SOURCE"}.get(peer, f"rank {peer}") if isinstance(peer, int) \
        else f"rank {peer}"


def _peer(name: str, verb: str, args: tuple, kwargs: dict[str, Any]) -> Any:
    """The destination of a send or the source of a receive, as the call named it."""
    if verb == "sent":
        return args[1] if len(args) > 1 else kwargs.get("dest", "?")
    position = 4 if name == "Sendrecv" else 1
    return args[position] if len(args) > position else kwargs.get("source", "any")


class _State:
    """What one call of a submission did on this rank, across every communicator it made."""

    def __init__(self, rules: Rules, outer: TracingComm, root: int) -> None:
        self.rules, self.outer, self.root = rules, outer, root
        self.calls: set[str] = set()
        self.requests: list[Any] = []  # requests of non-blocking collectives
        self.problems: list[str] = []  # rule breaks seen during the call
        self.lines: list[int | None] = []  # the submission's line of each
        self.children: list[tuple[TracingComm, list[int]]] = []
        self.wildcard = False  # a receive or probe was posted with source MPI.ANY_SOURCE
        self.args: tuple = ()  # the call's arguments (a derived send must come from the input itself)
        self.types: list[list[Any]] = []  # [peer, combiner, params, base size, from the input, line] per send

    def note(self, text: str) -> None:
        """A rule break, with the submission's line that made it."""
        self.problems.append(text)
        self.lines.append(caller_line())

    def announce(self, text: str) -> None:
        if self.outer._watch is not None:
            self.outer._watch(text)

    def refuse(self, name: str, made: bool) -> RuleBroken:
        allowed = self.rules.allowed
        if name in allowed:  # allowed, but only on communicators the submission made
            return RuleBroken(f"uses built-in comm.{name} on the communicator it was given; "
                              "this exercise allows it only on communicators you make (comm.Split, "
                              "comm.Create_cart)")
        offer = f"this exercise allows only {', '.join(allowed)}" if allowed else \
            "this exercise asks for point-to-point calls"
        return RuleBroken(f"uses built-in comm.{name}; {offer}")

    def nonblocking(self, method: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(method)
        def call(*args: Any, **kwargs: Any) -> Any:
            req = method(*args, **kwargs)
            sendbuf = args[0] if args else kwargs.get("sendbuf")
            if _nbytes(sendbuf) > 0 or sendbuf is None:  # a zero-length collective moves nothing
                self.requests.append(req)
            return req
        return call

    def typed(self, name: str, method: Callable[..., Any]) -> Callable[..., Any]:
        """`method` that notes a non-empty message without a derived datatype."""
        def call(*args: Any, **kwargs: Any) -> Any:
            specs = []
            if name in SENDS:
                specs.append(("sent", args[0] if args else kwargs.get("buf", kwargs.get("sendbuf"))))
            if self.rules.derived == "all":
                if name in ("Recv", "Irecv"):
                    specs.append(("received", args[0] if args else kwargs.get("buf")))
                elif name == "Sendrecv":
                    specs.append(("received", args[3] if len(args) > 3 else kwargs.get("recvbuf")))
            for verb, spec in specs:
                if self.rules.layout and verb == "sent" and _nbytes(spec) > 0 and _is_derived(spec):
                    self.types.append(self.describe(spec, _peer(name, verb, args, kwargs)))
                if _nbytes(spec) > 0 and not _is_derived(spec):
                    peer = _peer(name, verb, args, kwargs)
                    self.note(
                        f"comm.{name} {verb} {_nbytes(spec)} bytes {'to' if verb == 'sent' else 'from'} "
                        f"{peer_name(peer)} as a plain buffer; this exercise asks for a derived datatype: "
                        "[buf, count, newtype] with a committed Create_vector/Create_struct type")
            return method(*args, **kwargs)
        return call

    def describe(self, spec: Any, peer: Any) -> list[Any]:
        """What a derived datatype send really was: its combiner and parameters (MPI's own
        envelope), its base type's size, and whether the buffer is the caller's input itself."""
        import numpy as np
        from mpi4py import MPI

        dtype = next(item for item in spec if isinstance(item, MPI.Datatype))
        base, combiner, params = dtype.decode()
        plain = {k: v for k, v in params.items() if isinstance(v, (int, float))}
        if isinstance(base, MPI.Datatype):
            size = base.Get_size()
        else:
            size = None
        buf = spec[0]
        shares = any(isinstance(a, np.ndarray) and np.may_share_memory(np.asarray(buf), a) for a in self.args)
        return [peer, combiner, plain, size, shares, caller_line()]

    def sourced(self, name: str, method: Callable[..., Any]) -> Callable[..., Any]:
        """`method` (a receive or probe) that notes a posted MPI.ANY_SOURCE."""
        def call(*args: Any, **kwargs: Any) -> Any:
            source = args[1] if len(args) > 1 else kwargs.get("source", -1)  # mpi4py's default: any
            if name.endswith("probe"):
                source = args[0] if args else kwargs.get("source", -1)
            if source == -1:
                self.wildcard = True
            return method(*args, **kwargs)
        return call

    def child(self, comm: Any) -> Any:
        """A communicator the submission made, wrapped and recorded like its parent."""
        from mpi4py import MPI

        if comm == MPI.COMM_NULL:
            return comm
        cls = _class_for(comm)
        if cls is None:
            raise RuleBroken(f"made a {type(comm).__name__}; this exercise needs only "
                             "Split and Create_cart communicators")
        tracer = TracingComm(comm, self.outer._watch)
        ranks = MPI.Group.Translate_ranks(comm.Get_group(), list(range(comm.Get_size())),
                                          self.outer.real.Get_group())
        self.children.append((tracer, list(ranks)))
        return _proxy(cls, comm, self, tracer, made=True)

    def merge(self) -> None:
        """Move the messages on made communicators into the checker's log, in time order;
        drop messages to and from MPI.PROC_NULL (nothing moved)."""
        from mpi4py import MPI

        events = self.outer.finish()
        for tracer, ranks in self.children:
            for event in tracer.finish():
                if event.peer >= 0:
                    event.peer = ranks[event.peer]
                events.append(event)
        events[:] = sorted((e for e in events if e.peer != MPI.PROC_NULL), key=lambda e: e.time)

    def facts(self, args: tuple) -> dict[str, Any]:
        """What this call did on this rank, as plain data: the checker judges it (`judge`) in its own
        process, so nothing the submission patches here decides a verdict."""
        return {"problems": list(self.problems), "lines": list(self.lines), "calls": sorted(self.calls),
                "sent": sum(1 for e in self.outer.events if e.kind == "S"), "wildcard": self.wildcard,
                "work": [[a.calls, a.overlapped] for a in args if isinstance(a, Work)], "types": self.types,
                "size": self.outer.Get_size(), "rank": self.outer.Get_rank(), "root": self.root}

    def verdict(self, args: tuple) -> str | None:
        """The first rule this call broke on this rank (for `exercises trace`, in the learner's process)."""
        found = judge(self.rules, self.facts(args))
        return None if found is None else found[0]


def _column_problem(combiner: str, params: dict[str, Any], size: int | None, shares: bool,
                    context: dict[str, Any]) -> str | None:
    """Why a derived send is not this exercise's column type (Create_vector(rows, 1, ranks) on the
    matrix itself, base type of the matrix's item size), or None."""
    rows, ranks, itemsize = context["length"], context["ranks"], context["itemsize"]
    want = f"Create_vector({rows}, 1, {ranks}) on the matrix itself"
    if combiner == "VECTOR":
        got = (params.get("count"), params.get("blocklength"), params.get("stride"))
        if got != (rows, 1, ranks):
            return f"Create_vector{got}: a column of this {rows} x {ranks} matrix is {want}"
    elif combiner == "HVECTOR":
        got = (params.get("count"), params.get("blocklength"), params.get("stride"))
        if got != (rows, 1, ranks * itemsize):
            return f"Create_hvector{got}: a column is {want} (or Create_hvector with a stride in bytes)"
    else:
        return f"a {combiner.lower()} datatype: a column of the matrix is {want}, not a copy made contiguous"
    if size != itemsize:
        return (f"a vector of {size}-byte items where the matrix holds {itemsize}-byte ones: build it on "
                "from_numpy_dtype(matrix.dtype)")
    if not shares:
        return "a vector over a copy of the matrix: send from the matrix itself (flat = matrix.reshape(-1))"
    return None


def judge(rules: Rules, facts: dict[str, Any], context: dict[str, Any] | None = None) -> tuple[str, int | None] | None:
    """(the first rule a call broke, with a count of the others; the line of the call that broke it)
    from the facts `_State.facts` recorded, or None: run by the checker, outside the learner's process."""
    problems = [(text, line) for text, line in zip(facts.get("problems", []), facts.get("lines", []))]
    size, rank, root = facts.get("size", 1), facts.get("rank", 0), facts.get("root", 0)
    calls = set(facts.get("calls", []))
    for req in rules.required:
        applies = (req.when == "always" or (req.when == "ranks>1" and size > 1)
                   or (req.when == "root" and size > 1 and rank == root))
        if applies and not calls.intersection(req.calls):
            names = " or ".join(f"comm.{c}" for c in req.calls)
            problems.append((f"never called {names}" + (f"; {req.why}" if req.why else ""), None))
    if rules.max_sends is not None and facts.get("sent", 0) > rules.max_sends:
        problems.append((f"sent {facts['sent']} messages, at most {rules.max_sends} allowed"
                         + (f": {rules.max_sends_why}" if rules.max_sends_why else ""), None))
    if rules.any_source == "root" and size > 2 and rank == root and not facts.get("wildcard"):
        problems.append(("root never received from MPI.ANY_SOURCE"
                         + (f": {rules.any_source_why}" if rules.any_source_why else ""), None))
    if rules.layout == "column" and context:
        for peer, combiner, params, size, shares, line in facts.get("types", []):
            text = _column_problem(combiner, params, size, shares, context)
            if text:
                problems.append((f"sent its column to {peer_name(peer)} as {text}", line))
                break
    for calls_made, overlapped in facts.get("work", []):
        text = Work.explain(calls_made, overlapped)
        if text:
            problems.append((text, None))
    if not problems:
        return None
    more = len(problems) - 1
    text = problems[0][0] + (f" (and {more} more rule break{'s' if more > 1 else ''})" if more else "")
    return text, problems[0][1]


class _Recording:
    """Mixin of the course proxies: route each public call through the exercise's rules."""

    def __getattribute__(self, name: str) -> Any:
        if name.startswith("_") or not (name[:1].isupper() or name in PICKLED):
            return super().__getattribute__(name)
        try:
            state: _State = object.__getattribute__(self, "_pimpi_state")
        except AttributeError:  # a bare copy mpi4py made (Dup returns the caller's class): not ours yet
            return super().__getattribute__(name)
        made: bool = object.__getattribute__(self, "_pimpi_made")
        state.calls.add(name)
        if name in PICKLED:
            raise ForbiddenCall(name, "pickled")
        if name in BUILTIN:
            rules = state.rules
            if name not in rules.allowed or (rules.allowed_on == "new" and not made):
                raise state.refuse(name, made)
            state.announce(f"{name}()")
            method = super().__getattribute__(name)
            return state.nonblocking(method) if name.startswith("I") else method
        if name in state.rules.banned:
            note = f"uses comm.{name}" + (f"; {state.rules.banned_why}" if state.rules.banned_why else "")
            if note not in state.problems:
                state.note(note)
        if name in P2P:
            method = getattr(object.__getattribute__(self, "_pimpi_tracer"), name)
            method = state.typed(name, method) if state.rules.derived else method
            return state.sourced(name, method) if name in ("Recv", "Irecv") else method
        if name in ("Probe", "Iprobe", "Mprobe", "Improbe"):
            state.announce(f"{name}()")
            method = state.sourced(name.lower(), super().__getattribute__(name))
            if name in ("Mprobe", "Improbe"):  # msg.Recv() receives the message: record it
                return _matched(method, object.__getattribute__(self, "_pimpi_tracer"))
            return method
        if name in BLOCKING:
            state.announce(f"{name}()")
        if name in MAKERS:
            method = super().__getattribute__(name)
            return lambda *args, **kwargs: state.child(method(*args, **kwargs))
        return super().__getattribute__(name)


def _matched(method: Callable[..., Any], tracer: TracingComm) -> Callable[..., Any]:
    """Mprobe/Improbe whose message, when received with msg.Recv, is logged like comm.Recv."""
    def call(*args: Any, **kwargs: Any) -> Any:
        msg = method(*args, **kwargs)
        if msg is None:  # Improbe: nothing yet
            return msg
        traced = _message_class()(msg)
        traced._pimpi_tracer = tracer
        return traced
    return call


@functools.lru_cache(maxsize=1)
def _message_class() -> type:
    from mpi4py import MPI

    class TracedMessage(MPI.Message):
        """A matched message whose Recv is recorded by the checker's tracer."""

        def Recv(self, buf: Any, status: Any = None) -> None:  # noqa: N802 - mpi4py's name
            st = status if status is not None else MPI.Status()
            super().Recv(buf, st)
            self._pimpi_tracer._log_recv(st)

    return TracedMessage


@functools.lru_cache(maxsize=1)
def _classes() -> dict[type, type]:
    """The proxy class for each mpi4py communicator class it can stand in for."""
    from mpi4py import MPI

    class CourseIntracomm(_Recording, MPI.Intracomm):
        """An Intracomm whose calls follow the exercise's rules and are recorded."""

    class CourseCartcomm(_Recording, MPI.Cartcomm):
        """A Cartcomm whose calls follow the exercise's rules and are recorded."""

    return {MPI.Intracomm: CourseIntracomm, MPI.Cartcomm: CourseCartcomm}


def _class_for(comm: Any) -> type | None:
    """The proxy class for `comm` (Dup of a proxy returns the proxy's class), None if none fits."""
    from mpi4py import MPI

    classes = _classes()
    if isinstance(comm, MPI.Cartcomm):
        return classes[MPI.Cartcomm]
    if isinstance(comm, (MPI.Graphcomm, MPI.Distgraphcomm)) or not isinstance(comm, MPI.Intracomm):
        return None
    return classes[MPI.Intracomm]


def _proxy(cls: type, comm: Any, state: _State, tracer: TracingComm, made: bool) -> Any:
    proxy = cls(comm)  # shares comm's handle: MPI sees the same communicator
    proxy._pimpi_state, proxy._pimpi_tracer, proxy._pimpi_made = state, tracer, made
    return proxy


def caller_line() -> int | None:
    """The line of the innermost frame outside pimpi, mpi4py and NumPy: the submission's call."""
    import os
    import traceback

    skip = tuple(os.path.dirname(m.__file__) + os.sep for m in _packages())
    for frame in reversed(traceback.extract_stack()):
        if not frame.filename.startswith(skip) and not frame.filename.startswith("<"):
            return frame.lineno
    return None


@functools.lru_cache(maxsize=1)
def _packages() -> tuple[Any, ...]:
    import mpi4py
    import numpy

    import pimpi

    return (pimpi, mpi4py, numpy)


def wrap(rules: Rules | None, func: Callable[..., Any], in_process: bool = True) -> Callable[..., Any]:
    """`func` called on a course proxy, its rules recorded as facts on the outer TracingComm
    (`course_facts`) and, with `in_process` (exercises trace), also checked here after it returns."""
    if rules is None:
        return func

    @functools.wraps(func)
    def graded(comm: Any, *args: Any, **kwargs: Any) -> Any:
        from mpi4py import MPI

        outer = comm if isinstance(comm, TracingComm) else TracingComm(comm)
        state = _State(rules, outer, kwargs.get("root", 0))
        state.args = args
        proxy = _proxy(_classes()[MPI.Intracomm], outer.real, state, outer, made=False)
        _ACTIVE.append(state)
        try:
            result = func(proxy, *args, **kwargs)
        finally:
            _ACTIVE.remove(state)
            state.merge()
        outer.course_facts = state.facts(args)  # the checker judges these (see judge)
        if in_process:
            problem = state.verdict(args)
            if problem is not None:
                raise RuleBroken(problem)
        return result

    return graded
