"""A collective call in three steps: check this rank's arguments, agree with every rank, run.

An argument that only one rank gets wrong must not leave the other ranks blocked in a
receive that never comes. So each public collective first builds a `Call` (every check
that needs no message), then all ranks agree, in one built-in allreduce of four ints, on
whether any rank refused and on a hash of the values every rank must pass alike (root,
counts, algorithm, dtype, op). Only then does a message of the algorithm move. The
error paths take further rounds (naming the rank, or the value that differs) together.
`check=False` skips the agreement for code that has been checked (see `collective`).
"""

from __future__ import annotations

import functools
import zlib
from typing import Any, Callable

import numpy as np

__all__ = ["Call", "Cells", "collective", "agree", "vote", "verdict", "detail", "name_difference", "Differ",
           "same_text", "ERROR"]

OK, REFUSE, ERROR = 0, 1, 2
SAME_SLOTS = 5  # values every rank must pass alike, at most (the detail round's length is fixed)
VOTE_LEN = 4  # [outcome, −(rank with an error), h, −h]: h stands for all the `same` values
_UNSET = -(1 << 40)  # no rank had an error
_HASH_MASK = (1 << 61) - 1


class Differ(ValueError):
    """Ranks passed different `same` values: a second round (`detail`) names which."""


class Cells:
    """Counts that two ranks state each (scatterv: root's counts[r] and rank r's buffer;
    alltoallv: rank i's sendcounts[j] and rank j's recvcounts[i]): `number(p)` cells,
    agreed in the same allreduce as the rest, and `describe(cell, p)` to name one."""

    def __init__(self, number: Callable[[int], int], describe: Callable[[int, int], str]) -> None:
        self.number, self.describe = number, describe


class Call:
    """One collective, checked on this rank and ready to run: `func(*args)` then copy-backs."""

    __slots__ = ("func", "args", "same", "copy_back", "after", "facts")

    def __init__(self, func: Callable[..., Any] | None, args: tuple = (), *,
                 same: tuple[tuple[str, int], ...] = (),
                 copy_back: list[tuple[np.ndarray, np.ndarray]] | None = None,
                 after: Callable[[], None] | None = None,
                 facts: tuple[tuple[int, int], ...] = ()) -> None:
        self.func, self.args, self.same = func, args, same
        self.facts = facts  # (cell, count) this rank states; two ranks state each cell (`Cells`)
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


def same_hash(same: tuple[tuple[str, int], ...]) -> int:
    """One int standing for all of `same`'s values (ints hash alike in every process)."""
    return hash(tuple([v for _, v in same])) & _HASH_MASK


def vote(rank: int, error: BaseException | None, same: tuple[tuple[str, int], ...] = (),
         refuse: bool = False, cells: int = 0, facts: tuple[tuple[int, int], ...] = ()
         ) -> np.ndarray:
    """This rank's entry of the agreement, to combine with MPI.MAX over all ranks:
    [outcome, −(rank with an error), h, −h] where h hashes the `same` values; the max of
    h and of −h differ exactly when some rank passed other values. With `cells`, then
    the counts this rank states (`facts`) and their negatives, the same way per cell."""
    if not cells and error is None:  # the common case, in as few steps as possible
        h = same_hash(same)
        return np.array((REFUSE if refuse else OK, _UNSET, h, -h), np.int64)
    out = np.full(VOTE_LEN + 2 * cells, _UNSET, np.int64)
    if error is not None:
        out[:VOTE_LEN] = (ERROR, -rank, 0, 0)
        return out
    h = same_hash(same)
    out[:VOTE_LEN] = (REFUSE if refuse else OK, _UNSET, h, -h)
    for cell, value in facts:
        high, low = VOTE_LEN + cell, VOTE_LEN + cells + cell
        out[high] = max(out[high], value)
        out[low] = max(out[low], -value)
    return out


def verdict(votes: np.ndarray, same: tuple[tuple[str, int], ...],
            cells: Cells | None = None, size: int = 0) -> bool:
    """True when some rank refused; `Differ` when ranks passed different `same` values
    (every rank then runs the `detail` round to name them); ValueError naming the first
    cell whose two ranks stated different counts. An error is the caller's:
    votes[0] == ERROR, from rank −votes[1]."""
    code, _, high, low = votes[:VOTE_LEN].tolist()
    if code == REFUSE:
        return True
    if high != -low:
        raise Differ("ranks passed different values")
    if cells is not None and votes.size > VOTE_LEN:
        n = (votes.size - VOTE_LEN) // 2
        highs, lows = votes[VOTE_LEN:VOTE_LEN + n], votes[VOTE_LEN + n:]
        bad = np.flatnonzero((highs != -lows) & (highs != _UNSET))
        if bad.size:
            cell = int(bad[0])
            raise ValueError(f"{cells.describe(cell, size)} disagree: {-int(lows[cell])} and "
                             f"{int(highs[cell])} items")
    return False


def detail(same: tuple[tuple[str, int], ...]) -> np.ndarray:
    """This rank's entry of the second round, run only when `verdict` raised Differ:
    the `same` values and their negatives, combined with MPI.MAX."""
    values = [v for _, v in same] + [0] * (SAME_SLOTS - len(same))
    return np.array([*values, *(-v for v in values)], np.int64)


def name_difference(details: np.ndarray, same: tuple[tuple[str, int], ...]) -> ValueError:
    """The ValueError naming the first `same` entry that ranks passed differently."""
    for (name, _), high, low in zip(same, details[:SAME_SLOTS], details[SAME_SLOTS:]):
        if high != -low:
            return ValueError(f"ranks passed different {name}: every rank must pass the same")
    return ValueError("ranks passed different arguments: every rank must pass the same")


def agree(comm: Any, error: BaseException | None, same: tuple[tuple[str, int], ...] = (),
          refuse: bool = False, cells: Cells | None = None,
          facts: tuple[tuple[int, int], ...] = ()) -> bool:
    """Every rank calls this before any message of a collective moves.

    Raises on every rank the lowest rank's error (same type, same text naming that rank),
    or a ValueError when ranks passed different values for a `same` entry or stated
    different counts for a cell. Returns True when some rank refused (every rank then
    does the same thing instead), else False. Costs one built-in allreduce of four ints
    (plus two per cell) when all is well; the error paths add rounds, taken together.
    """
    real = _real(comm)
    size = real.Get_size()
    if size == 1:
        if error is not None:
            raise error
        return refuse
    mpi = _mpi()
    votes = vote(real.Get_rank(), error, same, refuse,
                 cells.number(size) if cells is not None else 0, facts)
    real.Allreduce(mpi.IN_PLACE, votes, mpi.MAX)
    if cells is None:  # the common case: one list, two compares (numpy scalars cost more)
        code, _, high, low = votes.tolist()
        if code != ERROR and high == -low:
            return code == REFUSE
    if votes[0] == ERROR:
        _raise_agreed(real, error)
    try:
        return verdict(votes, same, cells, size)
    except Differ:
        details = detail(same)
        real.Allreduce(mpi.IN_PLACE, details, mpi.MAX)
        raise name_difference(details, same) from None


_MPI: Any = None


def _mpi() -> Any:
    """mpi4py.MPI, imported on the first agreement (serial use never starts MPI)."""
    global _MPI
    if _MPI is None:
        from mpi4py import MPI

        _MPI = MPI
    return _MPI


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


def collective(prepare: Callable[..., Call] | None = None, *,
               cells: Cells | None = None) -> Any:
    """Decorator: turn `prepare(comm, ...) -> Call` into the public collective.

    The public function checks, agrees (see `agree`) and runs; `.prepare` stays reachable
    for callers that agree themselves (the drop-in Comm agrees once on its own checks too),
    and `.cells` says which counts pairs of ranks must state alike (`@collective(cells=...)`).
    `check=False` is the trusted fast path: this rank's checks still run, but no
    agreement message is sent, so a bad argument on one rank raises on that rank only
    (the others may then block: pimpi's entry points end the whole job) and the
    communicator is not fit for further use. For code whose calls have been checked.
    """
    if prepare is None:
        return functools.partial(collective, cells=cells)

    @functools.wraps(prepare)
    def run(comm: Any, *args: Any, check: bool = True, **kwargs: Any) -> None:
        if not check:
            prepare(comm, *args, **kwargs).run()
            return
        try:
            call, error = prepare(comm, *args, **kwargs), None
        except (TypeError, ValueError) as exc:
            call, error = None, exc
        if call is None:
            agree(comm, error, (), cells=cells)
        agree(comm, None, call.same, cells=cells, facts=call.facts)  # type: ignore[union-attr]
        call.run()  # type: ignore[union-attr]

    run.prepare = prepare  # type: ignore[attr-defined]
    run.cells = cells  # type: ignore[attr-defined]
    run.__annotations__ = {**prepare.__annotations__, "check": "bool", "return": "None"}
    return run
