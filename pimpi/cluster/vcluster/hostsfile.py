"""Name resolution for a virtual cluster: a marked block in /etc/hosts, and each node's own hosts file."""

from __future__ import annotations

from pathlib import Path

from pimpi.cluster.vcluster.spec import Spec

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


def _write(path: Path, text: str) -> None:
    """Rewrite in place, never rename: renaming over /etc/hosts would detach the bind mounts
    of it that `ip netns exec` made in every node (ours and other clusters'). The new text is
    written in one call after the old is read, so a failure loses nothing it did not have."""
    with open(path, "r+" if path.exists() else "w") as handle:
        handle.seek(0)
        handle.write(text)
        handle.truncate()


def add_block(spec: Spec, path: Path = ETC_HOSTS) -> None:
    """Append this cluster's block to the machine's hosts file (replacing an old one)."""
    text = strip_block(path.read_text() if path.exists() else "", spec.name)
    if text and not text.endswith("\n"):
        text += "\n"
    block = [begin_marker(spec.name), *cluster_lines(spec), end_marker(spec.name)]
    _write(path, text + "\n".join(block) + "\n")


def remove_block(name: str, path: Path = ETC_HOSTS) -> bool:
    """Remove this cluster's block; True when there was one."""
    if not path.exists():
        return False
    text = path.read_text()
    new = strip_block(text, name)
    if new == text:
        return False
    _write(path, new)
    return True
