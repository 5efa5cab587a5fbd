"""Every way of using an executor, printed as JSON: run locally and on the cluster, compared."""

import json
import sys

from pimpi.futures import FIRST_COMPLETED, ProcessPoolExecutor, as_completed, wait


def cube(x, y=0):
    return x ** 3 - y


def main():
    with ProcessPoolExecutor() as ex:
        out = {"map": list(ex.map(cube, range(40))),
               "map_chunks": list(ex.map(cube, range(40), range(40), chunksize=7)),
               "submit": ex.submit(cube, 5, y=2).result(),
               "as_completed": sorted(f.result() for f in as_completed([ex.submit(cube, i) for i in range(9)]))}
        futures = [ex.submit(cube, i) for i in range(6)]
        done, _ = wait(futures, return_when=FIRST_COMPLETED)
        out["wait_first"] = len(done) >= 1
        out["resumable"] = list(ex.map(cube, range(30), journal=sys.argv[1], chunksize=4, progress=False))
    print("RESULT " + json.dumps(out))


if __name__ == "__main__":
    main()
