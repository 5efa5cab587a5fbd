"""How MPI reaches the nodes: the environment mpirun needs, and (light mode) an ssh stand-in
that enters a node's namespaces instead of connecting over SSH."""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path

from pimpi.vcluster import state
from pimpi.vcluster.spec import Spec
from pimpi.fileio import atomic_write

__all__ = ["node_env", "mpi_env", "agent_script", "write_agent", "hostfile_text", "env_text", "python_bin_dir"]


def node_env(spec: Spec) -> dict[str, str]:
    """The environment for mpirun on this cluster (light mode: with the nsenter agent)."""
    return mpi_env(spec, None if spec.ssh else state.files(spec.name)["agent"])


def mpi_env(spec: Spec, agent: Path | None) -> dict[str, str]:
    """What a plain `mpirun --hostfile FILE` needs on this cluster: TCP only, pinned to the
    cluster subnet (MPI and Open MPI's runtime), and the launch agent in light mode."""
    env = {
        "OMPI_MCA_btl": "tcp,self",
        "OMPI_MCA_btl_tcp_if_include": spec.subnet,
        "OMPI_MCA_oob_tcp_if_include": spec.subnet,
        "PRTE_MCA_oob_tcp_if_include": spec.subnet,
        "PMIX_MCA_ptl_tcp_if_include": spec.subnet,
        "OMPI_MCA_mpi_yield_when_idle": "1",
        # every node sees the whole machine: binding would pin each node's rank 0 to core 0
        "PRTE_MCA_hwloc_default_binding_policy": "none",
    }
    if agent is not None:
        env["PRTE_MCA_plm_ssh_agent"] = str(agent)
    if os.geteuid() == 0:
        env["OMPI_ALLOW_RUN_AS_ROOT"] = "1"
        env["OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"] = "1"
    return env


def env_text(env: dict[str, str]) -> str:
    """`export K=V` lines for `eval "$(pimpi vcluster env)"`."""
    return "".join(f"export {k}={shlex.quote(v)}\n" for k, v in sorted(env.items()))


def hostfile_text(spec: Spec) -> str:
    """Open MPI hostfile: one node per line with its slots."""
    return "".join(f"{n.hostname} slots={spec.slots}\n" for n in spec.node_list())


def agent_script(spec: Spec, holders: dict[str, int]) -> str:
    """A POSIX sh script called like ssh (`agent [-opts] HOST COMMAND...`) that runs COMMAND
    inside HOST's namespaces. HOLDERS maps hostname -> holder pid."""
    cases = []
    for node in spec.node_list():
        pid = holders[node.hostname]
        cases.append(f"  {node.hostname}|node{node.index}|{node.address}) pid={pid} ;;")
    return "\n".join([
        "#!/bin/sh",
        f"# pimpi vcluster {spec.name}: Open MPI's plm_ssh_agent. Instead of ssh it enters the",
        "# target node's network, hostname and mount namespaces and runs the command there.",
        "while [ $# -gt 0 ]; do",
        '  case "$1" in',
        "    -o|-p|-l|-i|-F|-E|-J) shift 2 ;;",
        "    -*) shift ;;",
        "    *) break ;;",
        "  esac",
        "done",
        'host="${1#*@}"; shift',
        'case "$host" in',
        *cases,
        f'  *) echo "pimpi vcluster agent: no node $host in cluster {spec.name}" >&2; exit 255 ;;',
        "esac",
        'exec nsenter -t "$pid" --net --uts --mount -- /bin/sh -c "$*"',
        "",
    ])


def write_agent(path: Path, text: str) -> None:
    atomic_write(path, text, 0o755)


def python_bin_dir() -> str:
    """The folder of this Python (the venv's bin: pimpi, mpirun, prted)."""
    return os.path.dirname(sys.executable)
