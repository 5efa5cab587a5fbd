"""The course exercises' cases: each rank's inputs and the answer from a serial run of the whole computation.

Every builder here computes the whole problem on each rank without MPI (the serial
reference) and hands the rank its part; importing this module registers the kinds
with `pimpi.collectives.cases`, so the checker and `exercises trace` know them.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..cases import Case, Prepared, register, uneven_counts
from .course import Work

__all__ = ["HEAT_STEPS", "HEAT_ALPHA", "MAX_ITER", "heat_counts", "heat_serial", "mandelbrot_row",
           "grid_dims"]

HEAT_STEPS = 10  # time steps of the heat cases
HEAT_ALPHA = 0.25  # diffusion number (stable for <= 0.5)
MAX_ITER = 64  # Mandelbrot iterations


def _values(seed: int, n: int, dt: np.dtype) -> np.ndarray:
    """Small distinct non-zero values (sums stay exact in every dtype)."""
    from .. import cases

    i = np.arange(n, dtype=np.int64)
    out = ((i * 7 + seed * 3 + cases.SALT) % 11 + 1).astype(dt)
    if dt.kind == "c":
        out = out + 1j * ((i + seed) % 5).astype(dt)
    return out


def _ret(buf: Any) -> Any:
    return lambda _returned: buf


# -- communicators: row and column sums through Split ---------------------------------------
def grid_columns(p: int) -> int:
    """Columns of the rank grid of the split_sums cases: 1, 1, 1, 2, 2, 2, 2, 2, 3 (floor of the
    square root), so 3, 5 and 8 ranks have 3 or more rows (a grid of 2 rows hides bugs)."""
    return max(1, int(p ** 0.5))


def _pair(returned: Any) -> np.ndarray:
    if not isinstance(returned, (tuple, list)) or len(returned) != 2:
        raise ValueError(f"return a pair (row_sum, col_sum), not {type(returned).__name__}")
    return np.concatenate([np.asarray(part).reshape(-1) for part in returned])


def _split_sums(comm, case: Case, rank: int, p: int, dt: np.dtype) -> Prepared:
    cols = grid_columns(p)
    every = [_values(r, case.length, dt) for r in range(p)]
    row = sum((every[q] for q in range(p) if q // cols == rank // cols), np.zeros(case.length, dt))
    col = sum((every[q] for q in range(p) if q % cols == rank % cols), np.zeros(case.length, dt))
    return Prepared((every[rank].copy(), cols), {}, _pair, np.concatenate([row, col]).astype(dt))


# -- the 1-D heat equation --------------------------------------------------------------------
def heat_counts(cells: int, p: int) -> list[int]:
    """Cells per rank: uneven, at least one each."""
    weights = [r % 3 + 1 for r in range(p)]
    spare = cells - p
    counts = [1 + spare * w // sum(weights) for w in weights]
    counts[-1] += cells - sum(counts)
    return counts


def heat_initial(cells: int) -> np.ndarray:
    from .. import cases

    i = np.arange(cells)
    return np.sin(np.pi * (i + 1) / (cells + 1)) + ((i + cases.SALT) % 5) * 0.1


def heat_serial(u: np.ndarray, steps: int = HEAT_STEPS, alpha: float = HEAT_ALPHA) -> np.ndarray:
    """The whole rod, `steps` explicit steps, ends held at 0."""
    for _ in range(steps):
        ext = np.concatenate(([0.0], u, [0.0]))
        u = ext[1:-1] + alpha * (ext[:-2] - 2 * ext[1:-1] + ext[2:])
    return u


def _heat(comm, case: Case, rank: int, p: int, dt: np.dtype) -> Prepared:
    cells = max(case.length, p)
    counts = heat_counts(cells, p)
    start = sum(counts[:rank])
    whole = heat_initial(cells)
    mine = slice(start, start + counts[rank])
    exp = heat_serial(whole)[mine]
    return Prepared((whole[mine].copy(), HEAT_STEPS), {"alpha": HEAT_ALPHA}, lambda r: r, exp, exact=False)


# -- a 2-D halo exchange on a periodic Cartesian grid -------------------------------------------
def grid_dims(p: int) -> list[int]:
    from mpi4py import MPI

    return list(MPI.Compute_dims(p, 2))


def _halo2d(comm, case: Case, rank: int, p: int, dt: np.dtype) -> Prepared:
    dims = grid_dims(p)
    nr, nc = case.length, case.length + 1
    rows, cols = dims[0] * nr, dims[1] * nc
    from .. import cases

    world = (np.arange(rows * cols, dtype=np.int64).reshape(rows, cols) + 1 + cases.SALT).astype(dt)
    r0, c0 = (rank // dims[1]) * nr, (rank % dims[1]) * nc
    block = np.zeros((nr + 2, nc + 2), dt)
    block[1:-1, 1:-1] = world[r0:r0 + nr, c0:c0 + nc]
    exp = block.copy()
    if nr and nc:
        exp[0, 1:-1] = world[(r0 - 1) % rows, c0:c0 + nc]
        exp[-1, 1:-1] = world[(r0 + nr) % rows, c0:c0 + nc]
        exp[1:-1, 0] = world[r0:r0 + nr, (c0 - 1) % cols]
        exp[1:-1, -1] = world[r0:r0 + nr, (c0 + nc) % cols]
    return Prepared((block,), {}, lambda r: r, exp)


# -- Iallreduce overlapped with local work ------------------------------------------------------
def _piece(n: int, p: int, rank: int) -> slice:
    counts = uneven_counts(n, p)
    start = sum(counts[:rank])
    return slice(start, start + counts[rank])


def _norm_overlap(comm, case: Case, rank: int, p: int, dt: np.dtype) -> Prepared:
    n = sum(uneven_counts(case.length, p))
    whole = _values(0, n, dt)
    exp = whole / np.sqrt(np.sum(whole * whole))
    mine = _piece(case.length, p, rank)
    rng = np.arange(1000.0)
    work = Work(lambda: float(np.sum(np.sqrt(rng))))
    return Prepared((whole[mine].copy(), work), {}, lambda r: r, exp[mine], exact=False)


# -- derived datatypes ----------------------------------------------------------------------------
def _columns(comm, case: Case, rank: int, p: int, dt: np.dtype) -> Prepared:
    m = case.length
    matrix = _values(case.root, m * p, dt).reshape(m, p)
    column = np.zeros(m, dt)
    return Prepared((matrix.copy() if rank == case.root else None, column), {"root": case.root},
                    _ret(column), matrix[:, rank].copy())


PARTICLE = np.dtype([("id", "i4"), ("x", "f8"), ("y", "f8"), ("mass", "f4")], align=True)


def particles(rank: int, count: int) -> np.ndarray:
    out = np.zeros(count, PARTICLE)
    i = np.arange(count)
    out["id"] = rank * 1000 + i
    out["x"], out["y"], out["mass"] = i * 0.5 + rank, -i * 0.25, (i % 3 + 1) * 1.5
    return out


def _particles(comm, case: Case, rank: int, p: int, dt: np.dtype) -> Prepared:
    counts = uneven_counts(case.length, p)
    every = [particles(r, c) for r, c in enumerate(counts)]
    out = np.zeros(sum(counts), PARTICLE) if rank == case.root else None
    return Prepared((every[rank].copy(), list(counts), out), {"root": case.root}, _ret(out),
                    np.concatenate(every) if rank == case.root else None)


# -- Probe: messages of unknown size --------------------------------------------------------------
def unknown_count(length: int, rank: int) -> int:
    """How many items rank sends (0 for some ranks; the root cannot know it)."""
    return 0 if rank % 3 == 2 else length + (rank * 7) % 5


def _unknown_sizes(comm, case: Case, rank: int, p: int, dt: np.dtype) -> Prepared:
    every = [_values(r, unknown_count(case.length, r), dt) for r in range(p)]
    exp = np.concatenate(every) if rank == case.root else None
    return Prepared((every[rank].copy(),), {"root": case.root}, lambda r: r, exp)


# -- one-sided: Put and Get between fences --------------------------------------------------------
def _rma_put(comm, case: Case, rank: int, p: int, dt: np.dtype) -> Prepared:
    out = np.zeros(case.length, dt)
    return Prepared((_values(rank, case.length, dt), out), {}, _ret(out),
                    _values((rank - 1) % p, case.length, dt))


def _rma_get(comm, case: Case, rank: int, p: int, dt: np.dtype) -> Prepared:
    return _rma_put(comm, case, rank, p, dt)


# -- a whole program: a load-balanced Mandelbrot image ----------------------------------------------
def mandelbrot_row(i: int, height: int, max_iter: int = MAX_ITER) -> np.ndarray:
    """Iterations before escape for row i of a height x (2*height) image of [-2, 1] x [-1, 1]."""
    width = 2 * height
    c = np.linspace(-2.0, 1.0, width) + 1j * (-1.0 + 2.0 * (i + 0.5) / height)
    z = np.zeros(width, complex)
    count = np.zeros(width, np.int32)
    for _ in range(max_iter):
        inside = np.abs(z) <= 2.0
        z[inside] = z[inside] * z[inside] + c[inside]
        count += inside
    return count


def _mandelbrot(comm, case: Case, rank: int, p: int, dt: np.dtype) -> Prepared:
    height = case.length
    exp = None
    if rank == case.root:
        exp = np.array([mandelbrot_row(i, height) for i in range(height)], np.int32).reshape(height, 2 * height)
    return Prepared((height,), {"root": case.root}, lambda r: r, exp)


register("split_sums", _split_sums)
register("heat", _heat, unit="cells", dtype_shown=False)
register("halo2d", _halo2d, unit="rows per block")
register("norm_overlap", _norm_overlap, dtype_shown=False)
register("columns", _columns, rooted=True, unit="rows")
register("particles", _particles, rooted=True, unit="particles per rank", dtype_shown=False)
register("unknown_sizes", _unknown_sizes, rooted=True)
register("rma_put", _rma_put)
register("rma_get", _rma_get)
register("mandelbrot", _mandelbrot, rooted=True, unit="rows", dtype_shown=False)
