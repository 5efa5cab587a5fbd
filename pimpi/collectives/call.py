"""A collective call in three steps: check this rank's arguments, agree with every rank, run.

An argument that only one rank gets wrong must not leave the other ranks blocked in a
receive that never comes. So each public collective first builds a `Call` (every check
that needs no message), then all ranks agree, in one small built-in allreduce, on
whether any rank refused and on the values every rank must pass alike (root, counts,
algorithm, dtype, op). Only then does a message of the algorithm move.
"""

from __future__ import annotations

import functools
import zlib
from typing import Any, Callable

import numpy as np

__all__ = ["Call", "collective", "agree", "vote", "verdict", "same_text", "ERROR"]

OK, REFUSE, ERROR = 0, 1, 2
SAME_SLOTS = 5  # values every rank must pass alike, at most (the vector's length is fixed)


class Call:
    """One collective, checked on this rank and ready to run: `func(*args)` then copy-backs."""

    __slots__ = ("func", "args", "same", "copy_back", "after")

    def __init__(self, func: Callable[..., Any] | None, args: tuple = (), *,
                 same: tuple[tuple[str, int], ...] = (),
                 copy_back: list[tuple[np.ndarray, np.ndarray]] | None = None,
                 after: Callable[[], None] | None = None) -> None:
        self.func, self.args, self.same = func, args, same
        self.copy_back = copy_back or []
        self.after = after

    def run(self) -> None:
        """Run the algorithm, then copy results into non-contiguous user buffers."""
        if self.func is not None:
            self.func(*self.args)
        self.finish()

    def finish(self) -> None:
        """What follows the algorithm: `after`, then the copy-backs."""
        if self.after is not None:
            self.after()
        for target, flat in self.copy_back:
            target[...] = flat.reshape(target.shape)


@functools.lru_cache(maxsize=4096)
def same_text(value: str) -> int:
    """A small int standing for `value`, to check that every rank passed the same text."""
    return zlib.crc32(value.encode()) & 0x3FFFFFFF


def _real(comm: Any) -> Any:
    """The communicator to agree on: a TracingComm's real one (agreement is not the algorithm)."""
    return getattr(comm, "real", comm)


def vote(rank: int, error: BaseException | None, same: tuple[tuple[str, int], ...] = (),
         refuse: bool = False) -> np.ndarray:
    """This rank's entry of the agreement, to combine with MPI.MAX over all ranks:
    [outcome, −(rank with an error), the `same` values, their negatives]."""
    code = ERROR if error is not None else REFUSE if refuse else OK
    values = [v for _, v in same] if error is None else []
    values += [0] * (SAME_SLOTS - len(values))
    first = -rank if error is not None else -(1 << 40)
    return np.array([code, first, *values, *(-v for v in values)], np.int64)


def verdict(votes: np.ndarray, same: tuple[tuple[str, int], ...]) -> bool:
    """True when some rank refused; ValueError when ranks passed different `same` values.
    (An error is handled by the caller: votes[0] == ERROR, from rank −votes[1].)"""
    if votes[0] == REFUSE:
        return True
    for (name, _), high, low in zip(same, votes[2:], votes[2 + SAME_SLOTS:]):
        if high != -low:
            raise ValueError(f"ranks passed different {name}: every rank must pass the same")
    return False


def agree(comm: Any, error: BaseException | None, same: tuple[tuple[str, int], ...] = (),
          refuse: bool = False) -> bool:
    """Every rank calls this before any message of a collective moves.

    Raises on every rank the lowest rank's error (same type, same text naming that rank),
    or a ValueError when ranks passed different values for a `same` entry. Returns True
    when some rank refused (every rank then does the same thing instead), else False.
    """
    real = _real(comm)
    if real.Get_size() == 1:
        if error is not None:
            raise error
        return refuse
    from mpi4py import MPI

    votes = vote(real.Get_rank(), error, same, refuse)
    real.Allreduce(MPI.IN_PLACE, votes, MPI.MAX)
    if votes[0] == ERROR:
        _raise_agreed(real, error)
    return verdict(votes, same)


def _raise_agreed(comm: Any, error: BaseException | None) -> None:
    """Raise on every rank the error of the lowest rank that had one."""
    from pimpi.mpi import agree_error

    rank = comm.Get_rank()
    mine = None if error is None else f"{type(error).__name__}:{rank}:{error}"
    kind, who, text = agree_error(comm, mine).split(":", 2)  # type: ignore[union-attr]
    if error is not None and who == str(rank):
        raise error
    exc_type = TypeError if kind == "TypeError" else ValueError
    raise exc_type(f"{text} (on rank {who})")


def collective(prepare: Callable[..., Call]) -> Callable[..., None]:
    """Decorator: turn `prepare(comm, ...) -> Call` into the public collective.

    The public function checks, agrees (see `agree`) and runs; `.prepare` stays reachable
    for callers that agree themselves (the drop-in Comm agrees once on its own checks too).
    """

    @functools.wraps(prepare)
    def run(comm: Any, *args: Any, **kwargs: Any) -> None:
        try:
            call, error = prepare(comm, *args, **kwargs), None
        except (TypeError, ValueError) as exc:
            call, error = None, exc
        agree(comm, error, call.same if call is not None else ())
        call.run()  # type: ignore[union-attr]

    run.prepare = prepare  # type: ignore[attr-defined]
    run.__annotations__ = {**prepare.__annotations__, "return": "None"}
    return run
