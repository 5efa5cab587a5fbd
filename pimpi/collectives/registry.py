"""Which algorithms exist for each collective, their cost model, and dispatch by name."""

from __future__ import annotations

import functools
from typing import Any, Callable

__all__ = ["ALGORITHMS", "ORDERED", "TAGS", "register", "get", "cost", "implementation", "select",
           "select_reduction", "forget_selections"]

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

_IMPLS: dict[str, dict[str, Callable[..., Any]]] = {name: {} for name in ALGORITHMS}
_COSTS: dict[tuple[str, str], Callable[[int, int], tuple[float, float]]] = {}
_PUBLIC: dict[str, Callable[..., Any]] = {}
_SELECTED: dict[tuple[Any, ...], Callable[..., Any]] = {}  # select's memo
_PLANS: dict[tuple[Any, ...], tuple[Any, Any, Callable[..., Any]]] = {}  # select_reduction's


def register(collective: str, name: str, cost: Callable[[int, int], tuple[float, float]]):
    """Decorator: record `func` as algorithm `name` of `collective` with its α–β cost.

    `cost(n, p)` returns (messages, bytes) on the critical path for an n-byte
    vector over p ranks (see `cost` for what n means per collective).
    """
    if name not in ALGORITHMS.get(collective, ()):
        raise ValueError(f"algorithm {name!r} of {collective!r} is not listed in ALGORITHMS")

    def wrap(func: Callable[..., Any]) -> Callable[..., Any]:
        _IMPLS[collective][name] = func
        _COSTS[(collective, name)] = cost
        return func

    return wrap


def public(collective: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator: record the public entry point (e.g. `bcast`) of `collective`."""

    def wrap(func: Callable[..., Any]) -> Callable[..., Any]:
        _PUBLIC[collective] = func
        return func

    return wrap


def _check_name(collective: str, algorithm: str | None = None) -> None:
    if collective not in ALGORITHMS:
        raise ValueError(f"unknown collective {collective!r}; choose from {', '.join(ALGORITHMS)}")
    if algorithm is not None and algorithm not in ALGORITHMS[collective]:
        raise ValueError(
            f"unknown algorithm {algorithm!r} for {collective}; "
            f"choose from {', '.join(ALGORITHMS[collective])}"
        )


def get(collective: str, algorithm: str | None = None) -> Callable[..., Any]:
    """The public function of `collective`, with `algorithm` fixed when given.

    get("allreduce") is `allreduce`; get("allreduce", "ring")(comm, s, r) runs the
    ring algorithm with the same argument checks. Iterate ALGORITHMS to try them all.
    """
    _check_name(collective, algorithm)
    _load()
    func = _PUBLIC[collective]
    if algorithm is None:
        return func
    fixed = functools.partial(func, algorithm=algorithm)
    functools.update_wrapper(fixed, func)
    fixed.__name__ = f"{collective}[{algorithm}]"  # type: ignore[attr-defined]
    return fixed


def implementation(collective: str, algorithm: str) -> Callable[..., Any]:
    """The raw algorithm function (no argument checks): for reading and tracing."""
    _check_name(collective, algorithm)
    _load()
    return _IMPLS[collective][algorithm]


def cost(collective: str, algorithm: str, nbytes: int, p: int) -> tuple[float, float]:
    """(messages, bytes) on the critical path in the α–β model: T ≈ α·messages + β·bytes.

    nbytes is the whole vector: the buffer for bcast/reduce/allreduce/scan/exscan;
    all p blocks together for scatter/gather/allgather (p × one rank's block);
    one rank's send buffer for alltoall and reduce_scatter_block; ignored by barrier.
    For the v-collectives (allgatherv, alltoallv, reduce_scatter) n is counted as for
    allgather, alltoall and reduce_scatter_block, as if the counts were even.
    """
    _check_name(collective, algorithm)
    if nbytes < 0 or p < 1:
        raise ValueError(f"need nbytes >= 0 and p >= 1, got nbytes={nbytes!r}, p={p!r}")
    _load()
    if p == 1:
        return (0, 0)
    return _COSTS[(collective, algorithm)](nbytes, p)


def select(collective: str, algorithm: str | None, nbytes: int, size: int, op: Any = None):
    """The implementation to run: `algorithm` if given, else the decision table's choice.

    With a non-commutative op, an explicit unordered algorithm is refused and the
    automatic choice falls back to the first ordered one. Answers are memoised
    (select runs on every call); tuning.reload_table forgets them.
    """
    key = (collective, algorithm, nbytes, size, op is None or op.commutative)
    try:
        return _SELECTED[key]
    except KeyError:
        pass
    except TypeError:  # an unhashable algorithm: let _select name it
        return _select(collective, algorithm, nbytes, size, op)
    func = _select(collective, algorithm, nbytes, size, op)
    if len(_SELECTED) >= 4096:
        _SELECTED.clear()
    _SELECTED[key] = func
    return func


def select_reduction(collective: str, algorithm: str | None, nbytes: int, size: int, op: Any,
                     dtype: Any) -> tuple[Any, Callable[..., Any]]:
    """(resolved op, implementation) for a reduction of `dtype` items: resolve_op,
    Op.check_dtype and select in one memo lookup, since reductions run them every call."""
    key = (collective, algorithm, nbytes, size, id(op), dtype)
    try:
        plan = _PLANS.get(key)
    except TypeError:  # an unhashable algorithm: let select name it
        plan = None
    if plan is not None and plan[0] is op:
        return plan[1], plan[2]
    from .ops import resolve_op

    resolved = resolve_op(op)
    resolved.check_dtype(dtype)
    func = select(collective, algorithm, nbytes, size, resolved)
    if len(_PLANS) >= 4096:
        _PLANS.clear()
    _PLANS[key] = (op, resolved, func)  # keeps op alive, so its id is not reused meanwhile
    return resolved, func


def forget_selections() -> None:
    """Drop the memos of select and select_reduction (the decision table changed)."""
    _SELECTED.clear()
    _PLANS.clear()


def _select(collective: str, algorithm: str | None, nbytes: int, size: int, op: Any = None):
    impls = _IMPLS[collective]
    if algorithm is None:
        algorithm = _choose(collective, nbytes, size)
        if op is not None and not op.commutative and algorithm not in ORDERED[collective]:
            algorithm = ORDERED[collective][0]
        return impls[algorithm]
    func = impls.get(algorithm) if isinstance(algorithm, str) else None
    if func is None:
        _check_name(collective, algorithm if isinstance(algorithm, str) else repr(algorithm))
    if op is not None and not op.commutative and algorithm not in ORDERED[collective]:
        raise ValueError(
            f"algorithm {algorithm!r} of {collective} needs a commutative op, got {op.name}; "
            f"use one of {', '.join(ORDERED[collective])}"
        )
    return func


def _choose(collective: str, nbytes: int, size: int) -> str:
    """tuning.choose, imported on first use (tuning imports this module)."""
    global _choose
    from .tuning import choose

    _choose = choose
    return choose(collective, nbytes, size)


def _load() -> None:
    """Import the algorithm modules so that they register themselves."""
    if not _PUBLIC:
        from . import broadcast, exchange, prefix, reduction, scatter_gather, synchronize  # noqa: F401
