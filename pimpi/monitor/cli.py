"""`pimpi monitor`: serve the cluster's page until stopped; never joins an MPI job."""

from __future__ import annotations

import errno
import ipaddress
import secrets
import sys
from pathlib import Path

import click

from pimpi.cliutil import Int, Seconds

__all__ = ["monitor"]

SHARED = Path("/srv/pimpi")  # the cluster's shared path as ansible/ sets it up


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _hosts(hostfile: str | None, folders: list[Path]) -> list[str]:
    from pimpi.cluster.hostfile import read_hostfile

    path = Path(hostfile) if hostfile else next((f / "hostfile" for f in folders if (f / "hostfile").is_file()), None)
    if path is None:
        return ["localhost"]
    try:
        return [entry.host for entry in read_hostfile(path)]
    except (OSError, ValueError) as exc:
        raise click.BadParameter(str(exc), param_hint="--hostfile") from None


@click.command()
@click.argument("folders", nargs=-1, type=click.Path(exists=True, file_okay=False, dir_okay=True))
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to serve on; any other than loopback requires the printed token.")
@click.option("--port", type=Int(1, 65535), default=8000, show_default=True, help="TCP port.")
@click.option("--hostfile", type=click.Path(exists=True, dir_okay=False), default=None,
              help="The nodes' rows (default: FOLDER/hostfile when there, else this machine only).")
@click.option("--interval", type=Seconds(hi=3600, lo=1), default=15, show_default=True,
              help="Seconds between asking the nodes.")
@click.option("--token", default=None, help="Token to require (default: a new random one off loopback).")
def monitor(folders, host, port, hostfile, interval, token) -> None:
    """A live page of the nodes and of the jobs under FOLDERS (default: the cluster's
    shared path /srv/pimpi when it exists, else the current folder), in the browser.

    Read-only and apart from every job: starting or stopping it changes nothing for them.

        pimpi monitor /srv/pimpi                       # http://127.0.0.1:8000/
        pimpi monitor --host 0.0.0.0 --port 8080 .     # on the LAN, with a token
    """
    from pimpi import procs
    from pimpi.monitor.jobs import JobFinder
    from pimpi.monitor.nodes import NodeWatcher
    from pimpi.monitor.server import Monitor, make_server

    roots = [Path(f) for f in folders] or [SHARED if SHARED.is_dir() else Path(".")]
    hosts = _hosts(hostfile, roots)
    if token is not None and not token.strip():
        raise click.BadParameter("the token may not be empty", param_hint="--token")
    if token is None:
        token = "" if _loopback(host) else secrets.token_urlsafe(16)
    watcher = NodeWatcher(hosts, interval=interval)
    service = Monitor(JobFinder(roots), watcher, token=token)
    try:
        server = make_server(service, host, port)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise click.BadParameter(f"port {port} on {host} is in use (choose another)", param_hint="--port") from None
        raise click.BadParameter(f"cannot serve on {host}:{port}: {exc.strerror or exc}", param_hint="--host") from None
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{server.server_address[1]}/" + (f"?token={token}" if token else "")
    click.echo(f"pimpi monitor: {url}  ({len(hosts)} node{'s' * (len(hosts) != 1)}, "
               f"jobs under {', '.join(str(r) for r in roots)}; Ctrl-C ends it)", err=False)
    sys.stdout.flush()
    watcher.start()
    with procs.stopping():
        try:
            server.serve_forever(poll_interval=0.5)
        except KeyboardInterrupt:
            pass
        finally:
            watcher.stop()
            server.server_close()
