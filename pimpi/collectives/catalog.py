"""Which algorithms exist for each collective, and the tables their modules fill (a leaf module).

The algorithm modules (broadcast, reduction, ...) record themselves here with `register` and
`public`; `registry` lists those modules in one place and imports them, `tuning` picks among
the recorded ones. Nothing here imports them back, so there is no import circle.
"""

from __future__ import annotations

from typing import Any, Callable

__all__ = ["ALGORITHMS", "ORDERED", "TAGS", "IMPLS", "COSTS", "PUBLIC", "register", "public", "check_name"]

# Every collective and its algorithms; the first is the fallback when no rule matches.
ALGORITHMS: dict[str, tuple[str, ...]] = {
    "bcast": ("binomial", "linear", "scatter_allgather", "pipeline"),
    "reduce": ("binomial", "linear", "rabenseifner"),
    "allreduce": ("recursive_doubling", "reduce_bcast", "ring", "rabenseifner"),
    "scatter": ("binomial", "linear"),
    "gather": ("binomial", "linear"),
    "allgather": ("recursive_doubling", "ring", "bruck"),
    "alltoall": ("pairwise", "bruck"),
    "reduce_scatter_block": ("recursive_halving", "ring", "pairwise"),
    "scan": ("recursive_doubling", "linear"),
    "exscan": ("recursive_doubling", "linear"),
    "barrier": ("dissemination", "tree"),
    "allgatherv": ("ring", "recursive_doubling"),
    "alltoallv": ("pairwise",),
    "reduce_scatter": ("recursive_halving", "ring", "pairwise"),
}

# Algorithms that combine contributions strictly in rank order, so they are
# correct for non-commutative ops; the others need a commutative op.
ORDERED: dict[str, tuple[str, ...]] = {
    "reduce": ("binomial", "linear", "rabenseifner"),
    "allreduce": ("recursive_doubling", "reduce_bcast", "rabenseifner"),
    "reduce_scatter_block": ("recursive_halving",),
    "reduce_scatter": ("recursive_halving",),
    "scan": ("recursive_doubling", "linear"),
    "exscan": ("recursive_doubling", "linear"),
}

# One message tag per collective, so a collective never matches another's messages.
TAGS: dict[str, int] = {name: 7100 + i for i, name in enumerate(ALGORITHMS)}

IMPLS: dict[str, dict[str, Callable[..., Any]]] = {name: {} for name in ALGORITHMS}
COSTS: dict[tuple[str, str], Callable[[int, int], tuple[float, float]]] = {}
PUBLIC: dict[str, Callable[..., Any]] = {}


def register(collective: str, name: str, cost: Callable[[int, int], tuple[float, float]]):
    """Decorator: record `func` as algorithm `name` of `collective` with its α–β cost.

    `cost(n, p)` returns (messages, bytes) on the critical path for an n-byte
    vector over p ranks (see `cost` for what n means per collective).
    """
    if name not in ALGORITHMS.get(collective, ()):
        raise ValueError(f"algorithm {name!r} of {collective!r} is not listed in ALGORITHMS")

    def wrap(func: Callable[..., Any]) -> Callable[..., Any]:
        IMPLS[collective][name] = func
        COSTS[(collective, name)] = cost
        return func

    return wrap


def public(collective: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator: record the public entry point (e.g. `bcast`) of `collective`."""

    def wrap(func: Callable[..., Any]) -> Callable[..., Any]:
        PUBLIC[collective] = func
        return func

    return wrap


def check_name(collective: str, algorithm: str | None = None) -> None:
    if collective not in ALGORITHMS:
        raise ValueError(f"unknown collective {collective!r}; choose from {', '.join(ALGORITHMS)}")
    if algorithm is not None and algorithm not in ALGORITHMS[collective]:
        raise ValueError(
            f"unknown algorithm {algorithm!r} for {collective}; "
            f"choose from {', '.join(ALGORITHMS[collective])}"
        )
