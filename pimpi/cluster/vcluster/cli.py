"""`pimpi vcluster`: create, inspect and break a virtual cluster of namespace hosts."""

from __future__ import annotations

import click

__all__ = ["vcluster"]


@click.group()
def vcluster() -> None:
    """A virtual cluster of network-namespace hosts on this machine (needs root)."""
