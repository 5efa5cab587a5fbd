"""`bench predict`: render speedup and collective times on a cluster that is not here (α–β model)."""

from __future__ import annotations

import os
from typing import Any, Callable, Sequence

from pimpi.bench import model
from pimpi.bench.benchmark import benchmark
from pimpi.bench.text import fmt_bytes, fmt_num, fmt_seconds, table

__all__ = ["load_profile", "local_speed", "collective_times", "predict_render", "predict"]

# Collectives whose benchmark size is one rank's block while cost() wants all p blocks.
_PER_BLOCK = ("scatter", "gather", "allgather", "alltoall", "reduce_scatter_block")
NETWORKS = ("switched", "shared")
# A core that is not a Pi, relative to one Pi 4 core, when the user does not say.
DEFAULT_LOCAL_SPEED = 3.0


def load_profile(name_or_path: str) -> dict[str, Any]:
    """{name, alpha_s, beta_s_per_byte, core_speed_relative, cores, sources, assumptions}.

    A shipped profile name (pi3, pi4, pi5) or a `bench pingpong`/`pingmatrix` JSON file
    (its cores are this machine's: core_speed_relative None).
    """
    if os.path.isfile(name_or_path):
        from pimpi.bench.network import network_figures
        from pimpi.bench.schema import read_json

        doc = read_json(name_or_path)
        if doc["kind"] not in ("pingpong", "pingmatrix"):
            raise ValueError(f"{name_or_path!r} is a {doc['kind']!r} result; a profile must be pingpong or pingmatrix")
        alpha, beta = network_figures(doc)
        host = (doc.get("machine") or {}).get("hostname")
        return {"name": name_or_path, "alpha_s": alpha, "beta_s_per_byte": beta,
                "core_speed_relative": None, "cores": None,
                "sources": [f"measured by pimpi bench {doc['kind']} on {host}"],
                "assumptions": ["network figures: α from the Hockney fit over all measured sizes,"
                                " β from the fit over large messages (64 KiB up) when measured"]}
    from pimpi.cluster.profiles import profile

    prof = profile(name_or_path)
    if not prof.get("bandwidth_bps") or prof.get("latency_s") is None:
        raise ValueError(f"profile {name_or_path!r} is unshaped (no α–β figures); give pi3, pi4, pi5"
                         " or a measured pingpong JSON file")
    return {"name": name_or_path, "alpha_s": float(prof["latency_s"]),
            "beta_s_per_byte": 8.0 / float(prof["bandwidth_bps"]),
            "core_speed_relative": prof.get("core_speed_relative"), "cores": prof.get("cores"),
            "sources": list(prof.get("sources") or []),
            "assumptions": list(prof.get("assumptions") or [])}


def local_speed(pi_model: str | None) -> tuple[float, str]:
    """This machine's core speed relative to a Pi 4 core, and why we think so."""
    from pimpi.cluster.profiles import PROFILES

    for number in ("5", "4", "3"):
        if pi_model and f"Raspberry Pi {number}" in pi_model:
            speed = PROFILES[f"pi{number}"]["core_speed_relative"]
            return float(speed), f"this machine is a {pi_model}: core speed {speed} of a Pi 4 core"
    return DEFAULT_LOCAL_SPEED, (f"this machine is not a Pi: its core is assumed {DEFAULT_LOCAL_SPEED:g}x a Pi 4"
                                 " core (pass --local-speed to correct it)")


def collective_times(ops: Sequence[str], sizes: Sequence[int], ranks: int, alpha: float,
                     beta: float, cost: Callable[[str, str, int, int], tuple[float, float]],
                     algorithms: dict[str, Sequence[str]],
                     traffic: dict[tuple[str, int, str], dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """Predicted time of every algorithm of every op at every size: α·messages + β·bytes.

    Switched network (traffic None): messages and bytes on the one-port critical path
    (cost()): every node has its own full-duplex link. Shared medium (traced `traffic`):
    the critical path's messages but ALL bytes sent, since one medium carries them in turn.
    """
    rows = []
    for op in ops:
        for nbytes in sizes:
            vector = nbytes * ranks if op in _PER_BLOCK else nbytes
            per_alg = {}
            for alg in algorithms[op]:
                if traffic is not None:
                    seen = traffic[(op, nbytes, alg)]
                    messages, volume = seen["path_messages"], seen["total_bytes"]
                else:
                    messages, volume = cost(op, alg, vector, ranks)
                per_alg[alg] = {"messages": messages, "bytes": volume,
                                "seconds": model.hockney_time(alpha, beta, volume, messages)}
            best = min(per_alg, key=lambda a: per_alg[a]["seconds"])
            rows.append({"op": op, "bytes": nbytes, "ranks": ranks, "algorithms": per_alg,
                         "best": best, "best_seconds": per_alg[best]["seconds"]})
    return rows


def predict_render(frame_seconds: Sequence[float], frame_bytes: int, nodes: Sequence[int],
                   cores_per_node: int, alpha: float, beta: float,
                   schedule: str = "dynamic", tiles: int = 1) -> list[dict[str, Any]]:
    """Predicted render time and speedup at each node count (vs one core, and vs one node).

    With `tiles` > 1 each frame is that many equal units of work (render's --tiles), so
    one slow frame no longer bounds the whole job.
    """
    if tiles < 1:
        raise ValueError(f"tiles must be at least 1, got {tiles!r}")
    one_core = sum(frame_seconds)
    frame_seconds = [t / tiles for t in frame_seconds for _ in range(tiles)]
    frame_bytes = frame_bytes // tiles
    one_node = model.render_time(frame_seconds, frame_bytes, nodes=1, cores_per_node=cores_per_node,
                                 alpha=alpha, beta=beta, schedule=schedule)["total_s"]
    rows = []
    for n in nodes:
        est = model.render_time(frame_seconds, frame_bytes, nodes=n, cores_per_node=cores_per_node,
                                alpha=alpha, beta=beta, schedule=schedule)
        speedup = model.speedup(one_core, est["total_s"])
        rows.append({"nodes": n, **est, "speedup": speedup,
                     "efficiency": model.efficiency(speedup, est["ranks"]),
                     "vs_one_node": model.speedup(one_node, est["total_s"])})
    return rows


def _format(result: dict[str, Any]) -> str:
    prof = result["profile"]
    text = (f"prediction for {prof['name']}: α = {fmt_seconds(prof['alpha_s'])},"
            f" 1/β = {8 / prof['beta_s_per_byte'] / 1e6:.0f} Mbit/s, {result['cores_per_node']} ranks per node\n")
    render = result.get("render")
    if render:
        rows = [[r["nodes"], r["ranks"], fmt_seconds(r["total_s"]), fmt_num(r["speedup"]),
                 fmt_num(r["efficiency"]), fmt_num(r["vs_one_node"]), r["bound"]] for r in render["rows"]]
        text += table(["nodes", "ranks", "time", "speedup", "effic.", "vs 1 node", "bound"], rows,
                      f"{render['workload']}: {render['frames']} frames {render['width']}x{render['height']}"
                      f" (speedup vs one core)")
    if result.get("collectives"):
        rows = [[r["op"], r["ranks"], fmt_bytes(r["bytes"]), r["best"], fmt_seconds(r["best_seconds"])]
                for r in result["collectives"]]
        text += table(["collective", "ranks", "size", "best algorithm", "time"], rows, "collectives (α–β)")
    text += "assumptions:\n" + "".join(f"  - {a}\n" for a in result["assumptions"])
    text += "sources:\n" + "".join(f"  - {s}\n" for s in prof["sources"])
    return text


@benchmark(text=_format, mpi=False)
def predict(_comm: Any, *, profile: str, nodes: Sequence[int], cores_per_node: int | None = None,
            workload: str | None = "mandelbrot", frames: int = 8, width: int = 320,
            height: int = 240, schedule: str = "dynamic", ops: Sequence[str] = ("allreduce", "bcast"),
            sizes: Sequence[int] = (1024, 65536, 1 << 20, 4 << 20), speed: float | None = None,
            network: str = "switched", tiles: int = 1, hostfile: str | None = None) -> dict[str, Any]:
    """Predict render speedup and collective times on `nodes` nodes of `profile`.

    network "shared" traces every algorithm under mpirun at each rank count (bench traffic).
    """
    if network not in NETWORKS:
        raise ValueError(f"unknown network {network!r}; use {' or '.join(NETWORKS)}")
    from pimpi.bench.machine import facts

    prof = load_profile(profile)
    cores = cores_per_node or prof["cores"] or 1
    assumptions = list(prof["assumptions"])
    if prof["core_speed_relative"] is None:
        scale = 1.0
        assumptions.append("compute: this machine's cores, unscaled (the profile is this machine)")
    else:
        mine, why = (speed, f"this machine's core: {speed:g}x a Pi 4 core (--local-speed)") \
            if speed else local_speed(facts().get("pi_model"))
        scale = mine / float(prof["core_speed_relative"])
        assumptions += [why, f"per-frame times measured here are multiplied by {scale:.3g}"
                        f" ({mine:g} / {prof['core_speed_relative']:g})"]
    assumptions += [
        "one rank per core; every message is priced at the network's α–β (intra-node ones are faster)",
        "switched network: each node has its own full-duplex link, so only the critical path counts"
        if network == "switched" else
        "shared medium (one machine's virtual cluster, a hub): every byte sent crosses it in turn,"
        " so collectives pay all traced bytes, not just the critical path's",
        "rendered frames travel to rank 0 once; rank 0's link carries them one at a time,"
        " overlapped with rendering (only the last transfer adds to the time)",
        f"the unit of work is {'a frame' if tiles == 1 else f'a tile (1/{tiles} of a frame, equal cost)'};"
        " dynamic schedule hands out the longest first",
        "reductions' arithmetic and MPI start-up are not modelled",
    ]
    result: dict[str, Any] = {"profile": prof, "nodes": list(nodes), "cores_per_node": cores,
                              "assumptions": assumptions}
    if workload:
        from pimpi.bench.baseline import serial_frames

        measured = serial_frames(workload, frames, width, height)
        scaled = [t * scale for t in measured["frame_seconds"]]
        result["render"] = {
            "workload": workload, "frames": frames, "width": width, "height": height,
            "schedule": schedule, "tiles": tiles, "frame_bytes": measured["frame_bytes"],
            "local_frame_seconds": measured["frame_seconds"], "compute_scale": scale,
            "rows": predict_render(scaled, measured["frame_bytes"], nodes, cores,
                                   prof["alpha_s"], prof["beta_s_per_byte"], schedule, tiles),
        }
    if ops:
        from pimpi.collectives import ALGORITHMS, cost

        result["network"] = network
        result["collectives"] = []
        for n in nodes:
            seen = None
            if network == "shared" and n * cores > 1:
                from pimpi.bench.jobs import launch_job
                from pimpi.bench.traffic import traffic_index

                job = launch_job(n * cores, "traffic", ["--ops", ",".join(ops),
                                                        "--sizes", ",".join(map(str, sizes))])
                seen = traffic_index(job["results"])
            result["collectives"] += collective_times(ops, sizes, n * cores, prof["alpha_s"],
                                                      prof["beta_s_per_byte"], cost, ALGORITHMS, seen)
    return result
