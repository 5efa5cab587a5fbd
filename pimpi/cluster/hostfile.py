"""Read, check, resolve and convert MPI hostfiles as Open MPI (PRRTE) and MPICH (hydra) read them."""

from __future__ import annotations

import contextlib
import ipaddress
import os
import re
import socket
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Iterable, Iterator

from pimpi.cluster.facts import lookup

__all__ = [
    "HostEntry",
    "Hostfile",
    "load",
    "parse",
    "read_hostfile",
    "parse_hostfile",
    "format_openmpi",
    "format_mpich",
    "launcher_text",
    "launcher_file",
    "local_names",
    "resolve",
    "shared_addresses",
    "is_loopback",
]

OPENMPI = "openmpi"
MPICH = "mpich"
_INT_MAX = 2**31 - 1  # PRRTE keeps numbers in a C int: larger ones wrap around silently
_LOCAL = "\0local"  # the node key of this machine, whatever name the file gives it


@dataclass(frozen=True)
class HostEntry:
    """One node. `slots`/`max_slots` are None when the file does not set them: Open MPI then
    counts the node's cores (MPICH: one process). `names` are the other spellings of the node
    that Open MPI merged into this one (`pi1.local` after `pi1`, `localhost` and this host)."""

    host: str
    slots: int | None = None
    max_slots: int | None = None
    line: int = 0
    fmt: str = OPENMPI  # "openmpi" or "mpich": the format the file is written in
    user: str | None = None
    names: tuple[str, ...] = ()
    node: str = ""  # the name Open MPI gives the node (host name before the first dot)


@dataclass
class Hostfile:
    """A parsed hostfile: its nodes, its format, warnings for what is accepted but risky,
    and the text to hand Open MPI (`text` normalised: LF line ends, a final newline)."""

    entries: list[HostEntry]
    fmt: str
    warnings: list[str] = field(default_factory=list)
    text: str = ""
    name: str = "hostfile"


# ---------------------------------------------------------------- Open MPI (PRRTE) lexer
# The token classes and their precedence follow PRRTE's flex scanner
# (src/util/hostfile/hostfile_lex.l): the longest match wins, ties go to the earlier rule.
_NEWLINE, _QUOTED, _EQUAL, _KEYWORD, _RELATIVE, _INT, _STRING, _IPV4, _HOSTNAME, _ERROR = (
    "newline", "quoted", "=", "keyword", "relative", "int", "string", "ipv4", "hostname", "error")
_HOST_TOKENS = (_STRING, _INT, _HOSTNAME, _IPV4)
_KEYWORDS = {
    "slots": ["cpu", "count", "slots"],
    "max_slots": ["slots-max", "slots_max", "max-slots", "max_slots", "cpu-max", "cpu_max",
                  "max-cpu", "max_cpu", "count-max", "count_max", "max-count", "max_count"],
    "rank": ["rank"], "slot": ["slot"],
    "username": ["username", "user-name", "user_name"], "port": ["port"],
    # recognised by Open MPI's scanner but refused in a hostfile line:
    "boards": ["boards"],
    "sockets": ["sockets", "sockets_per_board", "sockets-per-board"],
    "cores": ["cores", "cores_per_socket", "cores-per-socket"],
}
_KEYWORD_OF = {spelling: kind for kind, spellings in _KEYWORDS.items() for spelling in spellings}
_WHITE = "[\f\t\v ]"
_RULES: list[tuple[str, re.Pattern[str]]] = [(kind, re.compile(rx)) for kind, rx in [
    (_NEWLINE, _WHITE + r"*\n"),
    (_NEWLINE, r"#[^\n]*\n"),
    (_NEWLINE, r"//[^\n]*\n"),
    ("comment", r"/\*"),
    (_QUOTED, r'"[^"]*"'),
    ("white", _WHITE + "+"),
    (_EQUAL, "="),
    (_KEYWORD, "|".join(sorted(map(re.escape, _KEYWORD_OF), key=len, reverse=True))),
    (_RELATIVE, r"\+n[0-9]+|\+[eE]:[0-9]+|\+[eE]"),
    (_INT, "[0-9]+"),
    (_STRING, r"[A-Za-z0-9_\-,:*@]+"),
    (_IPV4, r"(?:[A-Za-z0-9][A-Za-z0-9_\-]*@)?(?:[0-9]{1,3}\.){3}[0-9]{1,3}"),
    (_HOSTNAME, r"(?:\^?[A-Za-z0-9][A-Za-z0-9_\-]*@)?[A-Za-z0-9][A-Za-z0-9_\-.]*"),
    (_ERROR, r"[^\n]"),
]]
_COMMENT_END = re.compile(r"\*+/")
_COMMENT_BODY = re.compile(r"[^*\n]+|\*+[^*/\n]*")


@dataclass(frozen=True)
class _Token:
    kind: str
    text: str
    pos: int
    line: int


def _tokens(text: str) -> Iterator[_Token]:
    """PRRTE's token stream; `/* ... */` and line comments become newline tokens like there."""
    pos, line, in_comment = 0, 1, False
    while pos < len(text):
        if in_comment:
            if text[pos] == "\n":
                yield _Token(_NEWLINE, "\n", pos, line)
                pos, line = pos + 1, line + 1
                continue
            end = _COMMENT_END.match(text, pos)
            body = _COMMENT_BODY.match(text, pos)
            if end and (not body or end.end() >= body.end()):
                in_comment = False
                yield _Token(_NEWLINE, end.group(), pos, line)
                pos = end.end()
            else:
                pos = body.end() if body else pos + 1
            continue
        kind, match = max(((k, m) for k, rx in _RULES if (m := rx.match(text, pos))),
                          key=lambda km: len(km[1].group()))  # max keeps the first of equals
        token = match.group()
        if kind == "comment":
            in_comment = True
            yield _Token(_NEWLINE, token, pos, line)
        elif kind != "white":
            yield _Token(kind, token, pos, line)
        line += token.count("\n")
        pos = match.end()


# ---------------------------------------------------------------- Open MPI (PRRTE) parser
@dataclass
class _Node:
    host: str
    user: str | None
    line: int
    slots: int = 1
    given: bool = False  # PRRTE's SLOTS_GIVEN: slots set, or the host listed on several lines
    max_slots: int = 0  # 0: no limit
    lines: int = 1
    names: list[str] = field(default_factory=list)


class _Reader:
    """Walks the token stream the way PRRTE's hostfile parser does (hostfile.c)."""

    def __init__(self, text: str, name: str, local: frozenset[str]) -> None:
        self.text, self.name, self.local = text, name, local
        self.stream = _tokens(text)
        self.done = False
        self.nodes: dict[str, _Node] = {}
        self.warnings: list[str] = []

    def next(self) -> _Token | None:
        token = next(self.stream, None)
        self.done = token is None
        return token

    def where(self, token: _Token) -> str:
        return f"{self.name}:{token.line}"

    def word(self, token: _Token | None) -> str:
        """The raw text from `token` up to the next blank or line end, for messages."""
        if token is None or token.kind == _NEWLINE:
            return ""
        return re.match(r"[^\s]*", self.text[token.pos:]).group()

    def run(self) -> list[_Node]:
        while not self.done:
            token = self.next()
            if token is None or token.kind == _NEWLINE:
                continue
            if token.kind in _HOST_TOKENS:
                self.host_line(token)
            elif token.kind == _KEYWORD and _KEYWORD_OF[token.text] == "rank":
                self.rank_line(token)
            elif token.kind == _RELATIVE:
                raise ValueError(f"{self.where(token)}: a relative node needs an existing "
                                 f"allocation (a batch system), not a hostfile, got {self.word(token)!r}")
            elif self.word(token).startswith("^"):  # measured: mpirun says "parse error", drops the rest
                raise ValueError(f"{self.where(token)}: '^host' exclusion is not hostfile syntax (Open MPI "
                                 f"reports a parse error there and drops the lines after it): delete the "
                                 f"host's line instead, got {self.word(token)!r}")
            else:
                raise ValueError(f"{self.where(token)}: a line must start with a host name, "
                                 f"got {self.word(token)!r}")
        return list(self.nodes.values())

    def split_user(self, token: _Token) -> tuple[str | None, str]:
        parts = [p for p in token.text.split("@") if p]
        if len(parts) not in (1, 2):  # PRRTE 5.0 crashes on these
            raise ValueError(f"{self.where(token)}: not a host name or user@host, got {token.text!r}")
        return (None, parts[0]) if len(parts) == 1 else (parts[0], parts[1])

    def key(self, host: str) -> str:
        return _node_key(host, self.local)

    def add(self, token: _Token, user: str | None, host: str) -> _Node:
        key = self.key(host)
        node = self.nodes.get(key)
        if node is None:
            node = self.nodes[key] = _Node(host, user, token.line)
            return node
        node.slots += 1
        node.given = True
        node.lines += 1
        if host != node.host and host not in node.names:
            node.names.append(host)
            why = "both are this machine" if key == _LOCAL else "it drops what follows the first dot"
            self.warnings.append(
                f"{self.name}:{token.line}: {host!r} is the same node as {node.host!r} (line "
                f"{node.line}) to Open MPI ({why}): one node, slots added up")
        return node

    def number(self, keyword: _Token, what: str, line: int) -> int:
        """`= INT` after a keyword, like PRRTE's hostfile_parse_int; ValueError otherwise."""
        equal = self.next()
        value = self.next() if equal is not None and equal.kind == _EQUAL else equal
        if equal is None or equal.kind != _EQUAL or value is None or value.kind != _INT:
            got = self.word(value) if equal is not None and equal.kind == _EQUAL else self.word(equal)
            raise ValueError(f"{self.where(keyword)}: {what} must be a whole number "
                             f"(slots=N), got {got!r}")
        number = int(value.text)
        if number > _INT_MAX:
            raise ValueError(f"{self.where(value)}: {what} is too large for Open MPI (it "
                             f"would wrap around), got {value.text!r}")
        return number

    def host_line(self, first: _Token) -> None:
        user, host = self.split_user(first)
        node = self.add(first, user, host)
        line = first.line
        if not (_is_address(host) or _HOST_NAME.fullmatch(host)):
            self.warnings.append(f"{self.name}:{line}: {host!r} is not a valid host name "
                                 f"(letters, digits, '-' and '.'): ssh will not reach it")
        got_max = False
        token = first
        while not self.done:
            prev, token = token, self.next()
            if token is None or token.kind == _NEWLINE:
                break
            kind = _KEYWORD_OF.get(token.text) if token.kind == _KEYWORD else None
            if kind == "username":
                equal = self.next()
                value = self.next() if equal is not None and equal.kind == _EQUAL else None
                if value is not None and value.kind == _STRING:
                    node.user = value.text
                else:
                    self.warnings.append(f"{self.name}:{line}: {self.word(token)!r} is ignored by "
                                         "Open MPI (user names there are letters, digits, '_', '-')")
            elif kind == "port":
                self.number(token, "port", line)
            elif kind == "slots":
                slots = self.number(token, token.text, line)
                if node.given and node.lines == 1:
                    raise ValueError(f"{self.where(token)}: slot count given twice for "
                                     f"{node.host!r}, got {self.word(token)!r}")
                if node.given:
                    alias = f" as {node.host!r}" if host != node.host else ""
                    raise ValueError(
                        f"{self.where(token)}: {host!r} listed twice with a slot count "
                        f"(first on line {node.line}{alias}): give slots=N on one line, or list the host "
                        f"once per slot, got {self.word(token)!r}")
                node.slots, node.given = slots, True
                if node.max_slots and node.max_slots < slots:
                    node.max_slots = slots
                if slots == 0:
                    self.warnings.append(f"{self.name}:{line}: {node.host!r} has slots=0: "
                                         "Open MPI places no ranks there")
            elif kind == "max_slots":
                most = self.number(token, token.text, line)
                if most < node.slots:
                    raise ValueError(f"{self.where(token)}: {token.text} must be at least "
                                     f"slots ({node.slots}), got '{most}'")
                if node.max_slots != most:
                    node.max_slots, got_max = most, True
            elif token.kind in (_STRING, _INT):
                self.warnings.append(f"{self.name}:{line}: {token.text!r} after the host name is "
                                     "ignored by Open MPI (one host per line)")
            else:
                bad = prev if token.kind == _EQUAL and prev.kind in (_STRING, _INT) else token
                raise ValueError(f"{self.where(token)}: not a hostfile keyword (expected "
                                 f"slots=N or max_slots=N), got {self.word(bad)!r}")
        if got_max and not node.given:
            node.slots, node.given = node.max_slots, True

    def rank_line(self, first: _Token) -> None:
        """`rank N=host ...` (rankfile syntax): PRRTE takes one slot on `host` from it."""
        token = first
        while token is not None and token.kind != _EQUAL:
            token = self.next()
        host_token = self.next() if token is not None else None
        if host_token is None or host_token.kind not in _HOST_TOKENS:
            raise ValueError(f"{self.where(first)}: rank line without =host, got {self.word(first)!r}")
        user, host = self.split_user(host_token)
        node = self.add(host_token, user, host)
        node.given = True
        while token is not None and token.kind != _NEWLINE:
            token = self.next()


_HOST_NAME = re.compile(r"[A-Za-z0-9]([\w\-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([\w\-]*[A-Za-z0-9])?)*\.?", re.A)


def _node_key(host: str, local: frozenset[str]) -> str:
    """Open MPI's identity for a node: this machine under any of its names, an address
    as written, otherwise the name up to the first dot (`pi1.local` is `pi1`)."""
    if host in local or host.split(".", 1)[0] in local:
        return _LOCAL
    if _is_address(host):
        return host
    return host.split(".", 1)[0]


def _node_name(key: str) -> str:
    """The name Open MPI prints for the node with this key."""
    return socket.gethostname().split(".", 1)[0] if key == _LOCAL else key


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    return True


def local_names() -> frozenset[str]:
    """The names Open MPI takes for this machine: its host name, `localhost`, 127.0.0.1 and
    the addresses of its interfaces."""
    from pimpi.cluster import facts

    names = {"localhost", "127.0.0.1"}
    hostname = socket.gethostname()
    names |= {hostname, hostname.split(".", 1)[0]}
    try:
        names |= {a for addrs in facts.interface_addresses().values() for a in addrs}
    except (OSError, ValueError):
        pass
    return frozenset(names)


def _parse_openmpi(text: str, name: str, local: frozenset[str]) -> tuple[list[HostEntry], list[str]]:
    reader = _Reader(text, name, local)
    nodes = reader.run()
    warnings = reader.warnings
    unclosed = [t for t in _tokens(text) if t.text == "/*"]
    if unclosed and not _COMMENT_END.search(text, unclosed[-1].pos + 2):
        warnings.append(f"{name}:{unclosed[-1].line}: '/*' is never closed: Open MPI ignores the "
                        "rest of the file")
    keys: dict[str, _Node] = {}
    for node in nodes:
        other = keys.setdefault(node.host.lower(), node)
        if other is not node:
            warnings.append(f"{name}:{node.line}: {node.host!r} and {other.host!r} (line {other.line}) "
                            "differ only in case: one machine, but two nodes to Open MPI")
    entries = []
    for node in nodes:
        if node.given and node.max_slots and node.slots > node.max_slots:
            warnings.append(f"{name}:{node.line}: {node.host!r} gets {node.slots} slots from its "
                            f"{node.lines} lines but max_slots={node.max_slots}")
        elif node.lines > 1 and not node.names:
            warnings.append(f"{name}:{node.line}: {node.host!r} is listed on {node.lines} lines: "
                            f"Open MPI gives it {node.slots} slots (each further line adds one)")
        node_name = _node_name(reader.key(node.host))
        entries.append(HostEntry(node.host, node.slots if node.given else None,
                                 node.max_slots or None, node.line, OPENMPI, node.user,
                                 tuple(node.names), node_name))
    return entries, warnings


# ---------------------------------------------------------------- MPICH (hydra) format
_MPICH_LINE = re.compile(r"^\s*([^\s:#]+):([^\s:#]*)(?=\s|#|$)")


def _parse_mpich(text: str, name: str, local: frozenset[str]) -> tuple[list[HostEntry], list[str]]:
    """hydra's `host[:n] [user=U] [binding=B]`, `#` comments; a host's lines add up, and so do
    the lines of names Open MPI takes for one node (`pi1`, `pi1.local`), so the Open MPI copy
    `pimpi run` writes means the same."""
    entries: dict[str, HostEntry] = {}
    warnings: list[str] = []
    for number, raw in enumerate(text.split("\n"), start=1):
        words = raw.split("#", 1)[0].split()
        if not words:
            continue
        where = f"{name}:{number}"
        host, colon, count = words[0].partition(":")
        if colon and not re.fullmatch(r"\+?[0-9]+", count) or colon and int(count) < 1:
            raise ValueError(f"{where}: slots must be a positive integer (host:N), got {count!r}")
        if colon and int(count) > _INT_MAX:
            raise ValueError(f"{where}: slots is too large, got {count!r}")
        if not (_is_address(host) or _HOST_NAME.fullmatch(host)):
            raise ValueError(f"{where}: not a host name, got {host!r}")
        slots = int(count) if colon else None
        user = None
        for extra in words[1:]:
            key, eq, value = extra.partition("=")
            if key in _KEYWORD_OF and eq:
                raise ValueError(f"{where}: MPICH 'host:N' and an Open MPI keyword mixed on one "
                                 f"line: use one format, got {extra!r}")
            if key == "user" and eq and re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_\-]*", value):
                user = value  # a name Open MPI can read back as user@host
            elif key == "binding" and eq:
                warnings.append(f"{where}: {extra!r} has no Open MPI hostfile equivalent: pimpi run "
                                "drops it for Open MPI")
            else:
                raise ValueError(f"{where}: after the host MPICH takes user=NAME (letters, "
                                 f"digits, _ -) or binding=, got {extra!r}")
        key = _node_key(host, local)
        if key in entries:
            old = entries[key]
            total = (old.slots or 1) + (slots or 1)
            names = old.names + ((host,) if host != old.host and host not in old.names else ())
            entries[key] = replace(old, slots=total, names=names)
            same = "" if host == old.host else f" as {old.host!r}, the same node to Open MPI"
            warnings.append(f"{where}: {host!r} listed again (line {old.line}{same}): its slots "
                            f"add up to {total}")
        else:
            entries[key] = HostEntry(host, slots, None, number, MPICH, user, (), _node_name(key))
    return list(entries.values()), warnings


def _detect_format(text: str, name: str) -> str:
    """MPICH when a line starts `host:N`; such a file may not also use Open MPI keywords."""
    first: tuple[str, int, str] | None = None
    for number, raw in enumerate(text.split("\n"), start=1):
        content = raw.split("#", 1)[0]
        words = content.split()
        if not words:
            continue
        keywords = {w.split("=", 1)[0] for i, w in enumerate(words[1:]) if i == 0 or "=" in w}
        fmt = MPICH if _MPICH_LINE.match(content) else OPENMPI if keywords & set(_KEYWORD_OF) else None
        if fmt is None:  # a bare host: either format
            continue
        if first is None:
            first = (fmt, number, content.strip())
        elif first[0] != fmt:
            names = {MPICH: "MPICH 'host:N'", OPENMPI: "Open MPI 'host slots=N'"}
            raise ValueError(f"{name}:{number}: {names[fmt]} line in a file that line {first[1]} made "
                             f"{names[first[0]]}: use one format per file, got {content.strip()!r}")
    return first[0] if first else OPENMPI


# ---------------------------------------------------------------- reading, entry points
def parse(text: str, name: str = "hostfile", *, local: Iterable[str] | None = None) -> Hostfile:
    """Parse hostfile text as the MPI launcher would; ValueError `name:line: what, got 'value'`
    for anything the launcher refuses (see hostfile.example for the grammar).

    CRLF line ends and a comment on an unterminated last line are refused by Open MPI's
    mpirun; here they are accepted with a warning, and `text` (what `pimpi run` hands the
    MPI) has them normalised.
    """
    local_set = local_names() if local is None else frozenset(local)
    clean = text.replace("\r\n", "\n")
    last = clean.rsplit("\n", 1)[-1]
    clean += "" if clean.endswith("\n") or not clean else "\n"
    fmt = _detect_format(clean, name)
    warnings: list[str] = []
    if fmt == MPICH:
        entries, more = _parse_mpich(clean, name, local_set)
    else:
        if "\r\n" in text:
            warnings.append(f"{name}: CRLF (Windows) line ends: plain mpirun refuses this file; "
                            "pimpi run hands it a converted copy")
        if not text.endswith("\n") and ("#" in last or "//" in last):
            warnings.append(f"{name}: the last line has a comment but no line end: plain mpirun "
                            "refuses this file; pimpi run hands it a converted copy")
        entries, more = _parse_openmpi(clean, name, local_set)
    warnings += more
    if not entries:
        raise ValueError(f"{name}: no hosts in hostfile (only comments or blank lines)")
    # Open MPI lists the machine mpirun runs on first, wherever the file names it.
    entries.sort(key=lambda e: _node_key(e.host, local_set) != _LOCAL)
    if fmt == OPENMPI and all(e.slots == 0 for e in entries):
        first = entries[0]
        raise ValueError(f"{name}:{first.line}: every host has slots=0, so nothing can run, got '0'")
    return Hostfile(entries, fmt, warnings, clean, name)


def load(path: str | Path, *, local: Iterable[str] | None = None) -> Hostfile:
    """Parse the hostfile at `path`; ValueError (one line, naming the file) when it is unusable."""
    from pimpi.fileio import read_regular

    try:
        data = read_regular(path, "hostfile")
    except FileNotFoundError:
        raise ValueError(f"{path}: no such hostfile") from None
    except OSError as exc:
        raise ValueError(f"{path}: cannot read hostfile: {exc.strerror or exc}") from None
    # Open MPI reads bytes: a Latin-1 byte in a comment is fine there, so it is here too
    # (a host name with one is refused by the grammar, shown as U+FFFD)
    return parse(data.decode("utf-8", "replace"), name=str(path), local=local)


def read_hostfile(path: str | Path) -> list[HostEntry]:
    """The nodes of the hostfile at `path` (see `load`)."""
    return load(path).entries


def parse_hostfile(text: str, name: str = "hostfile") -> list[HostEntry]:
    """The nodes of hostfile text (see `parse`)."""
    return parse(text, name).entries


# ---------------------------------------------------------------- writing
def format_openmpi(entries: Iterable[HostEntry]) -> str:
    """An Open MPI hostfile for `entries` (`[user@]host slots=N max_slots=M`, one per line).

    MPICH entries without a count get slots=1 (hydra's meaning). The text is checked like a
    parsed file, so what this writes always parses back to the same nodes.
    """
    lines = []
    for entry in entries:
        line = f"{entry.user}@{entry.host}" if entry.user else entry.host
        slots = 1 if entry.slots is None and entry.fmt == MPICH else entry.slots
        if slots is not None:
            line += f" slots={slots}"
        if entry.max_slots is not None:
            line += f" max_slots={entry.max_slots}"
        lines.append(line)
    text = "\n".join(lines) + "\n"
    parse(text, name="format_openmpi")  # same rules as reading
    return text


def format_mpich(entries: Iterable[HostEntry]) -> str:
    """An MPICH (hydra) hostfile for `entries`: `host:N [user=U]`; a node without a count
    is written bare (hydra: one process), max_slots has no MPICH equivalent."""
    lines = []
    for entry in entries:
        line = entry.host if entry.slots is None else f"{entry.host}:{entry.slots}"
        lines.append(line + (f" user={entry.user}" if entry.user else ""))
    return "\n".join(lines) + "\n"


def launcher_text(hostfile: Hostfile, flavor: str) -> str:
    """The hostfile in the launcher's own format: the normalised text for Open MPI files
    (PRRTE reads it exactly as parsed), a conversion otherwise."""
    if flavor == OPENMPI:
        return hostfile.text if hostfile.fmt == OPENMPI else format_openmpi(hostfile.entries)
    if flavor == MPICH:
        return hostfile.text if hostfile.fmt == MPICH else format_mpich(hostfile.entries)
    raise ValueError(f"unsupported MPI flavor {flavor!r}")


@contextlib.contextmanager
def launcher_file(hostfile: Hostfile, flavor: str) -> Iterator[str]:
    """A private (0600) temporary copy of `launcher_text`, removed when the block ends."""
    fd, path = tempfile.mkstemp(prefix="pimpi-hostfile-", suffix=".txt")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(launcher_text(hostfile, flavor))
        yield path
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


# ---------------------------------------------------------------- names and addresses
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


def shared_addresses(
    entries: list[HostEntry], *, lookup: Callable[[str], list[str]] = lookup
) -> list[str]:
    """Warnings for nodes whose names resolve to one address: Open MPI counts them as two
    nodes, so that machine gets both nodes' ranks. Loopback and unresolved names are left
    to `resolve`."""
    first: dict[str, HostEntry] = {}
    warnings = []
    for entry in entries:
        try:
            addresses = lookup(entry.host)
        except OSError:
            continue
        for address in addresses:
            if is_loopback(address):
                continue
            other = first.setdefault(address, entry)
            if other is not entry:
                warnings.append(
                    f"{entry.host!r} (line {entry.line}) and {other.host!r} (line {other.line}) "
                    f"both resolve to {address}: Open MPI sees two nodes, and that machine "
                    f"gets the ranks of both")
                break
    return warnings
