"""Buggy column_type: transposes the matrix and sends a row of the copy as Create_vector(1, m, m)."""

import numpy as np
from mpi4py.util.dtlib import from_numpy_dtype


def scatter_columns(comm, matrix, column, root=0):
    rank, size = comm.Get_rank(), comm.Get_size()
    if rank != root:
        comm.Recv(column, source=root, tag=3)
        return
    m = matrix.shape[0]
    rowtype = from_numpy_dtype(matrix.dtype).Create_vector(1, m, m).Commit()
    flipped = np.ascontiguousarray(matrix.T)
    for r in range(size):
        if r == root:
            column[:] = matrix[:, r]
        else:
            comm.Send([flipped[r], 1, rowtype], dest=r, tag=3)
    rowtype.Free()
