"""Every collective's algorithms, their cost model, and dispatch by name: the one list of
algorithm modules.

The modules record their algorithms in `catalog` (never importing this module); this module
imports them when first asked (`_MEMBERS`), so reading ALGORITHMS loads no NumPy or MPI.
"""

from __future__ import annotations

import functools
import importlib
from typing import Any, Callable

from .catalog import ALGORITHMS, COSTS, IMPLS, ORDERED, PUBLIC, TAGS, check_name, public, register
from .tuning import forget_selections, select, select_reduction

__all__ = ["ALGORITHMS", "ORDERED", "TAGS", "register", "public", "get", "cost", "implementation", "select",
           "select_reduction", "forget_selections", "function"]

# The modules that record algorithms in `catalog` (the non-blocking schedules build on
# this module, so they are not members).
_MEMBERS = ("broadcast", "exchange", "prefix", "reduction", "scatter_gather", "synchronize")


def get(collective: str, algorithm: str | None = None) -> Callable[..., Any]:
    """The public function of `collective`, with `algorithm` fixed when given.

    get("allreduce") is `allreduce`; get("allreduce", "ring")(comm, s, r) runs the
    ring algorithm with the same argument checks. Iterate ALGORITHMS to try them all.
    """
    check_name(collective, algorithm)
    _load()
    func = PUBLIC[collective]
    if algorithm is None:
        return func
    fixed = functools.partial(func, algorithm=algorithm)
    functools.update_wrapper(fixed, func)
    fixed.__name__ = f"{collective}[{algorithm}]"  # type: ignore[attr-defined]
    return fixed


def implementation(collective: str, algorithm: str) -> Callable[..., Any]:
    """The raw algorithm function (no argument checks): for reading and tracing."""
    check_name(collective, algorithm)
    _load()
    return IMPLS[collective][algorithm]


def cost(collective: str, algorithm: str, nbytes: int, p: int) -> tuple[float, float]:
    """(messages, bytes) on the critical path in the α–β model: T ≈ α·messages + β·bytes.

    nbytes is the whole vector: the buffer for bcast/reduce/allreduce/scan/exscan;
    all p blocks together for scatter/gather/allgather (p × one rank's block);
    one rank's send buffer for alltoall and reduce_scatter_block; ignored by barrier.
    For the v-collectives (allgatherv, alltoallv, reduce_scatter) n is counted as for
    allgather, alltoall and reduce_scatter_block, as if the counts were even.
    """
    check_name(collective, algorithm)
    if nbytes < 0 or p < 1:
        raise ValueError(f"need nbytes >= 0 and p >= 1, got nbytes={nbytes!r}, p={p!r}")
    _load()
    if p == 1:
        return (0, 0)
    return COSTS[(collective, algorithm)](nbytes, p)


@functools.cache
def function(name: str) -> Callable[..., Any]:
    """The library's public blocking function `name` ('allreduce', 'scatterv', ...)."""
    for module in _MEMBERS:
        func = getattr(importlib.import_module(f"{__package__}.{module}"), name, None)
        if callable(func):
            return func
    raise ValueError(f"unknown collective {name!r}")


def _load() -> None:
    """Import the algorithm modules so that they record themselves in `catalog`."""
    if not PUBLIC:
        for module in _MEMBERS:
            importlib.import_module(f"{__package__}.{module}")
