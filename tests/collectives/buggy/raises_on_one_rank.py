"""Buggy reduce_tree: rank 1 crashes while the others wait for its message."""

import numpy as np
from mpi4py import MPI


def reduce_tree(comm, sendbuf, recvbuf, op=MPI.SUM, root=0):
    rank, size = comm.Get_rank(), comm.Get_size()
    if rank == 1:
        raise IndexError("chunk index out of range")
    if rank == root:
        recvbuf[:] = sendbuf
        tmp = np.empty_like(recvbuf)
        for src in range(size):
            if src != root:
                comm.Recv(tmp, source=src)
                recvbuf += tmp
    else:
        comm.Send(sendbuf, dest=root)
