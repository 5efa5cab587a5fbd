"""The graded exercises (described in exercises.json): tasks, message patterns, hints, test matrix."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ..cases import OPS, REDUCING, ROOTED, Case
from .course import Rules, parse_rules

__all__ = ["Function", "Exercise", "EXERCISES", "get_exercise", "cases_for", "plan", "reference_path"]

# The kinds whose exercises build a collective from point-to-point calls only: Open MPI's own
# counts must show no other traffic (exercises on communicators, one-sided or non-blocking
# collectives use those calls on purpose and are not monitored).
MONITORED_KINDS = ("bcast", "reduce", "allreduce", "scatter", "gather", "scatterv", "gatherv", "allgather",
                   "alltoall", "reduce_scatter_block", "scan", "exscan", "barrier", "allgatherv", "alltoallv",
                   "reduce_scatter", "ring_pass", "dot_product", "pi")
ALL_DTYPES = ("int32", "int64", "float64", "complex128")


@dataclass(frozen=True)
class Function:
    """One function the learner writes."""

    name: str
    kind: str  # the case kind that tests it (see cases.KINDS)
    params: str  # the parameter list after `def name(`
    task: str


@dataclass(frozen=True)
class Exercise:
    """One exercise: its functions, the pattern to build, hints and which cases grade it."""

    name: str
    title: str
    functions: tuple[Function, ...]
    pattern: str
    hints: tuple[str, ...]
    dtypes: tuple[str, ...] = ALL_DTYPES
    lengths: tuple[int, ...] = (0, 1, 7)
    large: int = 100_000
    trace: str = ""  # arguments of `pimpi collectives trace` that show a reference at work
    order: int = 0  # place in the course (`exercises list` sorts by it)
    level: int = 1  # 1 first steps, 2 core, 3 advanced
    topic: str = ""  # what the exercise teaches, one phrase
    rules: Rules | None = None  # a course exercise's allowed/banned/required calls (course.py)
    intro: str = ""  # the starter's line on which calls to use, when not Send/Recv only
    provided: str = ""  # code the starter puts above the functions (imports, helpers)
    ops: tuple[str, ...] = ("SUM",)  # reduction ops graded (cases.OPS); FIRST checks rank order
    pattern_check: str = "none"  # "reference": messages per rank and rounds must match the reference
    monitor: bool | None = None  # Open MPI's counts checked (None: when every kind is in MONITORED_KINDS)
    sizes: tuple[int, ...] = (1, 2, 3, 4, 5, 8)  # `check`'s default rank counts: the ones that expose its bugs

    @property
    def monitored(self) -> bool:
        """Graded with Open MPI's message counts: only point-to-point calls on `comm` allowed."""
        if self.monitor is not None:  # an exercise on Iallreduce, Split or windows sets false
            return self.monitor
        return all(f.kind in MONITORED_KINDS for f in self.functions)

    @property
    def rooted(self) -> bool:
        return any(f.kind in ROOTED for f in self.functions)


def _text(value: str | list[str]) -> str:
    """A JSON text: one string, or a list of lines."""
    return value if isinstance(value, str) else "\n".join(value)


def _load(path: Path) -> dict[str, Exercise]:
    """The exercises described in `path` (exercises.json), by name."""
    data = json.loads(path.read_text(encoding="utf-8"))
    shared = data["shared_hints"]
    found = {}
    for item in data["exercises"]:
        functions = tuple(Function(f["name"], f["kind"], f["params"], _text(f["task"]))
                          for f in item["functions"])
        hints = tuple(shared[h[1:]] if h.startswith("@") else h for h in item["hints"])
        extra = {key: tuple(item[key]) if isinstance(item[key], list) else item[key]
                 for key in ("dtypes", "lengths", "large", "trace", "order", "level", "topic", "ops",
                             "pattern_check", "monitor", "sizes") if key in item}
        extra.update({key: _text(item[key]) for key in ("intro", "provided") if key in item})
        if "rules" in item:
            extra["rules"] = parse_rules(item["rules"], f"exercise {item['name']}")
        bad = [op for op in extra.get("ops", ()) if op not in OPS]
        if bad or extra.get("pattern_check", "none") not in ("none", "reference"):
            raise ValueError(f"{path.name}: {item['name']}: bad ops {bad} or pattern_check")
        found[item["name"]] = Exercise(item["name"], item["title"], functions, _text(item["pattern"]),
                                       hints, **extra)
    return found


EXERCISES: dict[str, Exercise] = dict(sorted(_load(Path(__file__).with_name("exercises.json")).items(),
                                             key=lambda item: item[1].order))  # course order


def get_exercise(name: str) -> Exercise:
    """The exercise called `name`, or ValueError listing them all."""
    try:
        return EXERCISES[name]
    except KeyError:
        raise ValueError(f"unknown exercise {name!r}; choose from {', '.join(EXERCISES)}") from None


def _families(dtypes: tuple[str, ...]) -> list[str]:
    """One dtype per family (int, float, complex...): the large cases' dtypes, so an eager-limit
    deadlock shows whatever the element size."""
    import numpy as np

    seen: dict[str, str] = {}
    for dtype in dtypes:
        seen.setdefault(np.dtype(dtype).kind, dtype)
    return list(seen.values())


def _op_fits(op: str, dtype: str) -> bool:
    """MAX and MIN are not defined on complex numbers."""
    return not (op in ("MAX", "MIN") and dtype.startswith("complex"))


def cases_for(exercise: Exercise, ranks: int) -> list[Case]:
    """Every case `check` runs at `ranks`: roots 0, last and middle; small, uneven and large
    lengths; a large case per dtype family; each extra op of a reducing function."""
    roots = sorted({0, ranks - 1, ranks // 2}) if exercise.rooted else [0]
    out: list[Case] = []
    for func in exercise.functions:
        func_roots = roots if func.kind in ROOTED else [0]
        for root in func_roots:
            for length in exercise.lengths:
                for dtype in exercise.dtypes:
                    out.append(Case(func.kind, ranks, root, length, dtype))
        if func.kind in REDUCING:
            length = max(exercise.lengths)
            for op in exercise.ops:
                for root in func_roots:
                    out += [Case(func.kind, ranks, root, length, dtype, op) for dtype in _families(exercise.dtypes)
                            if op != "SUM" and _op_fits(op, dtype)]
        for root in sorted({0, ranks - 1}) if func.kind in ROOTED else [0]:
            for dtype in _families(exercise.dtypes):
                out.append(Case(func.kind, ranks, root, exercise.large, dtype))
    return out


def plan(exercises: list[Exercise], ranks: int) -> list[tuple[int, Case]]:
    """The cases of several exercises run one after another in one job: (exercise index, case)."""
    return [(index, case) for index, ex in enumerate(exercises) for case in cases_for(ex, ranks)]


def reference_path(name: str) -> Path:
    """The reference solution shipped for exercise `name`."""
    get_exercise(name)
    return Path(__file__).with_name("solutions") / f"{name}.py"
