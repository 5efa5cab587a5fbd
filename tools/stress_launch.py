"""Launch many tiny 2-rank MPI jobs through pimpi's launch path and count failed starts.

    python tools/stress_launch.py [-n 2000] [--ranks 2] [--log DIR] [--stop-after K]

Not part of `make test`: it shows that Open MPI starts reliably here ("The PMIx server's
listener thread failed to start" used to end about 2 launches in 1000). Each launch runs
`pimpi.cluster.launch.run_command` on `python -c "<allreduce>"` (`--bare`: on `true`), with this process's
stdout and stderr sent to a file per launch, so the job's own lines can be classified:

  ok          exit 0
  recovered   exit 0 after the launch path retried a failed start (its note is in the output)
  failed      any other exit; `start` when mpirun's output says PMIx's listener failed

The output of every launch that was not plain `ok` is kept in --log. Prints one line per
100 launches and a JSON summary at the end; exits 1 when any launch failed.

What made starts fail: an mpirun that was SIGKILLed leaves <tmp>/ompi.<pid>/pmix.<host>.tool,
and the next mpirun given that pid cannot create it. `--stale-every K` leaves such files for
every K-th pid first (as a long test run with killed jobs does), in $TMPDIR; run it in a new
pid namespace so the tool's own pids start at 1 and wrap through them:

    TMPDIR=$(mktemp -d) unshare --pid --fork --mount-proc python tools/stress_launch.py --stale-every 8
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import socket
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterator

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout

from pimpi.cluster import launch  # noqa: E402

BODY = "from mpi4py import MPI; c = MPI.COMM_WORLD; assert c.allreduce(1) == c.size"
LISTENER = "listener thread failed to start"
RETRIED = "retrying once"  # the launch path's note when it starts a failed launch again


@contextlib.contextmanager
def _captured(path: Path) -> Iterator[None]:
    """Send this process's fd 1 and 2 (so mpirun's too) to `path` for the block."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    with open(path, "wb") as out:
        os.dup2(out.fileno(), 1)
        os.dup2(out.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)


def _leave_stale_files(every: int) -> None:
    """What a SIGKILLed mpirun leaves behind, for every `every`-th pid up to pid_max."""
    tmp = tempfile.gettempdir()
    pid_max = min(int(Path("/proc/sys/kernel/pid_max").read_text()), 65536)  # pids past that: never reached
    for pid in range(every, pid_max, every):
        folder = Path(tmp) / f"ompi.{pid}"
        folder.mkdir(exist_ok=True)
        (folder / f"pmix.{socket.gethostname()}.tool").touch()
    print(f"left stale PMIx files for every {every}th pid in {tmp}", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--launches", type=int, default=2000)
    parser.add_argument("--ranks", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=120, help="seconds per job")
    parser.add_argument("--log", default=None, help="folder for the output of launches that were not ok")
    parser.add_argument("--stop-after", type=int, default=0, help="stop after this many failed starts (0: never)")
    parser.add_argument("--bare", action="store_true",
                        help="ranks run `true`: ten times as many launches per minute, same mpirun start")
    parser.add_argument("--stale-every", type=int, default=0,
                        help="first leave a killed mpirun's PMIx files in $TMPDIR for every K-th pid")
    args = parser.parse_args()
    if args.stale_every:
        _leave_stale_files(args.stale_every)
    log = Path(args.log or tempfile.mkdtemp(prefix="stress-launch-"))
    log.mkdir(parents=True, exist_ok=True)
    cmd = launch.mpirun_command(launch.Launch(nprocs=args.ranks, target=["python", "-c", BODY]))
    if args.bare:  # mpirun's own start (where PMIx failed) without each rank's Python and MPI_Init
        cmd = cmd[:cmd.index(sys.executable)] + ["true"]
    counts = {"ok": 0, "recovered": 0, "failed": 0, "failed_start": 0}
    first_failure: int | None = None
    began = time.monotonic()
    scratch = log / "current.txt"
    for i in range(1, args.launches + 1):
        with _captured(scratch):
            code = launch.run_command(cmd, timeout=args.timeout, label="stress")
        text = scratch.read_text(errors="replace")
        if code == 0 and RETRIED not in text:
            counts["ok"] += 1
        else:
            kind = "recovered" if code == 0 else "failed"
            counts[kind] += 1
            if code != 0 and LISTENER in text:
                counts["failed_start"] += 1
            if code != 0 and first_failure is None:
                first_failure = i
            (log / f"{i:05d}-{kind}-exit{code}.txt").write_text(text)
            print(f"launch {i}: {kind} (exit {code}): {text.strip().splitlines()[-1] if text.strip() else ''}",
                  flush=True)
        if i % 100 == 0:
            print(f"{i} launches in {time.monotonic() - began:.0f} s: {counts}", flush=True)
        if args.stop_after and counts["failed_start"] >= args.stop_after:
            break
    scratch.unlink(missing_ok=True)
    summary = {"launches": i, "ranks": args.ranks, **counts, "first_failure_at": first_failure,
               "seconds": round(time.monotonic() - began), "log": str(log), "command": cmd}
    print(json.dumps(summary))
    return 1 if counts["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
