"""The decision table: which algorithm `algorithm=None` picks for a message size and rank count.

A table is JSON: for each collective, a list of rules tried in order; the first
rule whose limits all hold wins. Limits are optional:

    {"version": 1,
     "allreduce": [{"max_bytes": 4096, "algorithm": "recursive_doubling"},
                   {"min_size": 3, "algorithm": "ring"},
                   {"algorithm": "rabenseifner"}]}

`max_bytes` compares with the whole vector's size (see registry.cost), `min_size`
and `max_size` with the communicator size. The default table ships with pimpi;
a user table (env PIMPI_TUNING, else ~/.config/pimpi/tuning.json) replaces the
rules of the collectives it names. Every rank must see the same table.

`select` (which implementation a call runs) lives here too, so its memo is forgotten
with the table.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Callable

from pimpi.fileio import atomic_write

from .catalog import ALGORITHMS, IMPLS, ORDERED, check_name

__all__ = [
    "DEFAULT_TABLE_PATH",
    "user_table_path",
    "validate_table",
    "load_table",
    "save_table",
    "reload_table",
    "choose",
    "select",
    "select_reduction",
    "forget_selections",
]

DEFAULT_TABLE_PATH = Path(__file__).with_name("decision_table.json")
_RULE_KEYS = {"max_bytes", "min_size", "max_size", "algorithm"}
_ACTIVE: dict[str, list[dict[str, Any]]] | None = None
_CHOICES: dict[tuple[str, int, int], str] = {}  # memo: choose() runs on every call
_SELECTED: dict[tuple[Any, ...], Callable[..., Any]] = {}  # select's memo
_PLANS: dict[tuple[Any, ...], tuple[Any, Any, Callable[..., Any]]] = {}  # select_reduction's


def user_table_path() -> Path:
    """The user's table: $PIMPI_TUNING, else $XDG_CONFIG_HOME (or ~/.config)/pimpi/tuning.json."""
    env = os.environ.get("PIMPI_TUNING")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "pimpi" / "tuning.json"


def _is_meta(key: str) -> bool:
    return key in ("version", "meta") or key.startswith("_")


def validate_table(table: Any, source: str = "table") -> dict[str, Any]:
    """Check a table's shape; ValueError naming the unknown collective, algorithm or key."""
    if not isinstance(table, dict):
        kind = type(table).__name__
        raise ValueError(f"{source}: a decision table must be a JSON object, got {kind}")
    for name, rules in table.items():
        if _is_meta(name):
            continue
        if name not in ALGORITHMS:
            raise ValueError(f"{source}: unknown collective {name!r}")
        if not isinstance(rules, list):
            raise ValueError(f"{source}: rules of {name!r} must be a list")
        for rule in rules:
            if not isinstance(rule, dict):
                raise ValueError(f"{source}: rule {rule!r} of {name!r} must be an object")
            extra = set(rule) - _RULE_KEYS
            if extra:
                key = sorted(extra)[0]
                raise ValueError(f"{source}: unknown key {key!r} in a rule of {name!r}")
            algo = rule.get("algorithm")
            if algo not in ALGORITHMS[name]:
                raise ValueError(f"{source}: unknown algorithm {algo!r} for {name!r}")
            for key in ("max_bytes", "min_size", "max_size"):
                value = rule.get(key)
                bad = isinstance(value, bool) or not isinstance(value, int) or value < 0
                if value is not None and bad:
                    raise ValueError(f"{source}: {key} must be an int >= 0 in {name!r}, "
                                     f"got {value!r}")
    return table


def _read(path: Path) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as fh:
            table = json.load(fh)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc})") from None
    return validate_table(table, str(path))


def load_table(path: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """The table in `path`, validated; with no path, the default merged with the user's table."""
    if path is not None:
        return _read(Path(path))
    table = dict(_read(DEFAULT_TABLE_PATH))
    user = user_table_path()
    if user.is_file():
        table.update({k: v for k, v in _read(user).items() if not _is_meta(k)})
    return table


def save_table(table: dict[str, Any], path: str | os.PathLike[str] | None = None) -> Path:
    """Validate and write `table` as JSON atomically (temp file + rename); returns the path.

    Only this process forgets its cached table. Other ranks of a running job keep
    theirs until they call reload_table(): call it on every rank (after a barrier),
    or ranks may pick different algorithms and wait on each other forever.
    """
    validate_table(table, "table to save")
    target = Path(path) if path is not None else user_table_path()
    target.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(target, json.dumps(table, indent=1) + "\n")
    reload_table(lazy=True)
    return target


def reload_table(*, lazy: bool = False) -> dict[str, Any] | None:
    """Forget the cached table (after the user's file changed); reload now unless lazy."""
    global _ACTIVE
    _ACTIVE = None
    _CHOICES.clear()
    forget_selections()
    return None if lazy else _active()


def _active() -> dict[str, Any]:
    global _ACTIVE
    if _ACTIVE is None:
        _ACTIVE = load_table()
    return _ACTIVE


def choose(collective: str, nbytes: int, size: int) -> str:
    """The algorithm the active table picks for `collective` at `nbytes` over `size` ranks."""
    key = (collective, nbytes, size)
    found = _CHOICES.get(key)
    if found is None:
        found = _choose(collective, nbytes, size)
        if len(_CHOICES) > 4096:
            _CHOICES.clear()
        _CHOICES[key] = found
    return found


def _choose(collective: str, nbytes: int, size: int) -> str:
    rules = _active().get(collective)
    if rules is None:
        if collective not in ALGORITHMS:
            raise ValueError(f"unknown collective {collective!r}")
        rules = ()
    for rule in rules:
        limit = rule.get("max_bytes")
        if limit is not None and nbytes > limit:
            continue
        limit = rule.get("min_size")
        if limit is not None and size < limit:
            continue
        limit = rule.get("max_size")
        if limit is not None and size > limit:
            continue
        return rule["algorithm"]
    return ALGORITHMS[collective][0]


def select(collective: str, algorithm: str | None, nbytes: int, size: int, op: Any = None):
    """The implementation to run: `algorithm` if given, else the decision table's choice.

    With a non-commutative op, an explicit unordered algorithm is refused and the
    automatic choice falls back to the first ordered one. Answers are memoised
    (select runs on every call); reload_table forgets them.
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
    impls = IMPLS[collective]
    if algorithm is None:
        algorithm = choose(collective, nbytes, size)
        if op is not None and not op.commutative and algorithm not in ORDERED[collective]:
            algorithm = ORDERED[collective][0]
        return impls[algorithm]
    func = impls.get(algorithm) if isinstance(algorithm, str) else None
    if func is None:
        check_name(collective, algorithm if isinstance(algorithm, str) else repr(algorithm))
    if op is not None and not op.commutative and algorithm not in ORDERED[collective]:
        raise ValueError(
            f"algorithm {algorithm!r} of {collective} needs a commutative op, got {op.name}; "
            f"use one of {', '.join(ORDERED[collective])}"
        )
    return func
