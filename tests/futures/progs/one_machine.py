"""An example left with the one-machine import: under -m pimpi.futures all its work runs on rank 0."""

import json
from concurrent.futures import ProcessPoolExecutor


def square(x):
    return x * x


if __name__ == "__main__":
    with ProcessPoolExecutor(max_workers=2) as ex:
        print("RESULT " + json.dumps(sum(ex.map(square, range(10)))))
