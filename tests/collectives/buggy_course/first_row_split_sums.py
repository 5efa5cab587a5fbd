"""Buggy split_sums: the row is 'first row or not' (rank >= ncols), right only while there are 2 rows."""

import numpy as np
from mpi4py import MPI


def split_sums(comm, x, ncols):
    rank = comm.Get_rank()
    row_comm = comm.Split(color=int(rank >= ncols), key=rank)  # BUG: rows 1, 2, ... become one
    col_comm = comm.Split(color=rank % ncols, key=rank)
    row_sum, col_sum = np.zeros_like(x), np.zeros_like(x)
    row_comm.Allreduce(x, row_sum, op=MPI.SUM)
    col_comm.Allreduce(x, col_sum, op=MPI.SUM)
    row_comm.Free()
    col_comm.Free()
    return row_sum, col_sum
