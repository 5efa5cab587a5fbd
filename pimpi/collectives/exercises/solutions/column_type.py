"""Reference solution for column_type: each column described by a vector datatype, sent from the matrix."""

from mpi4py.util.dtlib import from_numpy_dtype


def scatter_columns(comm, matrix, column, root=0):
    rank, size = comm.Get_rank(), comm.Get_size()
    if rank != root:
        comm.Recv(column, source=root, tag=3)
        return
    m = matrix.shape[0]
    coltype = from_numpy_dtype(matrix.dtype).Create_vector(m, 1, size).Commit()
    flat = matrix.reshape(-1)
    for r in range(size):
        if r == root:
            column[:] = matrix[:, r]
        else:
            comm.Send([flat[r:], 1, coltype], dest=r, tag=3)
    coltype.Free()
