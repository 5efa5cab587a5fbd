"""The one state file per cluster that records everything `up` created, so `down` removes exactly that."""

from __future__ import annotations

import fcntl
import json
import os
from contextlib import contextmanager
from pathlib import Path

from pimpi.fileio import atomic_write
from pimpi.vcluster.spec import Spec, spec_from_dict
from pimpi.vcluster.sysrun import VclusterError, require_root

__all__ = ["state_root", "state_file", "state_dir", "load", "save", "forget", "locked", "files", "loaded"]

VERSION = 1


def state_root() -> Path:
    """/run/pimpi (or $PIMPI_VCLUSTER_STATE): gone after a reboot, like the namespaces."""
    return Path(os.environ.get("PIMPI_VCLUSTER_STATE", "/run/pimpi"))


def state_file(name: str) -> Path:
    return state_root() / f"vcluster-{name}.json"


def state_dir(name: str) -> Path:
    """Per-cluster folder: agent script, hostfile, env, ssh key, known_hosts, node overlays."""
    return state_root() / f"vcluster-{name}"


def files(name: str) -> dict[str, Path]:
    """The documented files in the state dir."""
    d = state_dir(name)
    return {"dir": d, "agent": d / "ssh-agent", "shared": d / "shared",
            "hostfile": d / "shared" / "hostfile", "env": d / "shared" / "env",
            "key": d / "id_ed25519", "known_hosts": d / "known_hosts",
            "inventory": d / "inventory.yml", "inventory_json": d / "inventory.json",
            "sudo_password": d / "sudo_password"}


def load(name: str) -> dict | None:
    """The recorded state, or None when no cluster of that name exists."""
    try:
        return json.loads(state_file(name).read_text())
    except FileNotFoundError:
        return None
    except ValueError as exc:
        raise ValueError(f"{state_file(name)}: not a pimpi state file ({exc})") from None


def loaded(name: str) -> tuple[Spec, dict]:
    """The spec and state of a running cluster (VclusterError when there is none; needs root)."""
    require_root()
    data = load(name)
    if data is None:
        raise VclusterError(f"no virtual cluster named {name!r} (start one: pimpi vcluster up --nodes 3)")
    return spec_from_dict(data["spec"]), data


def save(name: str, state: dict) -> None:
    """Write the state atomically (temporary name, then rename)."""
    path = state_file(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    state["version"] = VERSION
    atomic_write(path, json.dumps(state, indent=1, sort_keys=True) + "\n")


def forget(name: str) -> None:
    """Remove the state file (the last step of `down`)."""
    try:
        state_file(name).unlink()
    except FileNotFoundError:
        pass


@contextmanager
def locked(name: str, timeout: float = 120):
    """Hold the cluster's lock, so two `up`/`down` of one cluster never interleave."""
    root = state_root()
    root.mkdir(parents=True, exist_ok=True)
    lock_path = root / f".vcluster-{name}.lock"
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        import time

        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"cluster {name!r} is busy (another pimpi vcluster holds {lock_path})")
                time.sleep(0.2)
        yield
    finally:
        os.close(fd)
