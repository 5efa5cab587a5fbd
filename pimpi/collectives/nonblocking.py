"""Non-blocking collectives (ibarrier, ibcast, iallreduce, iallgather, ialltoall) as schedules.

A schedule is a generator: each step posts Isend/Irecv requests and yields them; the
local work between steps (combining, copying) runs when Test or Wait finds the step's
requests complete. So the collective advances only inside Test/Wait, as MPI's own
progress rules allow, and the program computes meanwhile:

    req = iallreduce(comm, x, out, MPI.SUM)
    ...                       # compute
    req.Wait()                # out now holds the sum

The arguments are checked at once on each rank; the agreement between ranks is the
schedule's first step (a built-in MPI_Iallreduce), so posting never blocks and an error
on one rank surfaces from Wait/Test on every rank. Each schedule gets its own message tag
(ranks must post non-blocking collectives in the same order, as MPI requires), so several
may be in flight on one communicator.
"""

from __future__ import annotations

from typing import Any, Callable, Iterator

import numpy as np

from .call import ERROR, Call, Differ, detail, name_difference, vote, verdict
from .partition import block_counts
from .phase import phase

__all__ = ["Schedule", "schedule", "ibarrier", "ibcast", "iallreduce", "iallgather", "ialltoall", "NONBLOCKING",
           "cost"]

# non-blocking collective -> (blocking collective, algorithm its schedule follows): cost() of that
NONBLOCKING = {"ibarrier": ("barrier", "dissemination"), "ibcast": ("bcast", "binomial"),
               "iallreduce": ("allreduce", "ring"), "iallgather": ("allgather", "ring"),
               "ialltoall": ("alltoall", "pairwise")}
TAG_BASE, TAG_SPAN = 7300, 512
_SEQUENCE: dict[int, int] = {}  # per communicator handle: schedules posted so far

Steps = Iterator[list[Any]]


class Schedule:
    """The request of a non-blocking collective: Test() advances it, Wait() completes it."""

    def __init__(self, comm: Any, call: Call | None, error: BaseException | None,
                 steps: Callable[..., Steps], refuse: bool = False,
                 fallback: Callable[[], Any] | None = None) -> None:
        real = getattr(comm, "real", comm)
        tag = TAG_BASE + _next_sequence(real) % TAG_SPAN  # at posting: the same order on every rank
        self.refused = False  # True once the ranks agreed to run `fallback` (MPI's built-in) instead
        self._steps = self._run(real, call, error, steps, tag, refuse, fallback)
        self._pending: list[Any] = []
        self._done = False
        self._advance()

    def _run(self, real: Any, call: Call | None, error: BaseException | None,
             steps: Callable[..., Steps], tag: int, refuse: bool,
             fallback: Callable[[], Any] | None) -> Steps:
        from mpi4py import MPI

        same = call.same if call is not None else ()
        if real.Get_size() > 1:
            votes = vote(real.Get_rank(), error, same, refuse)
            yield [real.Iallreduce(MPI.IN_PLACE, votes, MPI.MAX)]
            if votes[0] == ERROR:
                if error is not None:
                    raise error
                raise ValueError(f"rank {-votes[1]} refused its arguments (see its error)")
            try:
                refuse = verdict(votes, same)
            except Differ:
                details = detail(same)
                yield [real.Iallreduce(MPI.IN_PLACE, details, MPI.MAX)]
                raise name_difference(details, same) from None
        elif error is not None:
            raise error
        if refuse:  # some rank cannot run pimpi's schedule: every rank runs the built-in
            if fallback is None:
                raise ValueError("a rank refused its arguments")
            self.refused = True
            yield [fallback()]
            return
        yield from steps(*call.args, tag=tag)  # type: ignore[union-attr]
        call.finish()  # type: ignore[union-attr]

    def _advance(self) -> bool:
        from mpi4py import MPI

        while not self._done:
            if self._pending and not MPI.Request.Testall(self._pending):
                return False
            try:
                self._pending = next(self._steps)
            except StopIteration:
                self._done, self._pending = True, []
        return True

    def Test(self, status: Any = None) -> bool:  # noqa: N802 (mpi4py's names)
        """Advance as far as the messages allow; True once the collective is complete."""
        return self._advance()

    def Wait(self, status: Any = None) -> None:  # noqa: N802
        """Complete the collective."""
        from mpi4py import MPI

        while not self._advance():
            MPI.Request.Waitall(self._pending)

    @staticmethod
    def Waitall(requests: list[Any]) -> None:  # noqa: N802
        """Complete schedules and MPI requests alike."""
        for request in requests:
            request.Wait()


def _next_sequence(comm: Any) -> int:
    key = comm.py2f()
    number = _SEQUENCE.get(key, 0)
    _SEQUENCE[key] = number + 1
    return number


def schedule(comm: Any, name: str, args: tuple, *, refuse: bool = False,
             error: BaseException | None = None,
             fallback: Callable[[], Any] | None = None) -> Schedule:
    """Post non-blocking collective `name` ("iallreduce") with the blocking collective's
    arguments `args`, checked on this rank now and agreed inside the schedule.

    refuse=True: this rank cannot run pimpi's schedule (the drop-in Comm's refusals);
    once any rank refuses, every rank runs `fallback()` (a built-in MPI request) instead.
    `error`: this rank's arguments were already found wrong (agreed like any other error).
    """
    from .registry import get

    collective, algorithm = NONBLOCKING[name]
    call = None
    if not refuse and error is None:
        try:
            call = get(collective).prepare(comm, *args, algorithm=algorithm)
        except (TypeError, ValueError) as exc:
            error = exc
    return Schedule(comm, call, error, _STEPS[name], refuse, fallback)


def _exchange(comm: Any, send: np.ndarray, dest: int, recv: np.ndarray, source: int,
              tag: int) -> list[Any]:
    return [comm.Irecv(recv, source, tag), comm.Isend(send, dest, tag)]


# --------------------------------------------------------------------------- the schedules

def _barrier_steps(comm: Any, *, tag: int) -> Steps:
    """Dissemination: in round k, signal rank + 2^k and hear from rank − 2^k."""
    rank, size = comm.rank, comm.size
    token, got = np.empty(0, np.uint8), np.empty(0, np.uint8)
    distance = 1
    while distance < size:
        yield _exchange(comm, token, (rank + distance) % size, got, (rank - distance) % size, tag)
        distance <<= 1


def _bcast_steps(comm: Any, buf: np.ndarray, root: int, *, tag: int) -> Steps:
    """Binomial tree: receive from the parent, then send to the children in one step."""
    rank, size = comm.rank, comm.size
    vrank = (rank - root) % size
    mask = 1
    while mask < size:
        if vrank & mask:
            yield [comm.Irecv(buf, (rank - mask) % size, tag)]
            break
        mask <<= 1
    children = []
    mask >>= 1
    while mask > 0:
        if vrank + mask < size:
            children.append(comm.Isend(buf, (rank + mask) % size, tag))
        mask >>= 1
    if children:
        yield children


def _allreduce_steps(comm: Any, send: np.ndarray, recv: np.ndarray, op: Any, *, tag: int) -> Steps:
    """Ring: p−1 reduce-scatter steps, then p−1 allgather steps (a commutative op)."""
    rank, size = comm.rank, comm.size
    if size == 1:
        recv[:] = send
        return
    counts, displs = block_counts(recv.size, size)
    displs.append(recv.size)
    tmp = np.empty(counts[0], recv.dtype)  # its own: other collectives may run meanwhile
    right, left = (rank + 1) % size, (rank - 1) % size
    phase(comm, "reduce-scatter")
    for step in range(size - 1):
        out, into = (rank - step) % size, (rank - step - 1) % size
        incoming = tmp[:counts[into]]
        yield _exchange(comm, (send if step == 0 else recv)[displs[out]:displs[out + 1]], right,
                        incoming, left, tag)
        block = slice(displs[into], displs[into + 1])
        op.ufunc(send[block], incoming, out=recv[block])
    phase(comm, "allgather")
    for step in range(size - 1):
        out, into = (rank + 1 - step) % size, (rank - step) % size
        yield _exchange(comm, recv[displs[out]:displs[out + 1]], right,
                        recv[displs[into]:displs[into + 1]], left, tag)


def _allgather_steps(comm: Any, send: np.ndarray, recv: np.ndarray, *, tag: int) -> Steps:
    """Ring: in step s pass block rank−s right, take block rank−s−1 from the left."""
    rank, size = comm.rank, comm.size
    m = send.size
    recv[rank * m:(rank + 1) * m] = send
    right, left = (rank + 1) % size, (rank - 1) % size
    for step in range(size - 1):
        out, into = (rank - step) % size, (rank - step - 1) % size
        yield _exchange(comm, recv[out * m:(out + 1) * m], right, recv[into * m:(into + 1) * m], left, tag)


def _alltoall_steps(comm: Any, send: np.ndarray, recv: np.ndarray, *, tag: int) -> Steps:
    """Pairwise: every exchange posted at once (p−1 sends, p−1 receives), then the local copy."""
    rank, size = comm.rank, comm.size
    m = send.size // size
    requests = []
    for step in range(1, size):
        dest, source = (rank + step) % size, (rank - step) % size
        requests += _exchange(comm, send[dest * m:(dest + 1) * m], dest,
                              recv[source * m:(source + 1) * m], source, tag)
    recv[rank * m:(rank + 1) * m] = send[rank * m:(rank + 1) * m]
    if requests:
        yield requests


# --------------------------------------------------------------------------- public API

_STEPS: dict[str, Callable[..., Steps]] = {
    "ibarrier": _barrier_steps, "ibcast": _bcast_steps, "iallreduce": _allreduce_steps,
    "iallgather": _allgather_steps, "ialltoall": _alltoall_steps}


def ibarrier(comm: Any) -> Schedule:
    """Non-blocking barrier: Wait() returns once every rank has called ibarrier."""
    return schedule(comm, "ibarrier", ())


def ibcast(comm: Any, buf: np.ndarray, root: int = 0) -> Schedule:
    """Non-blocking bcast (binomial tree); `buf` is valid on every rank after Wait()."""
    return schedule(comm, "ibcast", (buf, root))


def iallreduce(comm: Any, sendbuf: Any, recvbuf: np.ndarray, op: Any = "SUM") -> Schedule:
    """Non-blocking allreduce (ring: needs a commutative op); MPI.IN_PLACE as in allreduce."""
    return schedule(comm, "iallreduce", (sendbuf, recvbuf, op))


def iallgather(comm: Any, sendbuf: Any, recvbuf: np.ndarray) -> Schedule:
    """Non-blocking allgather (ring); MPI.IN_PLACE as in allgather."""
    return schedule(comm, "iallgather", (sendbuf, recvbuf))


def ialltoall(comm: Any, sendbuf: Any, recvbuf: np.ndarray) -> Schedule:
    """Non-blocking alltoall (pairwise, all exchanges posted together)."""
    return schedule(comm, "ialltoall", (sendbuf, recvbuf))


def cost(name: str, nbytes: int, p: int) -> tuple[float, float]:
    """The α–β cost of a non-blocking collective: that of the algorithm its schedule follows."""
    from .registry import cost as blocking_cost

    if name not in NONBLOCKING:
        raise ValueError(f"unknown non-blocking collective {name!r}; choose from {', '.join(NONBLOCKING)}")
    return blocking_cost(*NONBLOCKING[name], nbytes, p)
