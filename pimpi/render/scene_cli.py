"""`pimpi render scene`: built-in scenes rendered across ranks."""

from __future__ import annotations

import click

__all__ = ["scene"]


@click.command()
def scene() -> None:
    """Render a built-in scene (mandelbrot, julia, raytrace)."""
    raise click.ClickException("not implemented yet")
