"""Run one `pimpi bench ...` job under the real launcher (mpirun) and read back its JSON."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from pimpi.bench.schema import read_json

__all__ = ["launch_job"]


def launch_job(ranks: int, kind: str, args: list[str], *, hostfile: str | None = None,
               timeout: float | None = 600) -> dict[str, Any]:
    """`mpirun -n ranks ... pimpi bench KIND ARGS --quiet --json tmp`; the job's result document.

    Adds `wall_seconds` (mpirun start to exit). RuntimeError when the job fails or times out.
    """
    from pimpi.cluster import launch

    with tempfile.TemporaryDirectory(prefix=f"pimpi-{kind}-") as tmp:
        out = str(Path(tmp) / "job.json")
        spec = launch.Launch(nprocs=ranks, hostfile=hostfile, timeout=timeout,
                             target=["bench", kind, *args, "--quiet", "--json", out])
        cmd = launch.mpirun_command(spec)
        start = time.perf_counter()
        code = launch.run_command(cmd, timeout=timeout)
        wall = time.perf_counter() - start
        if code != 0:
            raise RuntimeError(f"bench {kind} on {ranks} ranks failed (exit {code}): {' '.join(cmd)}")
        doc = read_json(out, kind=kind)
    doc["wall_seconds"] = wall
    return doc
