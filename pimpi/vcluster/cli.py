"""`pimpi vcluster`: create, inspect and break a virtual cluster of namespace hosts."""

from __future__ import annotations

import json
import os
import sys

import click

from pimpi.cliutil import Bounded, Int, Seconds
from pimpi.cluster.profiles import PROFILES
from pimpi.vcluster.options import call, log, name_option, parse_duration, parse_rate
from pimpi.vcluster.spec import DEFAULT_NAME, DEFAULT_SUBNET, MAX_NODES, SUDO, SUITES

MAX_SLOTS = 256  # MPI slots a virtual node offers in its hostfile

__all__ = ["vcluster", "parse_duration", "parse_rate"]

_name_option = name_option()


@click.group()
def vcluster() -> None:
    """A virtual cluster of network-namespace hosts on this machine (needs root).

    \b
    pimpi vcluster up --nodes 4 --profile pi4
    pimpi vcluster hostfile > hostfile
    pimpi vcluster exec node1 -- pimpi run --hostfile hostfile -- doctor
    pimpi vcluster down
    """


@vcluster.command()
@click.option("--nodes", "nodes", type=Int(1, MAX_NODES), required=True, help="How many nodes.")
@click.option("--profile", type=click.Choice(list(PROFILES)), default="lan", show_default=True,
              help="Shape every link like this board's Ethernet (lan: unshaped).")
@click.option("--rootfs", is_flag=True, help="Give each node its own Debian root and sshd (real SSH).")
@click.option("--vm", is_flag=True, help="Boot each node as a virtual machine with its own kernel (QEMU).")
@click.option("--arch", default="amd64", show_default=True,
              help="VM nodes' architecture: amd64, arm64, or one per node (amd64,amd64,arm64).")
@click.option("--imager", is_flag=True,
              help="VM nodes: first boot as Raspberry Pi Imager sets up Raspberry Pi OS: a named user with "
                   "a key (sudo: see --sudo), avahi, cloud-init's stock /etc/hosts, a fake vcgencmd and "
                   "board model; for testing provisioning.")
@click.option("--suite", type=click.Choice(list(SUITES)), default=None,
              help="VM nodes' Debian release (default: trixie with --imager, like Raspberry Pi OS Trixie; "
                   "else this machine's).")
@click.option("--sudo", type=click.Choice(list(SUDO)), default=None,
              help="--imager: the user's sudo asks for a password (Imager's default) or not (its "
                   "'passwordless sudo' box).")
@click.option("--subnet", default=DEFAULT_SUBNET, show_default=True, help="Private IPv4 subnet of the cluster.")
@click.option("--nat", is_flag=True, help="Let nodes reach outside through this machine (off: no route out).")
@click.option("--slots", type=Int(1, MAX_SLOTS), default=1, show_default=True, help="MPI slots per node in the hostfile.")
@_name_option
def up(nodes, profile, rootfs, vm, arch, imager, suite, sudo, subnet, nat, slots, name) -> None:
    """Create NAME1..NAMEn, each with its own network, address and hostname."""
    from pimpi.vcluster import cluster
    from pimpi.vcluster.spec import make_spec

    spec = call(make_spec, name=name, nodes=nodes, subnet=subnet, profile=profile, rootfs=rootfs,
                 nat=nat, slots=slots, kind="vm" if vm else "netns", arch=arch, imager=imager,
                 suite=suite or "", sudo=sudo or "")
    call(cluster.up, spec, log)
    from pimpi.vcluster.cluster import files

    named = "" if name == DEFAULT_NAME else f" --name {name}"
    click.echo(f"virtual cluster {name!r} is up: {', '.join(n.hostname for n in spec.node_list())} "
               f"on {spec.subnet} (this machine is {spec.head_name} at {spec.head_address})")
    click.echo(f"  pimpi vcluster exec{named} node1 -- pimpi run --hostfile {files(name)['hostfile']} -- doctor")
    click.echo(f"  pimpi vcluster down{named}")


@vcluster.command()
@_name_option
def down(name) -> None:
    """Remove everything `up` created (safe to run twice)."""
    from pimpi.vcluster import cluster

    if call(cluster.down, name, log):
        click.echo(f"virtual cluster {name!r} is down")
    else:
        click.echo(f"no virtual cluster named {name!r}: nothing to do")


@vcluster.command()
@_name_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def status(name, as_json) -> None:
    """Nodes, addresses, links, processes and injected faults."""
    from pimpi.vcluster import cluster
    from pimpi.vcluster.backends import for_kind

    info = call(cluster.status, name)
    if as_json:
        click.echo(json.dumps(info, indent=2))
        return
    spec = info["spec"]
    backend = for_kind(spec.get("kind", "netns"))
    click.echo(f"{info['name']}: {info['status']}, {spec['nodes']} nodes on {spec['subnet']}, "
               f"profile {spec['profile']}{', rootfs' if spec['rootfs'] else ''}"
               f"{backend.words(info)}"
               f"{', nat' if spec['nat'] else ''}{'' if info['latency_shaped'] else ' (no netem: rate only)'}"
               f"; state in {info['state_dir']}")
    for row in info["nodes"]:
        click.echo(backend.row_text(row))


@vcluster.command()
@_name_option
def hostfile(name) -> None:
    """Print the cluster's hostfile (for `pimpi run --hostfile` / `mpirun --hostfile`)."""
    from pimpi.vcluster import agent, cluster

    click.echo(agent.hostfile_text(call(cluster.load_spec, name)), nl=False)


@vcluster.command()
@_name_option
def env(name) -> None:
    """Print what a plain `mpirun --hostfile` needs: eval "$(pimpi vcluster env)"."""
    from pimpi.vcluster import agent, cluster

    click.echo(agent.env_text(cluster.node_env(call(cluster.load_spec, name))), nl=False)


@vcluster.command()
@_name_option
def inventory(name) -> None:
    """Print an Ansible inventory (JSON, valid YAML) of --rootfs nodes reached over SSH."""
    from pimpi.vcluster import cluster

    spec = call(cluster.load_spec, name)
    if not spec.ssh:
        raise click.ClickException(f"cluster {name!r} has no SSH: bring it up with --rootfs or --vm")
    click.echo(json.dumps(cluster.inventory(spec), indent=2))


@vcluster.command("exec", context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@_name_option
@click.argument("node")
@click.argument("command", nargs=-1, type=click.UNPROCESSED, required=True)
def exec_(name, node, command) -> None:
    """Run COMMAND inside NODE (name, nodeI or I), with the cluster's MPI environment."""
    from pimpi.vcluster import cluster

    argv, environ = call(cluster.exec_argv, name, node, list(command))
    sys.stdout.flush()
    try:
        os.execvpe(argv[0], argv, environ)
    except OSError as exc:
        raise click.ClickException(f"cannot run {argv[0]}: {exc}") from None


@vcluster.command()
@_name_option
@click.argument("node")
def cut(name, node) -> None:
    """Pull NODE's network cable (its link goes down)."""
    from pimpi.vcluster import cluster

    click.echo(f"{call(cluster.cut, name, node)}: link down")


@vcluster.command()
@_name_option
@click.argument("node")
def heal(name, node) -> None:
    """Plug NODE's cable back in and undo `slow`."""
    from pimpi.vcluster import cluster

    click.echo(f"{call(cluster.heal, name, node)}: link up")


@vcluster.command()
@_name_option
@click.argument("node")
@click.option("--delay", type=Bounded(0, 60, parse_duration, "duration"), default=None, help="Extra delay each way, e.g. 50ms (needs the kernel's netem).")
@click.option("--rate", type=Bounded(1e3, 1e11, parse_rate, "rate"), default=None, help="Link rate, e.g. 10mbit, 100mbit, 1gbit.")
def slow(name, node, delay, rate) -> None:
    """Make NODE's link slower: more delay each way and/or a lower rate (`heal` undoes it)."""
    from pimpi.vcluster import cluster

    seconds, bps = delay, rate  # parsed and bounded by their option types
    host = call(cluster.slow, name, node, seconds, bps)
    parts = ([f"+{seconds * 1e3:g} ms each way"] if seconds is not None else []) + \
            ([f"{bps / 1e6:g} Mbit/s"] if bps is not None else [])
    click.echo(f"{host}: {', '.join(parts)}")


@vcluster.command("kill")
@_name_option
@click.argument("node")
def kill_(name, node) -> None:
    """End every process running in NODE (the node itself stays up)."""
    from pimpi.vcluster import cluster

    host, count = call(cluster.kill, name, node)
    click.echo(f"{host}: ended {count} processes")


@vcluster.command()
@_name_option
@click.argument("node")
def reboot(name, node) -> None:
    """Reboot VM node NODE cleanly and wait until it answers over SSH again."""
    from pimpi.vcluster.backends.vm import power

    host, seconds = call(power.reboot, name, node)
    click.echo(f"{host}: back after {seconds:.0f} s")


@vcluster.command("power-cut")
@_name_option
@click.argument("node")
@click.option("--back-after", type=Seconds(86400), default=None, metavar="SECONDS",
              help="The power returns by itself after SECONDS: the node boots with nothing else running.")
def power_cut(name, node, back_after) -> None:
    """Pull VM node NODE's power: the machine stops at once; its disk keeps what was written."""
    from pimpi.vcluster.backends.vm import power

    host = call(power.power_cut, name, node, back_after)
    then = (f"it powers on by itself in {back_after:g} s" if back_after is not None
            else "pimpi vcluster boot to start it")
    click.echo(f"{host}: power off ({then})")


@vcluster.command()
@_name_option
@click.argument("node")
def boot(name, node) -> None:
    """Power VM node NODE on again and wait until it answers over SSH; a namespace node
    restarts: its processes end, its daemons (sshd, slurmd) start again."""
    from pimpi.vcluster import cluster

    host, seconds = call(cluster.boot, name, node)
    click.echo(f"{host}: up after {seconds:.0f} s")


from pimpi.vcluster.slurm_cli import slurm as _slurm  # noqa: E402 - a subgroup in its own module

vcluster.add_command(_slurm)
