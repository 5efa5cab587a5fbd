"""The CLI toolkit every pimpi command family uses: shared options and the error edge.

Options are defined once here and applied as decorators (rasterio's `rio/options.py`
is the model): `@json_opt`, `@quiet_opt`, `@force_opt`, `@stats_opt`, `@task_timeout_opt(help)`,
`@retries_opt(help)`, and `choice(registry)` for choices taken from a registry (SCENES,
SCHEDULES, ...) instead of retyped. Every number a user types goes through `Bounded`
(`Int`, `Float`, `Seconds`, `IntList`, or a library parser with bounds): a range a real
user never leaves and an absurd value always does, NaN and infinity refused; every output
path through `OutPath` (kind, parent folder, writable, no special file) at parse time, so
bad values stop before any work (tests/test_cli_bounds.py walks every command for both);
`check_memory_together` compares what a job will allocate with MemAvailable.
Library errors become one line at the edge: `library_errors` (a `with` block or decorator
that maps ValueError/TypeError to exit 2 and the failures it is told of to exit 1), `fail`
(rank 0 prints, the others leave quietly) and `fail_together` (all ranks reach it).
Each package's `cli.py` assembles its commands from these; `pimpi/cli.py` assembles
the packages.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import sys
from typing import Any, Callable, Iterable, Iterator, NoReturn

import click

from pimpi.mpi import env_rank

__all__ = ["env_rank", "fail", "fail_together", "library_errors", "show_usage_error", "choice", "json_opt", "quiet_opt", "force_opt",
           "stats_opt", "task_timeout_opt", "retries_opt", "Bounded", "Int", "Float", "Seconds", "IntList",
           "OutPath", "MAX_RANKS", "MAX_FRAMES", "MAX_FRAME_NUMBER", "MAX_SIDE", "MAX_SECONDS", "MAX_RETRIES",
           "MAX_THREADS", "MAX_BYTES", "parse_list", "parse_size", "parse_sizes", "local_ranks", "memory_problem", "check_memory_together"]

# Bounds a real user never reaches and an absurd value always does (one place for all commands).
MAX_RANKS = 4096                 # ranks of one job (a 1000-Pi cluster with 4 cores each)
MAX_FRAMES = 1_000_000           # frames of one job: 11.5 hours of film at 24 fps
MAX_FRAME_NUMBER = 99_999_999    # a frame's number (8 digits, what renderers pad to)
MAX_SIDE = 16384                 # pixels of a frame's side (16K)
MAX_SECONDS = 30 * 86400         # any timeout or duration: 30 days
MAX_RETRIES = 100
MAX_THREADS = 1024
MAX_BYTES = 1 << 30              # one message or buffer of a benchmark or trace: 1 GiB


class Bounded(click.ParamType):
    """A number (or a list of numbers) read by `parse` (int, float or a library parser that
    raises ValueError) and refused unless every number is finite and within [lo, hi]
    (`lo_open`: lo itself refused). The error names the option and the value, exit 2."""

    def __init__(self, lo: float, hi: float, parse: Callable[[str], Any] = int, name: str = "integer",
                 lo_open: bool = False, hint: str = "", max_text: int = 200) -> None:
        if not (math.isfinite(lo) and math.isfinite(hi) and lo <= hi):
            raise TypeError(f"Bounded needs finite lo <= hi, got {lo}, {hi}")
        self.lo, self.hi, self.parse, self.name, self.lo_open, self.hint = lo, hi, parse, name, lo_open, hint
        self.max_text = max_text  # characters of the typed value (a frame list may be long)

    def _range(self) -> str:
        if self.lo_open:
            return f": more than {_num(self.lo)} and at most {_num(self.hi)}"
        return f" {_num(self.lo)}..{_num(self.hi)}"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if value is None:
            return None
        if isinstance(value, (int, float)) and not isinstance(value, bool) and self.parse in (int, float):
            parsed: Any = value  # a default, still checked below
        elif isinstance(value, (list, tuple)) and not isinstance(value, str):
            parsed = value  # already converted (click may convert a default twice)
        else:
            text = str(value).strip()
            if len(text) > self.max_text:
                self.fail(f"{text[:24]!r}... is far too long for a {self.name}", param, ctx)
            try:
                parsed = self.parse(text)
            except (ValueError, ArithmeticError) as exc:
                why = "" if self.parse in (int, float) else f" ({exc})"
                self.fail(f"{text!r} is not a{'n' if self.name[0] in 'aeiou' else ''} {self.name}{why}"
                          f"{self.hint}", param, ctx)
        for number in (parsed if isinstance(parsed, (list, tuple)) else [parsed]):
            if isinstance(number, float) and not math.isfinite(number):
                self.fail(f"{value!r} is not a finite number", param, ctx)
            low = number <= self.lo if self.lo_open else number < self.lo
            if low or number > self.hi:
                shown = value if not isinstance(parsed, (list, tuple)) else f"{_num(number)} in {value!r}"
                self.fail(f"{shown} is out of range{self._range()}{self.hint}", param, ctx)
        return parsed

    def get_metavar(self, *args: Any, **kwargs: Any) -> str:
        """SECONDS, SIZES, INTEGER, ... in --help (the last word of the name)."""
        return self.name.split()[-1].upper()

    def __repr__(self) -> str:
        return f"Bounded({self.name}{self._range()})"


def _num(x: float) -> str:
    """1000000 -> '1000000', 0.5 -> '0.5', 1e+20 for a float too long to read."""
    return str(int(x)) if float(x).is_integer() and abs(x) < 1e15 else f"{x:g}"


def Int(lo: int, hi: int) -> Bounded:  # noqa: N802 - reads like a type
    """A whole number in [lo, hi] (`1e20`, `99999999999999999999` and `nan` refused)."""
    return Bounded(lo, hi, int, "integer")


def Float(lo: float, hi: float, lo_open: bool = False) -> Bounded:  # noqa: N802
    """A finite number in [lo, hi] (or (lo, hi] with `lo_open`); NaN and infinity refused."""
    return Bounded(lo, hi, float, "number", lo_open)


def Seconds(hi: float = MAX_SECONDS, lo: float = 0.0) -> Bounded:  # noqa: N802
    """Seconds: more than `lo` (0) and at most `hi` (30 days); what every timeout takes."""
    return Bounded(lo, hi, float, "number of seconds", lo_open=True)


_UNITS = {"": 1, "b": 1, "k": 1 << 10, "kb": 1 << 10, "kib": 1 << 10, "m": 1 << 20,
          "mb": 1 << 20, "mib": 1 << 20, "g": 1 << 30, "gb": 1 << 30, "gib": 1 << 30}


def parse_size(text: str) -> int:
    """'64K' -> 65536, '16M' -> 16777216, '100' -> 100 (binary units)."""
    match = re.fullmatch(r"\s*(\d+)\s*([a-zA-Z]*)\s*", str(text))
    if not match or match.group(2).lower() not in _UNITS:
        raise ValueError(f"not a size: {text!r} (use e.g. 1, 64K, 4M)")
    return int(match.group(1)) * _UNITS[match.group(2).lower()]


def parse_sizes(text: str) -> list[int]:
    """'1:16M' -> powers of two from 1 to 16 MiB; '1K,64K' -> those sizes."""
    sizes: list[int] = []
    for part in str(text).split(","):
        if not part.strip():
            continue
        if ":" in part:
            low, high = (parse_size(p) for p in part.split(":", 1))
            if low < 1 or high < low:
                raise ValueError(f"bad size range {part!r}: need 1 <= low <= high")
            size = 1 << (low - 1).bit_length()
            while size <= high:
                sizes.append(size)
                size <<= 1
        else:
            sizes.append(parse_size(part))
    if not sizes:
        raise ValueError(f"no sizes in {text!r}")
    return sorted(set(sizes))


def parse_list(text: str, kind: Callable[[str], Any] = str, what: str = "") -> list[Any]:
    """'1,2,4' -> [1, 2, 4]: comma-separated items (blanks dropped), `kind` applied to each;
    ValueError for an empty list or an item `kind` refuses (named as a `what`)."""
    items = [p.strip() for p in str(text).split(",") if p.strip()]
    if not items:
        raise ValueError("an empty list")
    values = []
    for item in items:
        try:
            values.append(kind(item))
        except ValueError:
            raise ValueError(f"{item!r} is not a {what}" if what else f"bad item {item!r}") from None
    return values


def IntList(lo: int, hi: int, most: int = 64) -> Bounded:  # noqa: N802
    """A comma-separated list of at most `most` whole numbers, each in [lo, hi]: '1,2,4'."""
    def parse(text: str) -> list[int]:
        numbers = parse_list(text, int, "whole number")
        if len(numbers) > most:
            raise ValueError(f"more than {most} items")
        return numbers
    return Bounded(lo, hi, parse, "list of integers")


class OutPath(click.ParamType):
    """An output path, checked at parse time (before any work): not empty, a known kind
    (its name ends in one of `suffixes`), then on rank 0 (the writer) its
    parent folder exists and is writable, it is no folder (for a file), no special file, not
    on /proc, /sys or /dev (`pimpi.fileio.check_target`). `folder=True`: an output folder
    (may be created). The value stays a str."""

    name = "path"

    def __init__(self, suffixes: Iterable[str] = (), folder: bool = False, what: str = "file") -> None:
        self.suffixes = tuple(s.lower() for s in suffixes)
        self.folder, self.what = folder, what

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        from pimpi.fileio import check_target

        if value is None:
            return None
        text = os.fspath(value)
        if not text.strip():
            self.fail("'' is an empty path", param, ctx)
        if not self.folder:
            allowed = self.suffixes
            suffix = os.path.splitext(text)[1].lower()
            if allowed and suffix not in allowed:
                names = ", ".join(allowed[:-1]) + (" or " if len(allowed) > 1 else "") + allowed[-1]
                self.fail(f"{text!r}: the name of a {self.what} must end in {names}", param, ctx)
        if env_rank() == 0:
            try:
                check_target(text, folder=self.folder)
            except ValueError as exc:
                self.fail(str(exc), param, ctx)
        return text


def choice(names: Iterable[str], *extra: str) -> click.Choice:
    """A click choice of a registry's names (dict keys or a tuple), plus `extra` ones."""
    return click.Choice([*names, *extra])


json_opt = click.option("--json", "json_path", type=OutPath([".json"]), default=None,
                        help="Write the result here (versioned JSON, atomic).")
quiet_opt = click.option("-q", "--quiet", is_flag=True, help="No progress lines.")
force_opt = click.option("--force", is_flag=True, help="Start over: ignore the journal of earlier runs.")
stats_opt = click.option("--stats", "stats_path", type=OutPath([".json"]), default=None,
                         help="Write a JSON report (every attempt, per-rank times) here.")


def task_timeout_opt(help: str = "Seconds one task may take; then its process group is ended.") -> click.Option:
    """`--task-timeout S` (default: none), a positive number of seconds."""
    return click.option("--task-timeout", type=Seconds(), default=None, help=help)


def retries_opt(help: str = "Times a failed task is tried again, each time on another rank.") -> click.Option:
    """`--retries N` (default 1), validated by click: a negative count is a usage error."""
    return click.option("--retries", type=Int(0, MAX_RETRIES), default=1, show_default=True, help=help)


def local_ranks() -> int:
    """Ranks of this job on this node (the launcher's environment; 1 outside mpirun)."""
    for key in ("OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS"):
        if os.environ.get(key, "").isdigit():
            return max(1, int(os.environ[key]))
    return 1


def memory_problem(what: str, per_rank: int, shared: int = 0, available: int | None = None,
                   ranks: int | None = None) -> str | None:
    """The one-line refusal when this node's ranks (`ranks`, default this job's here; `per_rank`
    bytes each, plus `shared` once) need more than `available` bytes (default: MemAvailable
    now), or None."""
    if available is None:
        from pimpi.cluster.facts import mem_available

        available = mem_available()
    local = local_ranks() if ranks is None else ranks
    need = per_rank * local + shared
    if available is None or need <= available:
        return None
    return (f"{what}: {local} rank{'s' if local > 1 else ''} on this node need{'' if local > 1 else 's'} about "
            f"{need / 2**20:,.0f} MiB, "
            f"it has {available / 2**20:,.0f} MiB available")


def check_memory_together(what: str, per_rank: int, shared: int = 0, hint: str = "") -> None:
    """Every rank calls this before any work: when any node lacks the memory, all stop with
    one line naming `what` (exit 2). Starts MPI (a verdict agreed by every rank)."""
    from pimpi.mpi import agree_error, world

    comm = world()
    problem = agree_error(comm, memory_problem(what, per_rank, shared))
    if problem:
        fail_together(comm.rank, problem + hint, usage=True)


def show_usage_error(exc: click.UsageError) -> None:
    """A usage error as one line on stderr, `Error: ...`, without click's Usage and Try lines;
    the --help hint follows only when nothing valid was given (no command was recognised).
    A group called with nothing at all still shows its help, as click does."""
    if isinstance(exc, click.exceptions.NoArgsIsHelpError):
        exc.show()
        return
    click.echo(f"Error: {exc.format_message()}", err=True)
    ctx = exc.ctx
    if ctx is None or ctx.parent is None:
        command = ctx.command_path if ctx is not None else "pimpi"
        click.echo(f"Try '{command} --help' for help.", err=True)


def fail(rank: int, message: str, usage: bool) -> NoReturn:
    """Rank 0 prints one line (exit 2 for bad input, 1 otherwise); other ranks leave quietly."""
    if rank == 0:
        raise click.UsageError(message) if usage else click.ClickException(message)
    raise click.exceptions.Exit(2 if usage else 1)


def fail_together(rank: int, message: str, usage: bool) -> NoReturn:
    """Every rank calls this together: rank 0 prints the one-line error, all exit with 2
    (usage) or 1 (runtime) after finalizing MPI.

    Under mpirun, rank 0 prints BEFORE the closing barrier: once one rank exits non-zero,
    mpirun ends the others, and an error printed later may never appear. A finalized exit
    also avoids the MPI_Abort that `pimpi`'s entry point does for a rank failing alone.
    """
    from pimpi.mpi import finalize_together, under_mpirun, world

    if not under_mpirun():
        fail(rank, message, usage)
    from mpi4py import MPI

    if not MPI.Is_finalized():
        comm = world()
        if comm.rank == 0:
            if usage:
                show_usage_error(click.UsageError(message, click.get_current_context()))
            else:
                click.ClickException(message).show()
            sys.stderr.flush()
        sys.stdout.flush()
        finalize_together(comm)
    raise click.exceptions.Exit(2 if usage else 1)


@contextlib.contextmanager
def library_errors(rank: int | None = None, *, together: bool = False, usage: tuple = (),
                   runtime: tuple = (), prefix: str = "") -> Iterator[None]:
    """The CLI's edge for library errors, as a `with` block or a decorator: ValueError and
    TypeError (and the `usage` types) are bad input, one line and exit 2; the `runtime` types
    (RuntimeError, OSError...) are failures, one line (after `prefix`) and exit 1.

    `rank=None`: a command that is no MPI job (click's error at once); otherwise `fail`
    (rank 0 prints), or `fail_together` when every rank reaches the block together.
    """
    try:
        yield
    except (ValueError, TypeError, *usage) as exc:
        _library_fail(rank, together, getattr(exc, "message", None) or str(exc), usage=True)
    except runtime as exc:
        _library_fail(rank, together, prefix + str(exc), usage=False)


def _library_fail(rank: int | None, together: bool, message: str, usage: bool) -> NoReturn:
    if rank is None:
        raise click.UsageError(message) if usage else click.ClickException(message)
    (fail_together if together else fail)(rank, message, usage)
