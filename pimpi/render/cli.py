"""`pimpi render`: split frames, tiles or video segments across ranks."""

from __future__ import annotations

import click

from pimpi.render.cmd_cli import cmd, transcode
from pimpi.render.scene_cli import scene

__all__ = ["render"]


@click.group()
def render() -> None:
    """Render across the cluster (run under mpirun)."""


for _command in (scene, cmd, transcode):
    render.add_command(_command)
