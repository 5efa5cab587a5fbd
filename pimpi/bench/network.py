"""`bench pingpong` and `bench pingmatrix`: latency and bandwidth per size, Hockney α–β per link."""

from __future__ import annotations

import statistics
from typing import Any, Sequence

from pimpi.bench.benchmark import benchmark
from pimpi.bench.text import fmt_bytes, fmt_num, fmt_seconds, table
from pimpi.bench.timing import summary

__all__ = ["pingpong_bench", "pingmatrix_bench", "network_figures", "LARGE_FIT"]

# β is refitted on messages from this size up: the all-sizes fit is ruled by small messages,
# whose time is almost all α, and can miss the bandwidth large messages actually get.
LARGE_FIT = 64 << 10


def _fit(sizes: Sequence[int], latencies: Sequence[float]) -> dict[str, Any]:
    """Hockney α (s) and β (s/byte), and the bandwidth 1/β in bits per second."""
    from pimpi.cluster.pingpong import fit_hockney

    alpha, beta = fit_hockney(sizes, latencies)
    return {"alpha_s": alpha, "beta_s_per_byte": beta,
            "bandwidth_bps": 8.0 / beta if beta > 0 else None}


def _fit_rows(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Hockney fit of the rows' median latencies (None with fewer than two sizes)."""
    if len({r["size"] for r in rows}) < 2:
        return None
    return _fit([r["size"] for r in rows], [r["latency_s"]["median"] for r in rows])


def _format_pingpong(result: dict[str, Any]) -> str:
    rows = [[fmt_bytes(r["size"]), fmt_seconds(r["latency_s"]["min"]),
             fmt_seconds(r["latency_s"]["median"]), fmt_seconds(r["latency_s"]["max"]),
             fmt_num((r["bandwidth_Bps"] or 0) / 1e6)] for r in result["rows"]]
    title = f"ping-pong ranks {result['pair'][0]}<->{result['pair'][1]}, {result['repeats']} repeats"
    text = table(["size", "lat min", "lat median", "lat max", "MB/s"], rows, title) + _hockney_line(result["hockney"])
    if result.get("hockney_large"):
        text += f"from {fmt_bytes(LARGE_FIT)} up: " + _hockney_line(result["hockney_large"])
    return text


@benchmark(text=_format_pingpong)
def pingpong_bench(comm: Any, *, sizes: Sequence[int], pair: tuple[int, int] = (0, 1),
                   repeats: int = 3, loops: int | None = None,
                   skip: int | None = None) -> dict[str, Any]:
    """Ping-pong between two ranks `repeats` times; min/median/max one-way latency per size."""
    from pimpi.cluster.pingpong import pingpong

    if comm.size < 2:
        raise ValueError(f"pingpong needs at least 2 ranks, got {comm.size}")
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, got {repeats!r}")
    a, b = pair
    runs = []
    for _ in range(repeats):
        runs.append(pingpong(comm, a, b, sizes, loops=loops, skip=skip))
        comm.Barrier()
    result = None
    if comm.rank == 0:
        rows = []
        for i, first in enumerate(runs[0]):
            size = first["size"]
            lat = summary([run[i]["latency"] for run in runs])
            rows.append({"size": size, "latency_s": lat, "loops": first["loops"],
                         "bandwidth_Bps": size / lat["median"] if lat["median"] > 0 else None})
        result = {"pair": [a, b], "ranks": comm.size, "repeats": repeats, "rows": rows,
                  "hockney": _fit_rows(rows),
                  "hockney_large": _fit_rows([r for r in rows if r["size"] >= LARGE_FIT])}
    return comm.bcast(result, root=0)


def _format_pingmatrix(result: dict[str, Any]) -> str:
    nodes = result["nodes"]
    rows = []
    for link in result["links"]:
        i, j = link["a"], link["b"]
        bw = link.get("bandwidth_bps")
        rows.append([f"{nodes[i]} - {nodes[j]}", fmt_seconds(result["latency"][i][j]),
                     fmt_num(result["bandwidth"][i][j] / 1e6),
                     _alpha_text(link.get("alpha")), fmt_num(bw / 1e6 if bw else None, 1)])
    text = table(["link", f"lat {fmt_bytes(result['sizes'][0])}", f"MB/s {fmt_bytes(result['sizes'][-1])}",
                  "alpha", "Mbit/s (1/β)"], rows, f"ping-pong matrix over {len(nodes)} nodes")
    text += _hockney_line(result["hockney"])
    for link in result["slow_links"]:
        text += (f"SLOW: {nodes[link['a']]} - {nodes[link['b']]}: {link['value']:.3g}"
                 f" vs median {link['median']:.3g}\n")
    return text


@benchmark(text=_format_pingmatrix)
def pingmatrix_bench(comm: Any, *, sizes: Sequence[int], loops: int | None = None,
                     skip: int | None = None, factor: float = 3.0) -> dict[str, Any]:
    """Ping-pong every pair of nodes; Hockney fit per link; links `factor`× off the median flagged."""
    from pimpi.cluster.pingpong import pingmatrix, slow_links

    if comm.size < 2:
        raise ValueError(f"pingmatrix needs at least 2 ranks, got {comm.size}")
    matrix = pingmatrix(comm, sizes, loops=loops, skip=skip)
    result = None
    if comm.rank == 0:
        slow = slow_links(matrix["latency"], factor) + slow_links(
            matrix["bandwidth"], factor, higher_is_slower=False)
        for link in matrix["links"]:
            beta = link.get("beta")
            link["bandwidth_bps"] = 8.0 / beta if beta else None
        result = {**matrix, "factor": factor, "slow_links": slow, "hockney": _median_link(matrix["links"])}
    return comm.bcast(result, root=0)


def _median_link(links: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The median link's α and β: what a cost model should assume for 'a link'."""
    alphas = [ln["alpha"] for ln in links if ln.get("alpha") is not None]
    betas = [ln["beta"] for ln in links if ln.get("beta") is not None]
    if not alphas or not betas:
        return None
    beta = statistics.median(betas)
    return {"alpha_s": statistics.median(alphas), "beta_s_per_byte": beta,
            "bandwidth_bps": 8.0 / beta if beta > 0 else None}


def network_figures(doc: dict[str, Any]) -> tuple[float, float]:
    """(α s, β s/byte) from a pingpong or pingmatrix result document.

    α from the fit over all sizes; β from the large-message fit when there is one.
    """
    results = doc.get("results") or {}
    fit = results.get("hockney")
    if not fit or fit.get("alpha_s") is None or not fit.get("beta_s_per_byte"):
        raise ValueError(f"this {doc.get('kind')!r} result has no Hockney fit (measure 2+ sizes)")
    large = results.get("hockney_large") or {}
    beta = large.get("beta_s_per_byte") if (large.get("beta_s_per_byte") or 0) > 0 else fit["beta_s_per_byte"]
    return float(fit["alpha_s"]), float(beta)


def _hockney_line(fit: dict[str, Any] | None) -> str:
    if not fit:
        return "Hockney fit: n/a (needs two sizes)\n"
    bw = fit["bandwidth_bps"]
    return (f"Hockney fit T(n) = α + n·β: α = {_alpha_text(fit['alpha_s'])},"
            f" β = {fit['beta_s_per_byte']:.3e} s/B ({fmt_num(bw / 1e6 if bw else None, 1)} Mbit/s)\n")


def _alpha_text(alpha: float | None) -> str:
    """α for people: a fit at or below zero means α is smaller than the timings resolve."""
    if alpha is None:
        return "-"
    return fmt_seconds(alpha) if alpha > 0 else "below resolution"
