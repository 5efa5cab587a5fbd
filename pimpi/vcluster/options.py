"""What `pimpi vcluster` and `pimpi vcluster slurm` share: the --name option, value parsers and error mapping."""

from __future__ import annotations

import re

import click

from pimpi.vcluster.spec import DEFAULT_NAME

__all__ = ["name_option", "parse_duration", "parse_rate", "call", "log"]


def name_option(help: str = "Cluster name (1-6 letters/digits); nodes are NAME1..NAMEn."):  # noqa: A002
    """--name, the cluster every subcommand works on."""
    return click.option("--name", default=DEFAULT_NAME, show_default=True, help=help)


def parse_duration(text: str) -> float:
    """'50ms', '200us', '1.5s' or a bare number of milliseconds -> seconds."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d*)?)\s*(us|ms|s)?\s*", text)
    if not match:
        raise ValueError(f"bad duration {text!r}: use e.g. 50ms, 200us or 1s")
    value = float(match.group(1))
    return value * {"us": 1e-6, "ms": 1e-3, "s": 1.0, None: 1e-3}[match.group(2)]


def parse_rate(text: str) -> float:
    """'10mbit', '1gbit', '500kbit' or a bare number of bits per second -> bits per second."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d*)?)\s*(kbit|mbit|gbit|bit)?\s*", text.lower())
    if not match or float(match.group(1)) <= 0:
        raise ValueError(f"bad rate {text!r}: use e.g. 10mbit, 500kbit or 1gbit")
    return float(match.group(1)) * {"kbit": 1e3, "mbit": 1e6, "gbit": 1e9, "bit": 1.0, None: 1.0}[match.group(2)]


def call(fn, *args, **kwargs):
    """Run a library call: bad input -> exit 2, anything the system refused -> exit 1."""
    from pimpi.vcluster.sysrun import VclusterError

    try:
        return fn(*args, **kwargs)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    except (VclusterError, RuntimeError, OSError) as exc:
        raise click.ClickException(str(exc)) from None


def log(msg: str) -> None:
    """Progress of `up` and `down`, on stderr."""
    click.echo(f"vcluster: {msg}", err=True)
