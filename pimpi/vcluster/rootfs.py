"""--rootfs nodes: a cached minimal Debian, each node's own writable layer, SSH keys and sshd."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

from pimpi.vcluster.etc_hosts import node_hosts
from pimpi.vcluster.spec import Node, Spec
from pimpi.vcluster.sysrun import VclusterError, run
from pimpi.fileio import atomic_write, built_once

__all__ = ["PACKAGES", "host_codename", "find_mirror", "mirror_for", "cache_dir", "ensure_cache", "bind_paths",
           "make_key", "prepare_node", "host_key_line", "start_sshd", "wait_ssh", "ssh_argv"]

PACKAGES = ["openssh-server", "python3", "python3-venv", "sudo", "iproute2", "procps",
            "ca-certificates"]


def host_codename(os_release: Path = Path("/etc/os-release")) -> str:
    """This machine's Debian codename ($PIMPI_DEBIAN_SUITE overrides)."""
    if os.environ.get("PIMPI_DEBIAN_SUITE"):
        return os.environ["PIMPI_DEBIAN_SUITE"]
    try:
        for line in os_release.read_text().splitlines():
            if line.startswith("VERSION_CODENAME="):
                value = line.split("=", 1)[1].strip().strip('"')
                if value:
                    return value
    except OSError:
        pass
    raise VclusterError("cannot tell this machine's Debian release: set PIMPI_DEBIAN_SUITE (e.g. bookworm)")


def _sources(apt_dir: Path) -> list[tuple[str, str]]:
    """(uri, suite) of every `deb` source, one-line and deb822 formats."""
    found: list[tuple[str, str]] = []
    files = [apt_dir / "sources.list"] + sorted((apt_dir / "sources.list.d").glob("*.list"))
    for path in files:
        if not path.is_file():
            continue
        for line in path.read_text(errors="replace").splitlines():
            words = re.sub(r"\[[^]]*\]", " ", line.split("#", 1)[0]).split()
            if len(words) >= 3 and words[0] == "deb":
                found.append((words[1], words[2]))
    for path in sorted((apt_dir / "sources.list.d").glob("*.sources")):
        for stanza in re.split(r"\n\s*\n", path.read_text(errors="replace")):
            fields: dict[str, str] = {}
            for line in stanza.splitlines():
                if line.startswith("#") or ":" not in line or line[:1].isspace():
                    continue
                key, value = line.split(":", 1)
                fields[key.strip().lower()] = value.strip()
            if "deb" not in fields.get("types", "").split() or fields.get("enabled", "yes") == "no":
                continue
            for uri in fields.get("uris", "").split():
                for suite in fields.get("suites", "").split():
                    found.append((uri, suite))
    return found


def find_mirror(suite: str, apt_dir: Path = Path("/etc/apt")) -> str:
    """The Debian mirror this machine already uses for SUITE ($PIMPI_DEBIAN_MIRROR overrides)."""
    if os.environ.get("PIMPI_DEBIAN_MIRROR"):
        return os.environ["PIMPI_DEBIAN_MIRROR"]
    for uri, found_suite in _sources(apt_dir):
        if found_suite == suite and uri.split(":", 1)[0] in ("http", "https", "file"):
            return uri
    raise VclusterError(f"no apt source for {suite!r} in {apt_dir}: set PIMPI_DEBIAN_MIRROR")


def mirror_for(suite: str, apt_dir: Path = Path("/etc/apt")) -> str:
    """A Debian mirror for SUITE even when this machine's sources name another release (a
    bookworm machine building trixie nodes): a mirror carries every release, so the one serving
    this machine's own release will do ($PIMPI_DEBIAN_MIRROR overrides)."""
    try:
        return find_mirror(suite, apt_dir)
    except VclusterError:
        try:
            return find_mirror(host_codename(), apt_dir)
        except VclusterError:
            raise VclusterError(f"no apt source for {suite!r} or this machine's release in {apt_dir}: "
                                "set PIMPI_DEBIAN_MIRROR") from None


def cache_dir(suite: str) -> Path:
    """Where the shared read-only Debian lives ($PIMPI_ROOTFS_CACHE overrides the parent)."""
    return Path(os.environ.get("PIMPI_ROOTFS_CACHE", "/var/cache/pimpi")) / f"rootfs-{suite}"


def ensure_cache(log, timeout: float = 900) -> Path:
    """debootstrap the minimal Debian once (about 35 s and 280 MB); later calls reuse it."""
    suite = host_codename()
    final = cache_dir(suite)

    def build(tmp: Path) -> str:
        mirror = find_mirror(suite)
        log(f"debootstrap {suite} from {mirror} into {final} (once; about a minute)")
        run(["debootstrap", "--variant=minbase", f"--include={','.join(PACKAGES)}", suite, str(tmp), mirror],
            timeout=timeout)
        for key in (tmp / "etc/ssh").glob("ssh_host_*"):
            key.unlink()  # every node gets its own host key
        for deb in (tmp / "var/cache/apt/archives").glob("*.deb"):
            deb.unlink()
        return f"{suite} {mirror}\n"

    return built_once(final, build)  # a second `up` waits for the first debootstrap


def bind_paths() -> list[str]:
    """Read-only binds so nodes run the same MPI and Python at the same paths: this Python's
    installation, the venv, and the repo holding pimpi (nested paths folded into their parent)."""
    import pimpi

    repo = Path(pimpi.__file__).resolve().parent.parent
    wanted = {Path(sys.base_prefix).resolve(), Path(sys.prefix).absolute(), repo}
    wanted = {p for p in wanted if str(p) not in ("/", "/usr")}
    paths = sorted(str(p) for p in wanted)
    return [p for p in paths if not any(p != q and p.startswith(q + "/") for q in paths)]


def make_key(path: Path, comment: str) -> None:
    """The cluster's SSH key (ed25519, no passphrase), kept in the state dir."""
    if not path.exists():
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)])


def _put(path: Path, text: str | bytes, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, text, mode)


def prepare_node(spec: Spec, node: Node, upper: Path, key: Path, env: dict[str, str],
                 path_dirs: list[str]) -> str:
    """Write the node's own files into its (not yet mounted) overlay layer: hostname, hosts,
    a fresh host key, root's SSH key, sshd settings. Returns its known_hosts line."""
    _put(upper / "etc/hostname", node.hostname + "\n")
    _put(upper / "etc/hosts", node_hosts(spec))
    host_key = upper / "etc/ssh/ssh_host_ed25519_key"
    host_key.parent.mkdir(parents=True, exist_ok=True)
    run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"root@{node.hostname}", "-f", str(host_key)])
    ssh = upper / "root/.ssh"
    ssh.mkdir(parents=True, exist_ok=True)
    os.chmod(upper / "root", 0o700)
    os.chmod(ssh, 0o700)
    _put(ssh / "authorized_keys", key.with_suffix(".pub").read_text(), 0o600)
    _put(ssh / "id_ed25519", key.read_bytes(), 0o600)
    _put(ssh / "id_ed25519.pub", key.with_suffix(".pub").read_text(), 0o644)
    path = ":".join(path_dirs + ["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"])
    setenv = " ".join(f'"{k}={v}"' for k, v in sorted({**env, "PATH": path}.items()))
    _put(upper / "etc/ssh/sshd_config.d/pimpi.conf", "\n".join([
        "# written by pimpi vcluster: key-only root login on the cluster address",
        f"ListenAddress {node.address}",
        "HostKey /etc/ssh/ssh_host_ed25519_key",
        "PermitRootLogin prohibit-password",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "UsePAM no",
        f"SetEnv {setenv}",
        "",
    ]))
    _put(upper / "etc/environment", f'PATH="{path}"\n')
    resolv = Path("/etc/resolv.conf")
    if spec.nat and resolv.is_file() and not re.search(r"^nameserver\s+127\.", resolv.read_text(), re.M):
        _put(upper / "etc/resolv.conf", resolv.read_text())  # today's resolver, not debootstrap day's
    return host_key_line(node, host_key.with_suffix(".pub"))


def host_key_line(node: Node, pub: Path) -> str:
    """known_hosts line naming the node by hostname and address."""
    kind, blob = pub.read_text().split()[:2]
    return f"{node.hostname},{node.address} {kind} {blob}\n"


def start_sshd(enter: list[str]) -> None:
    """Start sshd inside the node (it daemonizes; found later by its network namespace)."""
    run(enter + ["/usr/sbin/sshd", "-E", "/var/log/sshd.log"], timeout=30)


def ssh_argv(key: Path, known_hosts: Path, host: str, user: str = "root") -> list[str]:
    """ssh to a node with the cluster key and strict host key checking."""
    return ["ssh", "-i", str(key), "-o", f"UserKnownHostsFile={known_hosts}", "-o",
            "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", "-o", "ConnectTimeout=5",
            f"{user}@{host}"]


def wait_ssh(argv: list[str], timeout: float = 30) -> None:
    """Wait until `ssh ... true` works."""
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        out = subprocess.run(argv + ["true"], capture_output=True, text=True, timeout=20,
                             stdin=subprocess.DEVNULL, check=False)
        if out.returncode == 0:
            return
        last = out.stderr.strip().splitlines()[-1:] or [""]
        last = last[0]
        time.sleep(0.3)
    raise VclusterError(f"ssh {argv[-1]} did not answer in {timeout:g} s: {last}")
