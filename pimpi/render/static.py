"""Static partitioning of frames: rank 0 Scatterv's (frame, row) indices, Gatherv's the pixels.

Two classic splits, decided before anything is rendered:

* `interleave` (as in mpi4py's demo/mandelbrot): a batch of frames is cut into rows and
  rank r takes rows r, r+size, r+2*size, ... of it, so cheap and costly rows mix evenly.
* `block`: each rank takes one contiguous block of frames (the naive split: in a zoom the
  deep frames all land on the last rank, which is what dynamic scheduling fixes).

Work descriptions go out as int64 arrays with `Scatterv`, pixels come back as uint8
buffers with `Gatherv`, round by round, so rank 0 holds at most one round of pixels.
Like the dynamic task farm (`pimpi.tasks.run_dynamic`), it takes a work callback
(`render_rows(frame, rows)`, here: pixels of some rows of one frame) and returns the same
`ScheduleReport`; the caller (render/job.py) decides what is rendered.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Sequence

import numpy as np

from pimpi.mpi import quiet_barrier
from pimpi.tasks import RankStats, ScheduleReport, TaskEvent

__all__ = ["PARTITIONS", "plan_rounds", "run_static"]

PARTITIONS = ("interleave", "block")
_ROUND_PIXELS = 1 << 22  # pixels per interleaved round (about 12 MB of RGB on rank 0)


def plan_rounds(frames: Sequence[int], height: int, width: int, size: int,
                partition: str) -> list[list[np.ndarray]]:
    """Rounds of work: for each round, one (n, 2) int64 array of (frame, row) per rank."""
    if partition not in PARTITIONS:
        raise ValueError(f"unknown partition {partition!r} (choose from {', '.join(PARTITIONS)})")
    frames = list(frames)
    rounds: list[list[np.ndarray]] = []
    if not frames:
        return rounds
    rows = np.arange(height, dtype=np.int64)
    if partition == "interleave":
        per_round = max(1, _ROUND_PIXELS // max(1, width * height))
        for start in range(0, len(frames), per_round):
            batch = np.asarray(frames[start:start + per_round], dtype=np.int64)
            items = np.stack([np.repeat(batch, height), np.tile(rows, batch.size)], axis=1)
            rounds.append([items[r::size] for r in range(size)])
        return rounds
    blocks = np.array_split(np.asarray(frames, dtype=np.int64), size)
    for k in range(max(len(b) for b in blocks)):
        part = []
        for block in blocks:
            if k < len(block):
                part.append(np.stack([np.full(height, block[k]), rows], axis=1))
            else:
                part.append(np.empty((0, 2), dtype=np.int64))
        rounds.append(part)
    return rounds


RenderRows = Callable[[int, np.ndarray], np.ndarray]  # (frame, rows) -> (len(rows), width, 3) uint8


def _render_items(render_rows: RenderRows, items: np.ndarray, width: int) -> np.ndarray:
    """Pixels for (frame, row) items, in item order, rendering each frame's rows at once."""
    out = np.empty((len(items), width, 3), dtype=np.uint8)
    if not len(items):
        return out
    for frame in np.unique(items[:, 0]):
        where = np.flatnonzero(items[:, 0] == frame)
        out[where] = render_rows(int(frame), items[where, 1])
    return out


def run_static(
    comm: Any,
    frames: Sequence[int],
    width: int,
    height: int,
    render_rows: RenderRows,
    *,
    partition: str = "interleave",
    on_frame: Callable[[int, np.ndarray], None] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> ScheduleReport:
    """Render `frames` (rank 0's list counts) with a static split; collective on `comm`.

    `render_rows(frame, rows)` returns the pixels of those rows of that frame, on
    whichever rank got them. `on_frame(frame, pixels)` is called on rank 0 for each finished frame. Returns the same
    report on every rank: one event per rank and round (for the Gantt chart); a rank's
    `units` are the rows it rendered.
    """
    from mpi4py import MPI

    size, rank = comm.size, comm.rank
    rounds = plan_rounds(frames, height, width, size, partition) if rank == 0 else None
    n_rounds = comm.bcast(len(rounds) if rank == 0 else None, root=0)
    comm.Barrier()
    t0 = time.monotonic()
    cpu0 = time.process_time()
    spans: list[tuple[int, float, float]] = []
    busy = 0.0
    rows_done = 0
    done_frames: list[int] = []
    row_bytes = width * 3
    for k in range(n_rounds):
        if rank == 0:
            parts = rounds[k]
            counts = np.array([len(p) for p in parts], dtype=np.int64)
            sendbuf = np.ascontiguousarray(np.concatenate(parts).reshape(-1))
        else:
            counts = np.empty(size, dtype=np.int64)
            sendbuf = None
        comm.Bcast(counts, root=0)
        mine = np.empty((int(counts[rank]), 2), dtype=np.int64)
        displs = np.concatenate([[0], np.cumsum(counts[:-1])]) * 2
        comm.Scatterv([sendbuf, counts * 2, displs, MPI.INT64_T] if rank == 0 else None, mine, root=0)
        start = time.monotonic()
        pixels = _render_items(render_rows, mine, width)
        end = time.monotonic()
        busy += end - start
        rows_done += len(mine)
        if len(mine):
            spans.append((k, start - t0, end - t0))
        if rank == 0:
            gathered = np.empty((int(counts.sum()), width, 3), dtype=np.uint8)
            pix_displs = np.concatenate([[0], np.cumsum(counts[:-1])]) * row_bytes
            recv = [gathered, counts * row_bytes, pix_displs, MPI.UINT8_T]
        else:
            recv = None
        comm.Gatherv(pixels, recv, root=0)
        if rank == 0:
            items = np.concatenate(rounds[k])
            finished = _assemble(items, gathered, width, height)
            for frame, image in finished:
                if on_frame is not None:
                    on_frame(frame, image)
                done_frames.append(frame)
                if progress is not None:
                    progress(len(done_frames), len(frames))
    quiet_barrier(comm)
    wall = time.monotonic() - t0
    everyone = comm.gather((busy, spans, rows_done, time.process_time() - cpu0), root=0)
    report = None
    if rank == 0:
        ranks, events = [], []
        for r, (rank_busy, rank_spans, rank_rows, cpu) in enumerate(everyone):
            ranks.append(RankStats(r, rank_rows, rank_busy, max(0.0, wall - rank_busy), cpu=cpu))
            events += [TaskEvent(f"round {k}", r, s, e, True) for k, s, e in rank_spans]
        events.sort(key=lambda e: e.start)
        report = ScheduleReport(size, wall, ranks, events, [f"f{f}" for f in done_frames], {}, True)
    return comm.bcast(report, root=0)


def _assemble(items: np.ndarray, pixels: np.ndarray, width: int,
              height: int) -> list[tuple[int, np.ndarray]]:
    """Whole frames from gathered rows (every frame of a round is complete in that round)."""
    out = []
    for frame in np.unique(items[:, 0]):
        where = np.flatnonzero(items[:, 0] == frame)
        image = np.empty((height, width, 3), dtype=np.uint8)
        image[items[where, 1]] = pixels[where]
        out.append((int(frame), image))
    order = {f: i for i, f in enumerate(dict.fromkeys(int(f) for f in items[:, 0]))}
    out.sort(key=lambda fi: order[fi[0]])
    return out
