"""Buggy cart_halo: left and right swapped in the column exchange; with 1 or 2 process columns the
left and right neighbour are the same rank, so only a grid of 3 or more columns shows it."""

import numpy as np
from mpi4py import MPI


def halo_exchange(comm, block):
    dims = MPI.Compute_dims(comm.Get_size(), 2)
    cart = comm.Create_cart(dims, periods=[True, True], reorder=False)
    up, down = cart.Shift(0, 1)
    right, left = cart.Shift(1, 1)  # BUG: Shift returns (source, dest) = (left, right)
    inner = block[1:-1, 1:-1]
    for data, dest, ghost, source in ((inner[0], up, block[-1, 1:-1], down),
                                      (inner[-1], down, block[0, 1:-1], up),
                                      (inner[:, 0], left, block[1:-1, -1], right),
                                      (inner[:, -1], right, block[1:-1, 0], left)):
        recv = np.empty_like(ghost)
        cart.Sendrecv(np.ascontiguousarray(data), dest=dest, recvbuf=recv, source=source)
        ghost[:] = recv
    cart.Free()
    return block
