"""The scaling table from measured seconds: speedup, efficiency, Pool ratio, Amdahl's fit (no runs).

Shared by `bench scaling`'s render workloads and its futures workload, which measure
differently but report the same table.
"""

from __future__ import annotations

from typing import Any, Sequence

from pimpi.bench import model
from pimpi.bench.timing import summary

__all__ = ["analyse"]


def analyse(ranks: Sequence[int], seconds: dict[int, list[float]], *, serial: list[float],
            pool: list[float], pool_processes: int, frames: int, pixels: int,
            slots: int) -> dict[str, Any]:
    """Speedup (vs 1 rank, else vs serial), efficiency, Pool ratio and Amdahl's serial fraction.

    Medians of the repeats are compared; rows above `slots` ranks are oversubscribed and
    left out of the Amdahl fit (they measure core sharing, not the program).
    """
    def rate(stats: dict[str, float]) -> dict[str, float]:
        return {"frames_per_s": frames / stats["median"], "pixels_per_s": frames * pixels / stats["median"]}

    serial_s, pool_s = summary(serial), summary(pool)
    base_name = "1 rank" if 1 in seconds else "serial"
    base = summary(seconds[1])["median"] if 1 in seconds else serial_s["median"]
    rows = []
    for n in ranks:
        stats = summary(seconds[n])
        s = model.speedup(base, stats["median"])
        rows.append({"ranks": n, "seconds": stats, **rate(stats), "speedup": s,
                     "efficiency": model.efficiency(s, n),
                     "vs_pool": model.speedup(pool_s["median"], stats["median"]),
                     "vs_serial": model.speedup(serial_s["median"], stats["median"]),
                     "oversubscribed": n > slots})
    fit_rows = [r for r in rows if not r["oversubscribed"]]
    fraction = model.fit_amdahl([r["ranks"] for r in fit_rows], [r["speedup"] for r in fit_rows])
    return {
        "speedup_base": base_name,
        "baselines": {
            "serial": {"seconds": serial_s, **rate(serial_s)},
            "pool": {"seconds": pool_s, "processes": pool_processes, **rate(pool_s)},
        },
        "rows": rows,
        "amdahl": {
            "serial_fraction": fraction,
            "fitted_on": [r["ranks"] for r in fit_rows],
            "speedup": {str(n): model.amdahl_speedup(fraction, n) for n in ranks} if fraction is not None else None,
        },
    }
