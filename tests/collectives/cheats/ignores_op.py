"""Buggy reduce_tree: always adds, whatever op it is given (only SUM cases pass)."""

import numpy as np
from mpi4py import MPI


def reduce_tree(comm, sendbuf, recvbuf, op=MPI.SUM, root=0):
    rank, size = comm.Get_rank(), comm.Get_size()
    vrank = (rank - root) % size
    acc = sendbuf.copy()
    tmp = np.empty_like(acc)
    mask = 1
    while mask < size:
        if vrank & mask:
            comm.Send(acc, dest=(vrank - mask + root) % size)
            break
        if vrank + mask < size:
            comm.Recv(tmp, source=(vrank + mask + root) % size)
            acc += tmp  # bug: ignores op
        mask <<= 1
    if rank == root:
        recvbuf[:] = acc
