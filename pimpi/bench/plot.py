"""Speedup and efficiency against the ideal, drawn with matplotlib (Agg, imported lazily)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pimpi.fileio import atomic_path

__all__ = ["plot_scaling"]


def plot_scaling(result: dict[str, Any], path: str) -> str:
    """Draw a `bench scaling` result to a PNG at `path` (written atomically)."""
    try:
        import matplotlib
    except ImportError:
        raise ValueError("--plot needs matplotlib: pip install 'pimpi[plot]'") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    target = Path(path)
    if not target.parent.is_dir():
        raise ValueError(f"folder for --plot does not exist: {str(target.parent)!r}")
    ranks = [r["ranks"] for r in result["rows"]]
    speedups = [r["speedup"] for r in result["rows"]]
    effs = [r["efficiency"] for r in result["rows"]]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    left.plot(ranks, ranks, "k--", label="ideal")
    left.plot(ranks, speedups, "o-", label=f"measured (vs {result['speedup_base']})")
    amdahl = result["amdahl"].get("speedup")
    if amdahl:
        left.plot(ranks, [amdahl[str(n)] for n in ranks], ":",
                  label=f"Amdahl f={result['amdahl']['serial_fraction']:.3f}")
    pool = result["baselines"]["pool"]
    left.axhline(result["rows"][0]["seconds"]["median"] * result["rows"][0]["speedup"]
                 / pool["seconds"]["median"], color="tab:green", lw=1,
                 label=f"Pool({pool['processes']}) on one machine")
    left.set(xlabel="ranks", ylabel="speedup", title=f"{result['workload']} speedup")
    left.legend(fontsize=8)
    right.plot(ranks, [1.0] * len(ranks), "k--", label="ideal")
    right.plot(ranks, effs, "o-", label="measured")
    right.set(xlabel="ranks", ylabel="parallel efficiency", ylim=(0, 1.1),
              title="efficiency = speedup / ranks")
    right.legend(fontsize=8)
    slots = result.get("slots")
    for axis in (left, right):
        if slots and slots < max(ranks):
            axis.axvline(slots, color="grey", ls=":", lw=1)
            axis.annotate(f"{slots} cores: more ranks share them", (slots, axis.get_ylim()[1] * 0.92),
                          fontsize=7, color="grey", ha="right")
        axis.set_xticks(ranks)
        axis.grid(alpha=0.3)
    fig.tight_layout()
    try:
        with atomic_path(target) as tmp:
            fig.savefig(tmp, dpi=100)
    finally:
        plt.close(fig)
    return str(target)
