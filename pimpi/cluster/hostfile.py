"""Read, check, resolve and write MPI hostfiles (Open MPI `node slots=4` and MPICH `node:4`)."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

from pimpi.cluster.facts import lookup

__all__ = [
    "HostEntry",
    "read_hostfile",
    "parse_hostfile",
    "format_openmpi",
    "resolve",
    "is_loopback",
]

OPENMPI = "openmpi"
MPICH = "mpich"
_KEYWORDS = {"slots": "slots", "max_slots": "max_slots", "max-slots": "max_slots"}
# A host name or an IPv4 address: letters, digits, '-', '_' and '.', starting with a letter or digit.
_HOST = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")


@dataclass(frozen=True)
class HostEntry:
    """One host line: `slots`/`max_slots` are None when the line does not give them."""

    host: str
    slots: int | None = None
    max_slots: int | None = None
    line: int = 0
    fmt: str = OPENMPI  # "openmpi" or "mpich": the format the line was written in


def read_hostfile(path: str | Path) -> list[HostEntry]:
    """Parse the hostfile at `path`; ValueError (one line, naming the file) when it is unusable."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ValueError(f"{path}: no such hostfile") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: cannot read hostfile: {exc}") from None
    return parse_hostfile(text, name=str(path))


def parse_hostfile(text: str, name: str = "hostfile") -> list[HostEntry]:
    """Parse hostfile text in either format; ValueError `name:line: what, got 'value'` on bad input.

    Refused: unknown keywords, slots or max_slots that are not positive integers,
    max_slots < slots, a host listed twice, MPICH and Open MPI lines in one file,
    and a file with no hosts at all. A bare host name is valid in both formats.
    """
    entries: list[HostEntry] = []
    seen: dict[str, int] = {}
    fmt_line: tuple[str, int] | None = None  # the first line that fixed the file's format
    for number, raw in enumerate(text.splitlines(), start=1):
        content = raw.split("#", 1)[0].strip()
        if not content:
            continue
        where = f"{name}:{number}"
        entry = _parse_line(content, number, where)
        if entry.fmt and entry.fmt != "bare":
            if fmt_line is None:
                fmt_line = (entry.fmt, number)
            elif fmt_line[0] != entry.fmt:
                raise ValueError(
                    f"{where}: {_fmt_name(entry.fmt)} line {content!r} in a file that line "
                    f"{fmt_line[1]} made {_fmt_name(fmt_line[0])}: use one format per file"
                )
        if entry.host in seen:
            raise ValueError(f"{where}: host {entry.host!r} listed twice (first on line {seen[entry.host]})")
        seen[entry.host] = number
        entries.append(entry)
    if not entries:
        raise ValueError(f"{name}: no hosts in hostfile (only comments or blank lines)")
    fmt = fmt_line[0] if fmt_line else OPENMPI
    return [HostEntry(e.host, e.slots, e.max_slots, e.line, fmt) for e in entries]


def _fmt_name(fmt: str) -> str:
    return "MPICH 'host:N'" if fmt == MPICH else "Open MPI 'host slots=N'"


def _parse_line(content: str, number: int, where: str) -> HostEntry:
    """One non-empty line, comments removed; fmt is 'bare' for a lone host name."""
    tokens = content.split()
    first = tokens[0]
    if ":" in first:
        host, _, count = first.partition(":")
        _check_host(host, where)
        if len(tokens) > 1:
            extra = tokens[1]
            if "=" in extra and extra.split("=", 1)[0] in _KEYWORDS:
                raise ValueError(
                    f"{where}: MPICH 'host:N' and Open MPI '{extra}' mixed on one line: use one format"
                )
            raise ValueError(f"{where}: unexpected {extra!r} after MPICH entry {first!r}")
        return HostEntry(host, _positive(count, "slots", where), None, number, MPICH)
    _check_host(first, where)
    values: dict[str, int] = {}
    for token in tokens[1:]:
        key, eq, value = token.partition("=")
        if not eq or key not in _KEYWORDS:
            raise ValueError(
                f"{where}: unknown keyword {token!r} (expected slots=N or max_slots=N)"
            )
        canonical = _KEYWORDS[key]
        if canonical in values:
            raise ValueError(f"{where}: {canonical} given twice, got {token!r}")
        values[canonical] = _positive(value, canonical, where)
    slots, max_slots = values.get("slots"), values.get("max_slots")
    if slots is not None and max_slots is not None and max_slots < slots:
        raise ValueError(f"{where}: max_slots must be at least slots ({slots}), got {max_slots}")
    fmt = OPENMPI if values else "bare"
    return HostEntry(first, slots, max_slots, number, fmt)


def _check_host(host: str, where: str) -> None:
    if not _HOST.match(host):
        raise ValueError(f"{where}: not a host name, got {host!r}")


def _positive(value: str, what: str, where: str) -> int:
    """A positive integer written in decimal, or ValueError naming the value."""
    if not re.fullmatch(r"[+]?[0-9]+", value) or int(value) < 1:
        raise ValueError(f"{where}: {what} must be a positive integer, got {value!r}")
    return int(value)


def format_openmpi(entries: Iterable[HostEntry]) -> str:
    """An Open MPI hostfile for `entries` (`host slots=N max_slots=M`, one per line).

    The entries are checked like a parsed file, so what this writes always parses back.
    """
    lines = []
    for entry in entries:
        line = entry.host
        if entry.slots is not None:
            line += f" slots={entry.slots}"
        if entry.max_slots is not None:
            line += f" max_slots={entry.max_slots}"
        lines.append(line)
    text = "\n".join(lines) + "\n"
    parse_hostfile(text, name="format_openmpi")  # same rules as reading
    return text


def is_loopback(address: str) -> bool:
    """True for 127.0.0.0/8 (including Debian's 127.0.1.1 hostname entry) and ::1."""
    try:
        return ipaddress.ip_address(address.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


def resolve(
    entries: list[HostEntry], *, lookup: Callable[[str], list[str]] = lookup
) -> list[str]:
    """Problems resolving the hosts, one line each; an empty list means all is well.

    A name that does not resolve is a problem. A name that resolves to loopback is a
    problem when the file lists more than one host: the other nodes would be told to
    reach this one at 127.0.1.1 (the Debian `/etc/hosts` default), and mpirun hangs.
    """
    problems = []
    several = len(entries) > 1
    for entry in entries:
        try:
            addresses = lookup(entry.host)
        except OSError as exc:
            problems.append(f"{entry.host!r} (line {entry.line}) does not resolve: {exc}")
            continue
        loop = [a for a in addresses if is_loopback(a)]
        if several and loop:
            problems.append(
                f"{entry.host!r} (line {entry.line}) resolves to loopback {loop[0]}: other nodes "
                f"cannot reach it there (map the name to its cluster address in /etc/hosts, "
                f"not '{loop[0]} {entry.host}')"
            )
    return problems
