"""Items 7 and 8 always raise: a resumable map reports them; a plain map aborts the job."""

import sys

from pimpi.futures import MapError, ProcessPoolExecutor


def picky(x):
    if x in (7, 8):
        raise ValueError(f"cannot take {x}")
    return x + 1


if __name__ == "__main__":
    ex = ProcessPoolExecutor()
    if sys.argv[1] == "plain":
        print(list(ex.map(picky, range(12))))
    try:
        list(ex.map(picky, range(12), retries=2, progress=False))
    except MapError as exc:
        print(f"FAILED {[f.index for f in exc.failures]} {[len(f.workers) for f in exc.failures]}")
        print(exc)
