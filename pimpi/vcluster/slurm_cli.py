"""`pimpi vcluster slurm up|down`: Slurm on a light virtual cluster, to practise queueing and requeue."""

from __future__ import annotations

import click

from pimpi.cliutil import Float
from pimpi.vcluster.options import call, name_option

__all__ = ["slurm"]

_name_option = name_option("Cluster name.")


@click.group()
def slurm() -> None:
    """Slurm on a light virtual cluster: munge and slurmctld on node 1, slurmd on the others.

    \b
    pimpi vcluster up --nodes 4
    pimpi vcluster slurm up
    pimpi vcluster exec node1 -- sinfo
    """


@slurm.command("up")
@_name_option
@click.option("--head-compute", is_flag=True, help="Node 1 runs jobs too (slurmd).")
@click.option("--timeout", type=Float(1, 3600), default=60, show_default=True,
              help="Seconds to wait for every node to be idle.")
def up(name: str, head_compute: bool, timeout: float) -> None:
    """Start Slurm; print the nodes and the SLURM_CONF that sinfo, sbatch and pimpi submit need."""
    from pimpi.vcluster import slurm as slurm_mod

    compute = call(slurm_mod.start, name, head_compute=head_compute, timeout=timeout)
    conf = slurm_mod.conf_path(name)
    click.echo(f"Slurm is up on {name!r}: compute nodes {', '.join(compute)}, partition pimpi")
    click.echo(f"  pimpi vcluster exec --name {name} node1 -- sinfo   (exec sets SLURM_CONF={conf})")


@slurm.command("down")
@_name_option
def down(name: str) -> None:
    """Stop every Slurm daemon of the cluster and remove its state (the cluster stays up)."""
    from pimpi.vcluster import slurm as slurm_mod

    left = call(slurm_mod.stop, name)
    if left:
        raise click.ClickException(f"would not end: {', '.join(left)}")
    click.echo(f"Slurm is down on {name!r}")
