"""`pimpi collectives` (message traces) and `pimpi exercises` (graded exercises)."""

from __future__ import annotations

import click

__all__ = ["collectives", "exercises"]


@click.group()
def collectives() -> None:
    """Inspect pimpi's collective algorithms."""


@click.group()
def exercises() -> None:
    """Graded exercises on collective algorithms."""
