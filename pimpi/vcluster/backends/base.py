"""The `Nodes` protocol every node backend implements, and what backends share."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Protocol

from pimpi.vcluster.spec import Node, Spec

__all__ = ["Nodes", "Log", "Record", "faults_text"]

Log = Callable[[str], None]
Record = Callable[[str, object], None]  # record(key, value): into data["created"], saved at once


class Nodes(Protocol):
    """The verbs of one kind of node. FILES is `state.files(name)`, DATA the state file's dict,
    CREATED its "created" part; whatever a backend makes it records first (RECORD), so that
    `teardown` after a failure half-way ends exactly that."""

    def tools(self, spec: Spec) -> tuple[str, ...]:
        """Commands `up` needs beyond the shared ones (checked before anything is made)."""

    def prepare(self, spec: Spec, log: Log) -> object:
        """Work before the state file exists (a cache build that may fail); passed to build."""

    def build(self, spec: Spec, data: dict, record: Record, files: dict[str, Path], prepared: object,
              log: Log) -> object:
        """Make the nodes, after the bridge and before the shared hostfile, env and hosts block;
        returns what `start` needs."""

    def start(self, spec: Spec, data: dict, record: Record, files: dict[str, Path], built: object,
              log: Log) -> None:
        """Bring the nodes to where MPI (and SSH, if they have it) reaches them; last step of `up`."""

    def teardown(self, spec: Spec, created: dict) -> list[str]:
        """End every node process and remove what only this kind makes, as far as CREATED records
        it (first step of `down`, carrying on past errors); the errors, if any."""

    def exec_argv(self, spec: Spec, data: dict, files: dict[str, Path], node: Node, command: list[str],
                  cwd: str) -> tuple[list[str], dict]:
        """(argv, env) running COMMAND inside NODE, in CWD when it exists there (else /)."""

    def status(self, spec: Spec, data: dict, node: Node) -> dict:
        """NODE's row of `status` (hostname, address, link, running, what this kind can tell)."""

    def shape(self, spec: Spec, files: dict[str, Path], node: Node, delay_s: float | None,
              rate_bps: float | None, need_delay: bool) -> None:
        """Delay each way and rate on NODE's link (None: not limited)."""

    def kill(self, spec: Spec, data: dict, files: dict[str, Path], node: Node) -> int:
        """End every job process in NODE, the node stays up; how many processes ended."""

    def words(self, info: dict) -> str:
        """What `status` adds to its first line for this kind ("" for nothing)."""

    def row_text(self, row: dict) -> str:
        """One node's line of `status`."""


def faults_text(row: dict) -> str:
    """The faults injected into a node, for its `status` line ("" when there are none)."""
    faults = [k + (f"={row[k]}" if not isinstance(row[k], bool) else "")
              for k in ("cut", "delay_s", "rate_bps") if k in row]
    return "  faults: " + ", ".join(faults) if faults else ""
