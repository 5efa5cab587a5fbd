"""Wrong algorithm for allreduce_ring: everything to rank 0, which sends the result back (correct result)."""

import numpy as np
from mpi4py import MPI


def allreduce_ring(comm, sendbuf, recvbuf, op=MPI.SUM):
    rank, size = comm.Get_rank(), comm.Get_size()
    recvbuf[:] = sendbuf
    if rank == 0:
        tmp = np.empty_like(sendbuf)
        for src in range(1, size):
            comm.Recv(tmp, source=src)
            op.Reduce_local(tmp, recvbuf)  # tmp op acc: rank order is kept only for src < rank...
        for dest in range(1, size):
            comm.Send(recvbuf, dest=dest)
    else:
        comm.Send(sendbuf, dest=0)
        comm.Recv(recvbuf, source=0)
