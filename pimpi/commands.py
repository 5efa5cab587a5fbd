"""The `pimpi` subcommands by name, in one place: `pimpi/cli.py` assembles them from here, and
`pimpi run` tells a pimpi command from a script by this list without importing the CLI."""

from __future__ import annotations

__all__ = ["COMMANDS"]

# name -> "module:attribute" of the click command (imported when the CLI is assembled)
COMMANDS = {
    "hosts": "pimpi.cluster.cli:hosts",
    "doctor": "pimpi.cluster.cli:doctor",
    "run": "pimpi.cluster.cli:run",
    "submit": "pimpi.cluster.slurm.cli:submit",
    "collectives": "pimpi.collectives.cli:collectives",
    "exercises": "pimpi.collectives.cli:exercises",
    "render": "pimpi.render.cli:render",
    "vcluster": "pimpi.vcluster.cli:vcluster",
    "bench": "pimpi.bench.cli:bench",
    "monitor": "pimpi.monitor.cli:monitor",
}
