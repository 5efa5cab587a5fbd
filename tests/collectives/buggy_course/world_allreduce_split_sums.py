"""Buggy split_sums: reduces on the whole communicator (masking other rows' values) instead of splitting it."""

import numpy as np
from mpi4py import MPI


def split_sums(comm, x, ncols):
    rank, size = comm.Get_rank(), comm.Get_size()
    row_sum, col_sum = np.zeros_like(x), np.zeros_like(x)
    for r in range(size):
        mine = x if r == rank else np.zeros_like(x)
        total = np.zeros_like(x)
        comm.Allreduce(mine, total, op=MPI.SUM)
        if r // ncols == rank // ncols:
            row_sum += total
        if r % ncols == rank % ncols:
            col_sum += total
    return row_sum, col_sum
