"""A journaled map of 400 items of 0.1 s each: long enough to lose a node in the middle."""

import json
import socket
import sys
import time
from pathlib import Path

from pimpi.futures import ProcessPoolExecutor


def work(x, folder):
    with open(Path(folder) / f"started-{socket.gethostname()}", "a") as mark:
        mark.write(f"{x}\n")
    time.sleep(0.1)
    return x * x


if __name__ == "__main__":
    folder = sys.argv[1]
    with ProcessPoolExecutor() as ex:
        results = list(ex.map(work, range(400), [folder] * 400, journal=Path(folder) / "journal", progress=False))
    print("RESULT " + json.dumps(sum(results)))
