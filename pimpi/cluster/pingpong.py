"""Point-to-point ping-pong between two ranks and between every pair of nodes, with the Hockney fit."""

from __future__ import annotations

import math
import socket
import statistics
from itertools import combinations
from typing import Any, Sequence

import numpy as np

__all__ = ["pingpong", "pingmatrix", "fit_hockney", "slow_links", "default_iterations", "loops_for",
           "LARGE", "HUGE"]

_TAG = 0x5050  # ping-pong traffic
_TAG_RESULT = 0x5051  # rank a hands its result to rank 0
# The one set of message-size thresholds (bytes) of every pimpi timing loop (this
# ping-pong, `bench collectives`, `bench tune`): as OSU and mpi4py.bench, fewer
# repetitions above them.
LARGE = 8 << 10
HUGE = 1 << 20


def loops_for(nbytes: int, skip: int, loop: int) -> tuple[int, int]:
    """(skip, loop) for a message of `nbytes`: a tenth above 8 KiB, a hundredth above 1 MiB."""
    if skip < 0 or loop < 1:
        raise ValueError(f"need skip >= 0 and loop >= 1, got skip={skip} loop={loop}")
    if nbytes > HUGE:
        return max(0, skip // 10), max(1, loop // 100)
    if nbytes > LARGE:
        return max(0, skip // 4), max(1, loop // 10)
    return skip, loop


def default_iterations(size: int) -> tuple[int, int]:
    """(skip, loops) for a message of `size` bytes: 100 warm-ups and 1000 round trips for
    small messages, fewer for large ones (`loops_for`)."""
    return loops_for(size, 100, 1000)


def pingpong(
    comm: Any,
    a: int,
    b: int,
    sizes: Sequence[int],
    *,
    loops: int | None = None,
    skip: int | None = None,
) -> list[dict[str, Any]] | None:
    """One-way latency (s) and bandwidth (B/s) of each message size between ranks `a` and `b`.

    Rank `a` sends a preallocated uint8 buffer with `Send`, `b` echoes it back; after
    `skip` warm-up round trips, `loops` timed ones give one row per size:
    `{"size", "loops", "latency", "latency_min", "latency_stdev", "bandwidth"}`, where
    latency is half the mean round trip and bandwidth is `size / latency` (ping-pong
    bandwidth, as mpi4py.bench reports it; OSU's windowed bandwidth test is higher).
    `loops`/`skip` default per size to `default_iterations(size)`; given, they apply to all.

    Call it on every rank of `comm` with the same arguments: it uses no collective, so
    ranks other than a, b and 0 return None at once. The rows are returned on rank `a`
    and on rank 0 (a sends them there); every other rank, `b` included, gets None.
    """
    _check_rank(comm, a, "a")
    _check_rank(comm, b, "b")
    if a == b:
        raise ValueError(f"pingpong needs two different ranks, got a = b = {a}")
    sizes = _check_sizes(sizes)
    if loops is not None and (not isinstance(loops, int) or loops < 1):
        raise ValueError(f"loops must be a positive integer, got {loops!r}")
    if skip is not None and (not isinstance(skip, int) or skip < 0):
        raise ValueError(f"skip must be a non-negative integer, got {skip!r}")
    rank = comm.Get_rank()
    rows = _measure(comm, a, b, sizes, loops, skip) if rank in (a, b) else None
    if a != 0:
        if rank == a:
            comm.send(rows, dest=0, tag=_TAG_RESULT)
        elif rank == 0:
            rows = comm.recv(source=a, tag=_TAG_RESULT)
    return rows if rank in (a, 0) else None


def _check_rank(comm: Any, rank: Any, name: str) -> None:
    if not isinstance(rank, (int, np.integer)) or not 0 <= rank < comm.Get_size():
        raise ValueError(f"{name} must be a rank in 0..{comm.Get_size() - 1}, got {rank!r}")


def _check_sizes(sizes: Sequence[int]) -> list[int]:
    sizes = list(sizes)
    if not sizes:
        raise ValueError("sizes is empty: give at least one message size in bytes")
    for size in sizes:
        if not isinstance(size, (int, np.integer)) or size < 0:
            raise ValueError(f"message sizes must be non-negative integers, got {size!r}")
    return [int(s) for s in sizes]


def _measure(
    comm: Any, a: int, b: int, sizes: list[int], loops: int | None, skip: int | None
) -> list[dict[str, Any]] | None:
    """The timed loop on ranks a (pings, keeps the result) and b (echoes what arrives)."""
    from mpi4py import MPI

    wtime = MPI.Wtime
    send, recv = comm.Send, comm.Recv
    biggest = max(max(sizes), 1)
    sbuf = (np.arange(biggest) % 251).astype(np.uint8)
    rbuf = np.zeros(biggest, dtype=np.uint8)
    rows = []
    for size in sizes:
        n_skip, n_loops = default_iterations(size)
        n_skip = n_skip if skip is None else skip
        n_loops = n_loops if loops is None else loops
        smsg, rmsg = [sbuf, size, MPI.BYTE], [rbuf, size, MPI.BYTE]
        if comm.Get_rank() == b:
            for _ in range(n_skip + n_loops):
                recv(rmsg, a, _TAG)
                send(rmsg, a, _TAG)
            continue
        rbuf[:size] = 0
        times = np.empty(n_loops)
        for i in range(n_skip + n_loops):
            t0 = wtime()
            send(smsg, b, _TAG)
            recv(rmsg, b, _TAG)
            if i >= n_skip:
                times[i - n_skip] = wtime() - t0
        if not np.array_equal(rbuf[:size], sbuf[:size]):
            raise RuntimeError(f"pingpong {a}<->{b}: {size}-byte message came back corrupted")
        one_way = times / 2.0
        latency = float(one_way.mean())
        rows.append({
            "size": size,
            "loops": n_loops,
            "latency": latency,
            "latency_min": float(one_way.min()),
            "latency_stdev": float(one_way.std(ddof=1)) if n_loops > 1 else 0.0,
            "bandwidth": size / latency if latency > 0 else math.inf,
        })
    return rows if comm.Get_rank() == a else None


def pingmatrix(
    comm: Any,
    sizes: Sequence[int] = (8, 1 << 20),
    *,
    one_rank_per_node: bool = True,
    loops: int | None = None,
    skip: int | None = None,
) -> dict[str, Any] | None:
    """Ping-pong every pair of nodes, one pair at a time; the result on rank 0, None elsewhere.

    Nodes are ranks grouped by hostname, each represented by its lowest rank; with a
    single node (or `one_rank_per_node=False`) every rank is its own entry. The others
    wait at a barrier while a pair measures, so links are timed without contention.
    Returns `{"nodes": labels, "ranks": ranks, "sizes", "latency": matrix of the
    smallest size's one-way latency (s), "bandwidth": matrix of the largest size's
    bandwidth (B/s), "links": [{"a", "b", "rows", "alpha", "beta"}]}`; matrices are
    symmetric lists with None on the diagonal; alpha/beta are the Hockney fit of the
    link (None when fewer than two sizes were measured).
    """
    sizes = sorted(set(_check_sizes(sizes)))
    hosts = comm.allgather(socket.gethostname())
    ranks, labels = _entries(hosts, one_rank_per_node)
    measured = []
    for i, j in combinations(range(len(ranks)), 2):
        rows = pingpong(comm, ranks[i], ranks[j], sizes, loops=loops, skip=skip)
        comm.Barrier()
        measured.append((i, j, rows))
    if comm.Get_rank() != 0:
        return None
    n = len(ranks)
    latency: list[list[float | None]] = [[None] * n for _ in range(n)]
    bandwidth: list[list[float | None]] = [[None] * n for _ in range(n)]
    links = []
    for i, j, rows in measured:
        latency[i][j] = latency[j][i] = rows[0]["latency"]
        bandwidth[i][j] = bandwidth[j][i] = rows[-1]["bandwidth"]
        alpha = beta = None
        if len(rows) >= 2:
            alpha, beta = fit_hockney([r["size"] for r in rows], [r["latency"] for r in rows])
        links.append({"a": i, "b": j, "rows": rows, "alpha": alpha, "beta": beta})
    return {"nodes": labels, "ranks": ranks, "sizes": sizes,
            "latency": latency, "bandwidth": bandwidth, "links": links}


def _entries(hosts: list[str], one_rank_per_node: bool) -> tuple[list[int], list[str]]:
    """The ranks to measure and their labels: the lowest rank of each host, or every rank."""
    first: dict[str, int] = {}
    for rank, host in enumerate(hosts):
        first.setdefault(host, rank)
    if one_rank_per_node and len(first) > 1:
        return list(first.values()), list(first)
    return list(range(len(hosts))), [f"{host}/{rank}" for rank, host in enumerate(hosts)]


def fit_hockney(sizes: Sequence[int], times: Sequence[float]) -> tuple[float, float]:
    """(α s, β s/byte) of T(n) = α + n·β, by least squares (numpy.polyfit) on relative error.

    Ping-pong times span several orders of magnitude, so a plain fit lets the largest
    message decide everything and α comes out as noise; weighting each point by 1/T
    fits relative error instead and recovers both. Neither is clamped: a negative α or β
    means the data do not follow the model (noise, or a protocol switch such as eager
    to rendezvous), and hiding that behind a positive number would mislead.
    """
    x = np.asarray(sizes, dtype=float)
    y = np.asarray(times, dtype=float)
    if x.ndim != 1 or x.shape != y.shape:
        raise ValueError(f"sizes and times must be two lists of one length, got {x.shape} and {y.shape}")
    if len(np.unique(x)) < 2:
        raise ValueError(f"the Hockney fit needs at least two different sizes, got {list(sizes)!r}")
    if not np.all(np.isfinite(y)) or np.any(y <= 0):
        raise ValueError(f"times must be positive and finite, got {list(times)!r}")
    beta, alpha = np.polyfit(x, y, 1, w=1.0 / y)
    return float(alpha), float(beta)


def slow_links(
    matrix: Sequence[Sequence[float | None]], factor: float = 3.0, *, higher_is_slower: bool = True
) -> list[dict[str, Any]]:
    """Links (i < j) more than `factor` times slower than the median link.

    For a latency matrix (default) slower means larger; pass `higher_is_slower=False`
    for a bandwidth matrix. None entries (the diagonal) are skipped. Returns
    `[{"a": i, "b": j, "value": v, "median": m}]`; with fewer than three links the
    median is not a meaningful baseline, so nothing is flagged.
    """
    if not factor > 1:
        raise ValueError(f"factor must be greater than 1, got {factor!r}")
    values = []
    for i, row in enumerate(matrix):
        for j in range(i + 1, len(row)):
            value = row[j] if row[j] is not None else matrix[j][i]
            if value is not None:
                values.append((i, j, float(value)))
    if len(values) < 3:
        return []
    median = statistics.median(v for _, _, v in values)
    slow = []
    for i, j, value in values:
        if (value > factor * median) if higher_is_slower else (value * factor < median):
            slow.append({"a": i, "b": j, "value": value, "median": median})
    return slow
