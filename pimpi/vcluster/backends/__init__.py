"""Node backends: what one kind of virtual node does; `cluster.py` speaks only the `Nodes` protocol.

`cluster.py` owns what every kind shares (the bridge, the state file, the hostfile and env,
the /etc/hosts block, NAT, the inventory, link faults); a backend owns its nodes: how they are
made and started, entered, shaped, crashed and ended. A new kind of node (containers, real
boards) is a new folder here with a module-level `NODES` and one line in `_BACKENDS`.
"""

from __future__ import annotations

import importlib

from pimpi.vcluster.backends.base import Nodes

__all__ = ["Nodes", "for_kind"]

# spec.kind -> the package holding its NODES; imported only when a cluster of that kind is used
_BACKENDS = {"netns": "pimpi.vcluster.backends.ns", "vm": "pimpi.vcluster.backends.vm"}


def for_kind(kind: str) -> Nodes:
    """The backend of SPEC.kind (ValueError naming an unknown kind)."""
    if kind not in _BACKENDS:
        raise ValueError(f"unknown node kind {kind!r}; choose one of {', '.join(_BACKENDS)}")
    return importlib.import_module(_BACKENDS[kind]).NODES
