"""Which hosts the workers run on (each task pauses so every worker gets some)."""

import json
import socket
import time

from pimpi.futures import ProcessPoolExecutor


def where(_):
    time.sleep(0.05)
    return socket.gethostname()


if __name__ == "__main__":
    with ProcessPoolExecutor() as ex:
        print("RESULT " + json.dumps(sorted(set(ex.map(where, range(40))))))
