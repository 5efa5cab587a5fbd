"""The monitor's HTTP server: the page, its assets and one JSON state, read-only.

The standard library's threading server is enough here: a handful of viewers polling a
small JSON every two seconds, no dependency to install on an offline cluster, and a
resident size a Pi Zero 2 head can spare. Rules: GET and HEAD only; a token (when set)
on every data request (`/api/...`; the page and its assets are the package's own files);
files served only from the package's assets and as a job's newest image inside that
job's folder.
"""

from __future__ import annotations

import hmac
import json
import socket
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any
from urllib.parse import parse_qs, urlsplit

from pimpi import __version__
from pimpi.monitor.jobs import IMAGE_SUFFIXES, JobFinder
from pimpi.monitor.nodes import NodeWatcher
from pimpi.monitor.slurmq import SlurmQueue

__all__ = ["Monitor", "make_server", "ASSETS"]

ASSETS = {"index.html": "text/html; charset=utf-8", "app.js": "text/javascript; charset=utf-8",
          "style.css": "text/css; charset=utf-8"}
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self'; style-src 'self'; script-src 'self'; "
                               "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


class Monitor:
    """What the server shows: the nodes, the jobs under the folders, Slurm's queue."""

    def __init__(self, finder: JobFinder, watcher: NodeWatcher, token: str = "",
                 slurm: SlurmQueue | None = None) -> None:
        self.finder, self.watcher, self.token = finder, watcher, token
        self.slurm = slurm if slurm is not None else SlurmQueue()
        self.started = time.time()

    def state(self) -> dict[str, Any]:
        return {"version": __version__, "host": socket.gethostname(), "now": time.time(),
                "started": self.started, "folders": [str(r) for r in self.finder.roots],
                **self.watcher.rows(), "jobs": self.finder.jobs(), "slurm": self.slurm.rows()}

    def allowed(self, given: str) -> bool:
        return not self.token or hmac.compare_digest(given.encode(), self.token.encode())


def _asset(name: str) -> bytes:
    return (resources.files("pimpi.monitor") / "assets" / name).read_bytes()


class Handler(BaseHTTPRequestHandler):
    """GET/HEAD of `/`, `/assets/NAME`, `/api/state`, `/api/image?job=ID&name=FILE`."""

    server_version = "pimpi-monitor"
    sys_version = ""
    monitor: Monitor  # set on the class made by make_server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's name
        pass  # a quiet server: a phone polling every 2 s would fill the terminal

    def do_HEAD(self) -> None:  # noqa: N802 - the stdlib's name
        self._route(head=True)

    def do_GET(self) -> None:  # noqa: N802
        self._route(head=False)

    def _refuse(self) -> None:
        self._send(HTTPStatus.METHOD_NOT_ALLOWED, b"read-only\n", "text/plain", head=False,
                   extra={"Allow": "GET, HEAD"})

    do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _refuse  # noqa: N815

    def _send(self, status: HTTPStatus, body: bytes, ctype: str, head: bool,
              extra: dict[str, str] | None = None, cache: bool = False) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "max-age=300" if cache else "no-store")
        for key, value in {**SECURITY_HEADERS, **(extra or {})}.items():
            self.send_header(key, value)
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def _route(self, head: bool) -> None:
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        token = self.headers.get("X-Pimpi-Token") or (query.get("token") or [""])[0]
        if url.path.startswith("/api/") and not self.monitor.allowed(token):  # the page itself holds no data
            self._send(HTTPStatus.FORBIDDEN, b"this monitor needs its token: open the address it printed\n",
                       "text/plain", head)
            return
        path = url.path
        if path in ("/", "/index.html"):
            self._send(HTTPStatus.OK, _asset("index.html"), ASSETS["index.html"], head)
        elif path.startswith("/assets/") and path[len("/assets/"):] in ASSETS:
            name = path[len("/assets/"):]
            self._send(HTTPStatus.OK, _asset(name), ASSETS[name], head, cache=True)
        elif path == "/api/state":
            body = json.dumps(self.monitor.state(), separators=(",", ":"), default=str).encode()
            self._send(HTTPStatus.OK, body, "application/json", head)
        elif path == "/api/image":
            job, name = (query.get("job") or [""])[0], (query.get("name") or [""])[0]
            target = self.monitor.finder.image(job, name)
            if target is None:
                self._send(HTTPStatus.NOT_FOUND, b"no such image\n", "text/plain", head)
                return
            try:
                with open(target, "rb") as fh:
                    body = fh.read(32 << 20)
            except OSError:
                self._send(HTTPStatus.NOT_FOUND, b"no such image\n", "text/plain", head)
                return
            self._send(HTTPStatus.OK, body, IMAGE_SUFFIXES[target.suffix.lower()], head)
        else:
            self._send(HTTPStatus.NOT_FOUND, b"not found\n", "text/plain", head)


def make_server(monitor: Monitor, host: str, port: int) -> ThreadingHTTPServer:
    """Bind (OSError when the address is in use or not this machine's); serve_forever() runs it."""
    handler = type("MonitorHandler", (Handler,), {"monitor": monitor})
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    server_class = type("MonitorServer", (ThreadingHTTPServer,),
                        {"address_family": family, "daemon_threads": True, "allow_reuse_address": True})
    return server_class((host, port), handler)
