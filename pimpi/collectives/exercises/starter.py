"""Starter files: the signature to fill in, the task, the message pattern and hints."""

from __future__ import annotations

import textwrap
from pathlib import Path

from pimpi.fileio import atomic_write

from .registry import Exercise, get_exercise

__all__ = ["starter_text", "write_starter"]


def _docstring(exercise: Exercise, task: str) -> str:
    hints = "\n".join(textwrap.fill(h, 84, initial_indent="- ", subsequent_indent="  ")
                      for h in exercise.hints)
    body = f"{task}\n\nMessage pattern:\n{exercise.pattern}\n\nHints:\n{hints}"
    return textwrap.indent(f'"""{body}\n"""', "    ")


def starter_text(name: str) -> str:
    """The Python source a learner starts from for exercise `name`."""
    exercise = get_exercise(name)
    uses_mpi = any("MPI." in f.params for f in exercise.functions)
    parts = [
        f'"""pimpi exercise {exercise.name}: {exercise.title}.\n\n'
        f"Fill in the function{'s' if len(exercise.functions) > 1 else ''} below using only\n"
        + (textwrap.fill(exercise.intro, 88) + ",\nthen grade it:\n\n" if exercise.intro else
           "comm.Send / Recv / Sendrecv / Isend / Irecv on NumPy buffers (no pickled comm.send,\n"
           "no built-in comm.Bcast and friends), then grade it:\n\n")
        + f"    pimpi exercises check {exercise.name} {exercise.name}.py -n 1,2,3,4,5,8\n"
        f"    pimpi run -n 4 -- exercises trace {exercise.name} {exercise.name}.py   # your messages\n"
        + (f"    pimpi run -n 4 -- exercises trace {exercise.name} --reference   # what a reference sends\n"
           if exercise.rules is not None else "")
        + (f"    pimpi run -n 4 -- collectives trace {exercise.trace}   # what a reference sends\n"
           if exercise.trace else "")
        +         '"""\n',
        "import numpy as np\n" + ("from mpi4py import MPI\n" if uses_mpi or exercise.rules is not None else "")
        + (f"\n{exercise.provided}\n" if exercise.provided else ""),
    ]
    for func in exercise.functions:
        parts.append(
            f"\ndef {func.name}({func.params}):\n{_docstring(exercise, func.task)}\n"
            f'    raise NotImplementedError("write {func.name} here")\n'
        )
    return "\n".join(parts)


def write_starter(name: str, folder: str = ".") -> Path:
    """Write `<folder>/<name>.py` atomically; FileExistsError if it is already there."""
    text = starter_text(name)
    directory = Path(folder)
    if directory.exists() and not directory.is_dir():
        raise ValueError(f"not a folder: {folder}")
    directory.mkdir(parents=True, exist_ok=True)
    # overwrite=False: FileExistsError rather than replace a learner's work
    return atomic_write(directory / f"{name}.py", text, overwrite=False)
