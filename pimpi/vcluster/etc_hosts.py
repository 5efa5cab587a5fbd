"""Name resolution for a virtual cluster: a marked block in /etc/hosts, and each node's own hosts file."""

from __future__ import annotations

from pathlib import Path

from pimpi.vcluster.spec import Spec

__all__ = ["begin_marker", "end_marker", "cluster_lines", "node_hosts", "add_block", "remove_block",
           "strip_block"]

ETC_HOSTS = Path("/etc/hosts")


def begin_marker(name: str) -> str:
    return f"# BEGIN pimpi vcluster {name} (managed by `pimpi vcluster`; removed by `down`)"


def end_marker(name: str) -> str:
    return f"# END pimpi vcluster {name}"


def cluster_lines(spec: Spec) -> list[str]:
    """Every node's name at its cluster address, and this machine as NAME0."""
    lines = [f"{spec.head_address}\t{spec.head_name}"]
    lines += [f"{n.address}\t{n.hostname}" for n in spec.node_list()]
    return lines


def node_hosts(spec: Spec) -> str:
    """A node's /etc/hosts: loopback for localhost only, its own name at its cluster address
    (never 127.0.1.1, which makes mpirun hang), then every other node."""
    return "\n".join([
        "127.0.0.1\tlocalhost",
        "::1\tlocalhost ip6-localhost ip6-loopback",
        begin_marker(spec.name), *cluster_lines(spec), end_marker(spec.name), "",
    ])


def strip_block(text: str, name: str) -> str:
    """TEXT without this cluster's block (and nothing else)."""
    out, inside = [], False
    for line in text.splitlines(keepends=True):
        if line.rstrip("\n") == begin_marker(name):
            inside = True
            continue
        if inside and line.rstrip("\n") == end_marker(name):
            inside = False
            continue
        if not inside:
            out.append(line)
    return "".join(out)


def _edit(path: Path, change) -> bool:
    """Apply CHANGE(text) -> text to PATH under an exclusive lock (two clusters coming up at
    once never lose each other's block). Rewritten in place, never renamed: a rename would
    detach the bind mounts of this file that `ip netns exec` made in every node. The new
    text is written in one call after the old is read. True when something changed."""
    import fcntl

    with open(path, "r+" if path.exists() else "w+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        text = handle.read()
        new = change(text)
        if new == text:
            return False
        handle.seek(0)
        handle.write(new)
        handle.truncate()
        return True


def add_block(spec: Spec, path: Path = ETC_HOSTS) -> None:
    """Append this cluster's block to the machine's hosts file (replacing an old one)."""
    block = "\n".join([begin_marker(spec.name), *cluster_lines(spec), end_marker(spec.name)]) + "\n"

    def change(text: str) -> str:
        text = strip_block(text, spec.name)
        return text + ("\n" if text and not text.endswith("\n") else "") + block

    _edit(path, change)


def remove_block(name: str, path: Path = ETC_HOSTS) -> bool:
    """Remove this cluster's block; True when there was one."""
    if not path.exists():
        return False
    return _edit(path, lambda text: strip_block(text, name))
