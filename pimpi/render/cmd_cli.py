"""`pimpi render cmd` and `pimpi render transcode`: any renderer, and chunked video encoding."""

from __future__ import annotations

import click

__all__ = ["cmd", "transcode"]


@click.command()
def cmd() -> None:
    """Run any per-frame renderer over chunks of frames."""
    raise click.ClickException("not implemented yet")


@click.command()
def transcode() -> None:
    """Encode a video in segments on all ranks."""
    raise click.ClickException("not implemented yet")
