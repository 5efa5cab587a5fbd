"""Buggy cart_halo: the right halo, but neighbours computed by hand, not with a Cartesian communicator."""

import numpy as np
from mpi4py import MPI


def halo_exchange(comm, block):
    rank, size = comm.Get_rank(), comm.Get_size()
    rows, cols = MPI.Compute_dims(size, 2)
    r, c = divmod(rank, cols)
    up, down = ((r - 1) % rows) * cols + c, ((r + 1) % rows) * cols + c
    left, right = r * cols + (c - 1) % cols, r * cols + (c + 1) % cols
    inner = block[1:-1, 1:-1]
    for data, dest, ghost, source in ((inner[0], up, block[-1, 1:-1], down),
                                      (inner[-1], down, block[0, 1:-1], up),
                                      (inner[:, 0], left, block[1:-1, -1], right),
                                      (inner[:, -1], right, block[1:-1, 0], left)):
        recv = np.empty_like(ghost)
        comm.Sendrecv(np.ascontiguousarray(data), dest=dest, recvbuf=recv, source=source)
        ghost[:] = recv
    return block
