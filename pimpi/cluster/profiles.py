"""Network and CPU profiles of real Pi clusters, as data (used by vcluster shaping and bench predict).

Stable API: ``PROFILES[name]`` is a dict with

- ``bandwidth_bps``: link rate in bits per second (None: unshaped),
- ``latency_s``: one-way node-to-node latency in seconds added by the profile
  (None: unshaped; the virtual links split it in half on each side of the bridge),
- ``core_speed_relative``: per-core compute speed relative to one Raspberry Pi 4 core
  (None: this machine, not modelled),
- ``cores``: cores per node on the real board,
- ``sources``: where the figures come from, ``assumptions``: what we guessed and why.

``profile(name)`` returns a copy and raises ValueError for an unknown name.
"""

from __future__ import annotations

import copy

__all__ = ["PROFILES", "profile", "names"]

_ETHERNET = ("jeffgeerling.com Ethernet iperf measurements, 2015 onward: Pi 3B+ ~224 Mbit/s "
             "(Ethernet over USB 2.0), Pi 4 and Pi 5 ~900+ Mbit/s")
_HPL = ("geerlingguy/top500-benchmark HPL results: Pi 4 11.9 Gflops, Pi 5 (8 GB) 35.2 Gflops, "
        "4 cores each")
_LATENCY = ("no published MPI ping-pong figures for Pi clusters were found; latencies are "
            "typical one-way gigabit-switch LAN figures (~50-100 us), more for USB Ethernet")

PROFILES: dict[str, dict] = {
    "lan": {
        "bandwidth_bps": None,
        "latency_s": None,
        "core_speed_relative": None,
        "cores": None,
        "sources": [],
        "assumptions": ["unshaped: the virtual links run at this machine's own speed"],
    },
    "pi3": {
        "bandwidth_bps": 224_000_000,
        "latency_s": 250e-6,
        "core_speed_relative": 0.45,
        "cores": 4,
        "sources": [_ETHERNET, _LATENCY],
        "assumptions": [
            "Pi 3B+ Ethernet sits behind USB 2.0: 224 Mbit/s measured, higher latency than "
            "a native MAC (0.25 ms one-way assumed)",
            "Cortex-A53 at 1.4 GHz vs Cortex-A72 at 1.5 GHz: about 0.45 of a Pi 4 core "
            "(no HPL figure for the Pi 3 in our references; estimate)",
        ],
    },
    "pi4": {
        "bandwidth_bps": 940_000_000,
        "latency_s": 100e-6,
        "core_speed_relative": 1.0,
        "cores": 4,
        "sources": [_ETHERNET, _HPL, _LATENCY],
        "assumptions": [
            "940 Mbit/s: gigabit Ethernet at TCP goodput (iperf ~900+ Mbit/s)",
            "0.1 ms one-way through one gigabit switch",
            "the reference core (1.0)",
        ],
    },
    "pi5": {
        "bandwidth_bps": 940_000_000,
        "latency_s": 80e-6,
        "core_speed_relative": round(35.2 / 11.9, 2),
        "cores": 4,
        "sources": [_ETHERNET, _HPL, _LATENCY],
        "assumptions": [
            "940 Mbit/s: gigabit Ethernet at TCP goodput, like the Pi 4",
            "0.08 ms one-way: the RP1 Ethernet MAC is a little quicker than the Pi 4's",
            "core speed from HPL totals 35.2 / 11.9 Gflops (both 4 cores)",
        ],
    },
}


def names() -> list[str]:
    """The profile names, in a stable order."""
    return list(PROFILES)


def profile(name: str) -> dict:
    """A copy of the profile called NAME (ValueError names the bad one)."""
    if name not in PROFILES:
        raise ValueError(f"unknown profile {name!r}; choose one of {', '.join(PROFILES)}")
    return copy.deepcopy(PROFILES[name])
