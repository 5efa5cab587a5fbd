"""The nodes' rows of the page: every host of the hostfile asked over SSH, in a background thread."""

from __future__ import annotations

import json
import os
import shlex
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable

from pimpi import procs
from pimpi.cluster.facts import SAME_EVERYWHERE

__all__ = ["NodeWatcher", "ssh_probe", "is_this_machine", "SSH_OPTIONS"]

HOT_CELSIUS = 80.0  # as `pimpi doctor`
SSH_OPTIONS = ["-o", "BatchMode=yes", "-o", "ConnectTimeout=5", "-o", "ServerAliveInterval=5",
               "-o", "ServerAliveCountMax=2"]


def is_this_machine(host: str) -> bool:
    """True for loopback names and this machine's own name (asked without SSH)."""
    if host in ("localhost", "127.0.0.1", "::1"):
        return True
    name = socket.gethostname()
    return host in (name, name.split(".")[0], socket.getfqdn())


def ssh_probe(host: str, timeout: float = 15.0, python: str = sys.executable) -> dict[str, Any]:
    """Run the probe on `host` with the same Python path as here (one venv everywhere), through
    the same agent as Open MPI's launch (`PRTE_MCA_plm_ssh_agent`, default ssh); RuntimeError
    with a one-line reason when the node cannot be asked."""
    agent = os.environ.get("PRTE_MCA_plm_ssh_agent") or os.environ.get("OMPI_MCA_plm_rsh_agent") or "ssh"
    argv = [*shlex.split(agent), *SSH_OPTIONS, host, shlex.join([python, "-m", "pimpi.monitor.probe"])]
    try:
        proc = procs.start(argv, guard=True, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE)
    except OSError as exc:
        raise RuntimeError(f"cannot start ssh: {exc.strerror or exc}") from None
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        procs.end_group(proc, grace=1.0)
        raise RuntimeError(f"no answer within {timeout:g} s") from None
    finally:
        procs.end_group(proc, grace=1.0)
    if proc.returncode != 0:
        lines = [line for line in err.decode(errors="replace").splitlines() if line.strip()]
        raise RuntimeError(lines[-1] if lines else f"ssh exited with {proc.returncode}")
    try:
        return json.loads(out.decode(errors="replace").strip().splitlines()[-1])
    except (json.JSONDecodeError, IndexError):
        raise RuntimeError("the node's probe printed no facts") from None


def _local_probe() -> dict[str, Any]:
    from pimpi.monitor.probe import probe

    return probe()


class NodeWatcher:
    """Asks every host every `interval` seconds (at most 8 at once); `rows()` is the latest.

    A node that does not answer keeps its last facts, marked unreachable with the reason.
    """

    def __init__(self, hosts: list[str], interval: float = 15.0, timeout: float = 15.0,
                 ask: Callable[[str], dict[str, Any]] | None = None) -> None:
        self.hosts = list(dict.fromkeys(hosts))
        self.interval = interval
        self.timeout = timeout
        self._ask = ask
        self._lock = threading.Lock()
        self._rows: dict[str, dict[str, Any]] = {
            h: {"host": h, "reachable": None, "error": "", "checked": None, "facts": {}} for h in self.hosts}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self.hosts and self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="pimpi-monitor-nodes", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _one(self, host: str) -> None:
        try:
            if self._ask is not None:
                facts = self._ask(host)
            elif is_this_machine(host):
                facts = _local_probe()
            else:
                facts = ssh_probe(host, self.timeout)
            row = {"reachable": True, "error": "", "facts": facts}
        except Exception as exc:  # noqa: BLE001 - any failure is the node's row, never the server's
            row = {"reachable": False, "error": " ".join(str(exc).split())[:300] or type(exc).__name__}
        with self._lock:
            self._rows[host].update(row, checked=time.time())

    def poll_once(self) -> None:
        with ThreadPoolExecutor(max_workers=min(8, len(self.hosts) or 1)) as pool:
            list(pool.map(self._one, self.hosts))

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.poll_once()
            self._stop.wait(self.interval)

    def rows(self) -> dict[str, Any]:
        """{"nodes": [...], "problems": [...]}: the problems `pimpi doctor` reports from
        facts alone (versions that differ, heat, throttling) and nodes that do not answer."""
        with self._lock:
            rows = [dict(self._rows[h]) for h in self.hosts]
        reachable = [r for r in rows if r["reachable"]]
        problems = []
        for key, label in SAME_EVERYWHERE.items():  # as `pimpi doctor` compares them
            seen: dict[Any, list[str]] = {}
            for row in reachable:
                seen.setdefault(row["facts"].get(key), []).append(row["host"])
            if len(seen) > 1:
                problems.append(f"{label} differs between nodes: "
                                + "; ".join(f"{v} on {', '.join(h)}" for v, h in seen.items()))
        for row in reachable:
            facts, host = row["facts"], row["host"]
            temp = facts.get("temp_c")
            if isinstance(temp, (int, float)) and temp >= HOT_CELSIUS:
                problems.append(f"{host} is hot: {temp:.1f} °C (limit {HOT_CELSIUS:g} °C)")
            throttled = facts.get("throttled") or {}
            if throttled.get("now"):
                now = [f for f in throttled.get("flags", ()) if not f.endswith("-occurred")]
                problems.append(f"{host} is throttled now ({throttled.get('raw')}): {', '.join(now)}")
        problems += [f"{r['host']} cannot be reached: {r['error']}" for r in rows if r["reachable"] is False]
        return {"nodes": rows, "problems": problems}
