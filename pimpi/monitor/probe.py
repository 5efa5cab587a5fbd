"""What one node says of itself for the monitor: `python -m pimpi.monitor.probe` prints one JSON line."""

from __future__ import annotations

import json
import sys
import time
from typing import Any

from pimpi.cluster.facts import THERMAL_LOG, local_facts

__all__ = ["probe", "thermal_series"]

KEEP = ("hostname", "pi_model", "cpu_model", "machine", "os", "cpus", "mem_total", "mem_available",
        "temp_c", "throttled", "thermal_log", "governor", "loadavg", "pimpi", "pimpi_build",
        "mpi4py", "numpy", "python", "executable")


def thermal_series(path: str = THERMAL_LOG, hours: float = 6.0, points: int = 120) -> list[list[float]]:
    """[[epoch, °C], ...] of the thermal recorder's last `hours`, at most `points` of them
    (the hottest sample of each slice, so a short peak is not averaged away)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            lines = handle.read().splitlines()[-2000:]
    except OSError:
        return []
    since = time.time() - hours * 3600
    samples = []
    for line in lines:
        parts = line.split()
        if len(parts) != 3 or not parts[0].isdigit():
            continue
        try:
            when, temp = int(parts[0]), float(parts[1])
        except ValueError:
            continue
        if when >= since:
            samples.append([when, temp])
    if len(samples) <= points:
        return samples
    step = len(samples) / points
    return [max(samples[int(i * step): int((i + 1) * step)], key=lambda s: s[1]) for i in range(points)]


def probe() -> dict[str, Any]:
    """This machine's facts that the page shows, with the temperature history."""
    facts = local_facts(mpi=False)
    record = {key: facts.get(key) for key in KEEP}
    record["thermal_series"] = thermal_series()
    record["time"] = time.time()
    return record


if __name__ == "__main__":
    json.dump(probe(), sys.stdout, separators=(",", ":"))
    sys.stdout.write("\n")
