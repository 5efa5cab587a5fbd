"""Facts about this machine (host, addresses, CPU, Pi model, heat, versions) as a JSON-ready dict."""

from __future__ import annotations

import glob
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import threading
from typing import Any, Callable, TypeVar

from pimpi.buildhash import build_hash

__all__ = ["SAME_EVERYWHERE", "local_facts", "lookup", "interface_addresses", "decode_throttled", "THROTTLE_FLAGS",
           "recorded_thermal", "THERMAL_LOG", "mem_available"]

T = TypeVar("T")

# Facts that must be the same on every rank, and how problems name them.
SAME_EVERYWHERE = {
    "python": "Python version",
    "numpy": "numpy version",
    "mpi4py": "mpi4py version",
    "pimpi": "pimpi version",
    "pimpi_build": "pimpi build",
    "mpi_library": "MPI library",
}

# Bits of `vcgencmd get_throttled` (Raspberry Pi firmware documentation).
THROTTLE_FLAGS = {
    0: "under-voltage",
    1: "arm-frequency-capped",
    2: "throttled",
    3: "soft-temperature-limit",
    16: "under-voltage-occurred",
    17: "arm-frequency-capped-occurred",
    18: "throttled-occurred",
    19: "soft-temperature-limit-occurred",
}


def local_facts(*, mpi: bool | None = None) -> dict[str, Any]:
    """Everything worth knowing about this process's machine; unreadable items are None.

    `mpi`: include `MPI.Get_library_version()`: True asks for it (starting MPI if
    needed), None includes it only when MPI is already initialized, False never.
    Fast (a few ms: one `ip -j addr`, `vcgencmd` on a Pi) and JSON-serialisable.
    """
    hostname = _safe(socket.gethostname)
    cwd = _safe(os.getcwd)
    meminfo = _safe(_meminfo) or {}
    versions = _versions()
    return {
        "hostname": hostname,
        "fqdn": _safe(lambda: _fqdn(hostname)),
        "addresses": _safe(interface_addresses),
        "machine": _safe(platform.machine) or None,
        "kernel": _safe(platform.release) or None,
        "os": _safe(_os_release),
        "cpus": _safe(os.cpu_count),
        "cpus_usable": _safe(lambda: len(os.sched_getaffinity(0))),
        "cpu_model": _safe(_cpu_model),
        "pi_model": _safe(lambda: _read("/proc/device-tree/model").rstrip("\x00").strip() or None),
        "mem_total": meminfo.get("MemTotal"),
        "mem_free": meminfo.get("MemFree"),
        "mem_available": meminfo.get("MemAvailable"),
        "temp_c": _safe(_temperature),
        "throttled": _safe(_throttled),
        "thermal_log": _safe(recorded_thermal),
        "governor": _safe(lambda: _read("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor").strip()),
        "loadavg": _safe(lambda: [round(x, 2) for x in os.getloadavg()]),
        **versions,
        "mpi_library": _safe(lambda: _mpi_library(mpi)),
        "executable": sys.executable,
        "cwd": cwd,
        "cwd_exists": bool(cwd) and os.path.isdir(cwd),
    }


def lookup(host: str, timeout: float = 3.0) -> list[str]:
    """Addresses `host` resolves to here, IPv4 first; OSError if it does not (or takes too long)."""
    infos = _timed(lambda: socket.getaddrinfo(host, None, type=socket.SOCK_STREAM), timeout)
    if infos is None:
        raise OSError(f"lookup of {host!r} took more than {timeout:g} s")
    v4 = [i[4][0] for i in infos if i[0] == socket.AF_INET]
    v6 = [i[4][0] for i in infos if i[0] == socket.AF_INET6]
    return list(dict.fromkeys(v4 + v6))


def decode_throttled(value: int) -> dict[str, Any]:
    """`vcgencmd get_throttled` bits as names; `now` is true when a current-state bit is set."""
    flags = [name for bit, name in THROTTLE_FLAGS.items() if value & (1 << bit)]
    return {"raw": hex(value), "flags": flags, "now": bool(value & 0xF)}


def _safe(fn: Callable[[], T]) -> T | None:
    """fn(), or None when it fails in any way: a fact we cannot read is unknown, not an error."""
    try:
        return fn()
    except Exception:  # noqa: BLE001 - by design: every fact is optional
        return None


def _timed(fn: Callable[[], T], timeout: float) -> T | None:
    """fn() in a daemon thread; None if it has not finished after `timeout` (a stuck DNS)."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            box["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(timeout)
    if "error" in box:
        raise box["error"]
    return box.get("value")


def _read(path: str) -> str:
    with open(path, encoding="utf-8", errors="replace") as f:
        return f.read()


def _fqdn(hostname: str | None) -> str | None:
    """The canonical name of this host; bounded in time, unlike socket.getfqdn()."""
    if not hostname:
        return None
    infos = _timed(lambda: socket.getaddrinfo(hostname, None, flags=socket.AI_CANONNAME), 0.5)
    names = [i[3] for i in infos or () if i[3]]
    return names[0] if names else hostname


def interface_addresses() -> dict[str, list[str]]:
    """IPv4 addresses per interface, loopback left out: `ip -j addr`, else ioctl per interface."""
    ip = shutil.which("ip")
    if ip:
        try:
            out = subprocess.run([ip, "-j", "-4", "addr"], capture_output=True, text=True,
                                 timeout=2, check=True).stdout
            return _parse_ip_json(out)
        except (OSError, subprocess.SubprocessError, ValueError):
            pass
    return _addresses_ioctl()


def _parse_ip_json(text: str) -> dict[str, list[str]]:
    result: dict[str, list[str]] = {}
    for link in json.loads(text):
        if "LOOPBACK" in link.get("flags", ()):
            continue
        addrs = [a["local"] for a in link.get("addr_info", ()) if a.get("family") == "inet"]
        if addrs:
            result[link["ifname"]] = addrs
    return result


def _addresses_ioctl() -> dict[str, list[str]]:
    """Fallback without iproute2: SIOCGIFADDR gives one IPv4 address per interface (Linux)."""
    import fcntl
    import struct

    result: dict[str, list[str]] = {}
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for _, name in socket.if_nameindex():
            try:
                packed = fcntl.ioctl(sock.fileno(), 0x8915, struct.pack("256s", name[:15].encode()))
            except OSError:  # no IPv4 address on this interface
                continue
            address = socket.inet_ntoa(packed[20:24])
            if not address.startswith("127."):
                result[name] = [address]
    return result


def _os_release() -> str | None:
    for line in _read("/etc/os-release").splitlines():
        if line.startswith("PRETTY_NAME="):
            return line.split("=", 1)[1].strip().strip('"')
    return None


def _cpu_model() -> str | None:
    """x86 'model name'; on a Pi (arm64) the 'Model' line, else 'Hardware'."""
    fields: dict[str, str] = {}
    for line in _read("/proc/cpuinfo").splitlines():
        key, sep, value = line.partition(":")
        key = key.strip()
        if sep and key not in fields and value.strip():
            fields[key] = value.strip()
    for key in ("model name", "Model", "Hardware", "cpu model", "Processor"):
        if key in fields:
            return fields[key]
    return None


def mem_available() -> int | None:
    """Bytes this node can still give to new work (MemAvailable), None when unknown."""
    try:
        return _meminfo().get("MemAvailable")
    except OSError:
        return None


def _meminfo() -> dict[str, int]:
    """/proc/meminfo in bytes."""
    result = {}
    for line in _read("/proc/meminfo").splitlines():
        key, _, rest = line.partition(":")
        parts = rest.split()
        if parts and parts[0].isdigit():
            scale = 1024 if parts[-1:] == ["kB"] else 1
            result[key] = int(parts[0]) * scale
    return result


def _temperature() -> float | None:
    """The hottest thermal zone in degrees Celsius (the SoC on a Pi)."""
    temps = []
    for path in glob.glob("/sys/class/thermal/thermal_zone*/temp"):
        value = _safe(lambda p=path: int(_read(p).strip()))
        if value is not None:
            temps.append(value / 1000.0)
    return round(max(temps), 1) if temps else None


THERMAL_LOG = "/var/lib/pimpi/thermal.log"  # written by Ansible role thermal's timer


def recorded_thermal(path: str = THERMAL_LOG) -> dict[str, Any] | None:
    """The thermal recorder's history: samples, hours covered, hottest °C, samples throttled now.

    Each line is "epoch temp_c throttled" ('-' when unknown); None without the file. Cheap:
    the file holds at most a few thousand short lines."""
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            lines = handle.read().splitlines()
    except FileNotFoundError:
        return None
    times, temps, throttled = [], [], 0
    for line in lines:
        parts = line.split()
        if len(parts) != 3 or not parts[0].isdigit():
            continue
        times.append(int(parts[0]))
        try:
            temps.append(float(parts[1]))
        except ValueError:
            pass
        try:
            throttled += bool(decode_throttled(int(parts[2], 16))["now"])
        except ValueError:
            pass
    if not times:
        return None
    return {"samples": len(times), "hours": round((max(times) - min(times)) / 3600, 1),
            "max_c": max(temps) if temps else None, "throttled_samples": throttled, "last": max(times)}


def _throttled() -> dict[str, Any] | None:
    """`vcgencmd get_throttled` decoded, or None off a Pi."""
    vcgencmd = shutil.which("vcgencmd")
    if not vcgencmd:
        return None
    out = subprocess.run([vcgencmd, "get_throttled"], capture_output=True, text=True,
                         timeout=2, check=True).stdout
    return decode_throttled(int(out.strip().split("=", 1)[1], 16))


def _versions() -> dict[str, str | None]:
    """Python, numpy, mpi4py and pimpi versions; packages not yet imported are read from metadata."""
    from importlib import metadata

    def version(name: str) -> str | None:
        module = sys.modules.get(name)
        if module is not None and getattr(module, "__version__", None):
            return str(module.__version__)
        return _safe(lambda: metadata.version(name))

    return {
        "python": platform.python_version(),
        "numpy": version("numpy"),
        "mpi4py": version("mpi4py"),
        "pimpi": version("pimpi"),
        "pimpi_build": _safe(build_hash),  # differs when the source changed without a new version
    }


def _mpi_library(mpi: bool | None) -> str | None:
    """First line of MPI_Get_library_version, if MPI is running (or `mpi` is True)."""
    if mpi is False:
        return None
    if mpi is None:
        module = sys.modules.get("mpi4py.MPI")
        if module is None or not module.Is_initialized() or module.Is_finalized():
            return None
    from pimpi.mpi import library_version

    return library_version()
