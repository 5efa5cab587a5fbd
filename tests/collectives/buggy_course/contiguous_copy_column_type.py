"""Buggy column_type: a copied column sent with a derived (but contiguous) datatype."""

import numpy as np
from mpi4py.util.dtlib import from_numpy_dtype


def scatter_columns(comm, matrix, column, root=0):
    rank, size = comm.Get_rank(), comm.Get_size()
    if rank != root:
        comm.Recv(column, source=root, tag=3)
        return
    m = matrix.shape[0]
    contiguous = from_numpy_dtype(matrix.dtype).Create_contiguous(m).Commit()
    for r in range(size):
        if r == root:
            column[:] = matrix[:, r]
        else:
            comm.Send([np.ascontiguousarray(matrix[:, r]), 1, contiguous], dest=r, tag=3)
    contiguous.Free()
