"""`pimpi bench`: benchmarks that write versioned JSON."""

from __future__ import annotations

import click

__all__ = ["bench"]


@click.group()
def bench() -> None:
    """Measure the cluster honestly (results as versioned JSON)."""
