"""Barrier: no rank leaves until every rank has arrived (dissemination or tree)."""

from __future__ import annotations

from typing import Any

import numpy as np

from .call import Call, collective, same_text
from .catalog import TAGS, public, register
from .partition import ceil_log2
from .tuning import select

__all__ = ["barrier", "barrier_dissemination", "barrier_tree"]

TAG = TAGS["barrier"]


@public("barrier")
@collective
def barrier(comm: Any, *, algorithm: str | None = None) -> Call:
    """Block until all ranks of `comm` have called barrier (like comm.Barrier)."""
    func = select("barrier", algorithm, 0, comm.size)
    return Call(func, (comm,), same=(("algorithm", same_text(func.__name__)),))


@register("barrier", "dissemination", cost=lambda n, p: (ceil_log2(p), 0))
def barrier_dissemination(comm: Any, tag: int = TAG) -> None:
    """Dissemination: in round k, signal rank + 2^k and wait for rank − 2^k.

    After ⌈log2 p⌉ rounds every rank has heard, indirectly, from all others.
    Cost: ⌈log2 p⌉ empty messages.
    """
    rank, size = comm.rank, comm.size
    token = np.empty(0, np.uint8)
    got = np.empty(0, np.uint8)
    distance = 1
    while distance < size:
        comm.Sendrecv(token, (rank + distance) % size, tag, got, (rank - distance) % size, tag)
        distance <<= 1


@register("barrier", "tree", cost=lambda n, p: (2 * ceil_log2(p), 0))
def barrier_tree(comm: Any, tag: int = TAG) -> None:
    """Tree: empty messages go up a binomial tree to rank 0, then back down.

    Cost: 2·⌈log2 p⌉ empty messages.
    """
    rank, size = comm.rank, comm.size
    token = np.empty(0, np.uint8)
    mask = 1
    while mask < size:  # up: wait for children, then tell the parent
        if rank & mask:
            comm.Send(token, rank - mask, tag)
            break
        if rank + mask < size:
            comm.Recv(token, rank + mask, tag)
        mask <<= 1
    if rank:  # down: wait for the parent's release
        comm.Recv(token, rank - (rank & -rank), tag)
    mask = (rank & -rank) if rank else 1 << ceil_log2(size)
    mask >>= 1
    while mask > 0:
        if rank + mask < size:
            comm.Send(token, rank + mask, tag)
        mask >>= 1
