"""`pimpi run` inside a Slurm allocation: which launcher, and the srun command line."""

from __future__ import annotations

import shutil

from pimpi.cluster.launch import Launch, python_target
from pimpi.cluster.slurm.allocation import Allocation

__all__ = ["LAUNCHERS", "choose_launcher", "srun_command", "SRUN_ENV"]

LAUNCHERS = ("auto", "mpirun", "srun")

# The pip Open MPI's PMIx and Debian's libpmix2 must agree on security and data store.
SRUN_ENV = {"PMIX_MCA_psec": "native", "PMIX_MCA_gds": "hash"}


def choose_launcher(requested: str, allocation: Allocation | None) -> str:
    """'mpirun' or 'srun'. `auto` is always mpirun: inside an allocation the wheel's PRRTE
    reads the nodes from Slurm and starts its daemons with srun, and aborts, --timeout and
    output behave as outside Slurm. `srun` (srun --mpi=pmix) needs an allocation."""
    if requested not in LAUNCHERS:
        raise ValueError(f"--launcher must be one of {', '.join(LAUNCHERS)}, got {requested!r}")
    if requested == "srun":
        if allocation is None:
            raise ValueError("--launcher srun needs a Slurm allocation (run it in sbatch or salloc)")
        if shutil.which("srun") is None:
            raise ValueError("--launcher srun: no srun on PATH")
    return "srun" if requested == "srun" else "mpirun"


def srun_command(launch: Launch, allocation: Allocation) -> list[str]:
    """srun --mpi=pmix over the allocation's nodes; -n from the request or the allocation."""
    if launch.hostfile:
        raise ValueError(f"--hostfile {launch.hostfile!r} inside a Slurm job: the allocation's nodes are used")
    if launch.nprocs is not None and launch.nprocs < 1:
        raise ValueError(f"-n must be at least 1, got {launch.nprocs}")
    ntasks = launch.nprocs if launch.nprocs is not None else allocation.ntasks
    cmd = ["srun", "--mpi=pmix", "--kill-on-bad-exit=1"]
    if ntasks is not None:
        cmd += ["-n", str(ntasks)]
    return cmd + launch.extra + python_target(launch.target)
