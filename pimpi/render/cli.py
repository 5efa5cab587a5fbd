"""`pimpi render`: split frames, tiles or video segments across ranks."""

from __future__ import annotations

import click

__all__ = ["render"]


@click.group()
def render() -> None:
    """Render across the cluster (run under mpirun)."""
