"""`python -m pimpi.futures [--local] SCRIPT.py|-m MODULE|-c CODE [ARGS]`: rank 0 runs it, the other ranks are its workers."""

from __future__ import annotations

import os
import runpy
import sys
from typing import NoReturn

__all__ = ["main"]

_USAGE = ("usage: pimpi run -n N [--hostfile H] -- -m pimpi.futures SCRIPT.py|-m MODULE|-c CODE [ARGS]\n"
          "   or: python -m pimpi.futures --local SCRIPT.py ...   (this machine's processes, no MPI)")


def _usage_error(message: str) -> NoReturn:
    """One line naming the problem, exit 2 (what every pimpi command does for bad input)."""
    sys.stderr.write(f"pimpi.futures: {message}\n")
    raise SystemExit(2)


def _target(args: list[str]) -> list[str]:
    """The program to run (SCRIPT ARGS, -m MODULE ARGS or -c CODE ARGS), checked."""
    if not args:
        _usage_error("nothing to run: give SCRIPT.py, -m MODULE or -c CODE")
    first = args[0]
    if first in ("-m", "-c"):
        if len(args) < 2:
            _usage_error(f"{first} needs an argument")
    elif first.startswith("-"):
        _usage_error(f"unknown option {first!r}")
    elif not os.path.isfile(first):
        _usage_error(f"script not found: {first!r}")
    return args


def _run_here(args: list[str]) -> None:
    """Run the program in this process as __main__ (local mode: executors use local processes)."""
    if args[0] == "-m":
        sys.argv = [args[1], *args[2:]]
        runpy.run_module(args[1], run_name="__main__", alter_sys=True)
    elif args[0] == "-c":
        sys.argv = ["-c", *args[2:]]
        exec(compile(args[1], "<string>", "exec"), {"__name__": "__main__"})  # noqa: S102 - the user's own code
    else:
        sys.argv = list(args)
        sys.path.insert(0, os.path.dirname(os.path.abspath(args[0])))
        runpy.run_path(args[0], run_name="__main__")


def main() -> None:
    """Check how we were started, then hand the program to mpi4py.futures' shared pool."""
    from pimpi.futures import where
    from pimpi.mpi import under_mpirun

    args = sys.argv[1:]
    local = bool(args) and args[0] == "--local"
    if local:
        args = args[1:]
    if args and args[0] in ("-h", "--help"):
        print(_USAGE)
        return
    args = _target(args)
    if not under_mpirun():
        if not (local or os.environ.get(where.LOCAL_ENV, "") == "local"):
            _usage_error("not started by mpirun, so there are no workers: start it with "
                         f"`{where.launch_hint(args[0]) if args[0].endswith('.py') else 'pimpi run -n N -- -m pimpi.futures ...'}`"
                         " or add --local to use this machine's processes")
        os.environ[where.LOCAL_ENV] = "local"
        _run_here(args)
        return
    mismatch = where.world_mismatch()
    if mismatch:
        sys.stderr.write(f"pimpi.futures: {mismatch}\n")
        raise SystemExit(1)
    where.mark_started()
    from mpi4py import MPI
    from mpi4py.futures.__main__ import main as serve

    sys.argv = [sys.argv[0], *args]
    serve()
    world = MPI.COMM_WORLD
    program = f"-m {args[1]}" if args[0] == "-m" else "-c CODE" if args[0] == "-c" else args[0]
    warning = where.unused_warning(program, world.Get_size())
    if warning and world.Get_rank() == 0:
        sys.stderr.write(warning + "\n")


if __name__ == "__main__":
    main()
