"""Submits work and never shuts its executor down (nor waits for the futures)."""

from pimpi.futures import ProcessPoolExecutor


def slow(x):
    import time
    time.sleep(0.2)
    return x


ex = ProcessPoolExecutor()
futures = [ex.submit(slow, i) for i in range(6)]
print("SUBMITTED", flush=True)
