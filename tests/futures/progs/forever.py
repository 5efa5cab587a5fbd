"""Tasks that never end on their own: only a timeout or a signal stops this job."""

import time

from pimpi.futures import ProcessPoolExecutor


def nap(x):
    time.sleep(3600)
    return x


if __name__ == "__main__":
    with ProcessPoolExecutor() as ex:
        print("STARTED", flush=True)
        list(ex.map(nap, range(8)))
