"""A journaled map whose worker kills itself (SIGKILL) at item KILL_AT while the marker file exists."""

import json
import os
import signal
import sys
import time
from pathlib import Path

from pimpi.futures import ProcessPoolExecutor

KILL_AT = 12


def work(x, folder):
    folder = Path(folder)  # an argument: workers import this file, they do not run it with our argv
    marker = folder / "kill-once"
    if x == KILL_AT and marker.exists():
        marker.unlink()
        os.kill(os.getpid(), signal.SIGKILL)
    with open(folder / "calls", "a") as calls:
        calls.write(f"{x}\n")
    time.sleep(0.05)
    return {"x": x, "square": x * x}


if __name__ == "__main__":
    folder = sys.argv[1]
    with ProcessPoolExecutor() as ex:
        results = list(ex.map(work, range(24), [folder] * 24, journal=Path(folder) / "journal", progress=False))
    print("RESULT " + json.dumps(results))
