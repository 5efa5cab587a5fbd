"""Buggy allreduce_recursive_doubling: accumulates into the caller's sendbuf (it must stay unchanged)."""

import numpy as np
from mpi4py import MPI


def allreduce_recursive_doubling(comm, sendbuf, recvbuf, op=MPI.SUM):
    rank, size = comm.Get_rank(), comm.Get_size()
    tmp = np.empty_like(sendbuf)
    mask = 1
    p2 = 1 << (size.bit_length() - 1)
    if size != p2:  # keep it simple: fold by a linear reduce + bcast through rank 0
        if rank == 0:
            for src in range(1, size):
                comm.Recv(tmp, source=src)
                op.Reduce_local(tmp, sendbuf)
            for dest in range(1, size):
                comm.Send(sendbuf, dest=dest)
        else:
            comm.Send(sendbuf, dest=0)
            comm.Recv(sendbuf, source=0)
        recvbuf[:] = sendbuf
        return
    while mask < size:
        partner = rank ^ mask
        comm.Sendrecv(sendbuf, partner, recvbuf=tmp, source=partner)
        if partner < rank:
            op.Reduce_local(tmp, sendbuf)
        else:
            tmp2 = sendbuf.copy()
            sendbuf[:] = tmp
            op.Reduce_local(tmp2, sendbuf)
        mask <<= 1
    recvbuf[:] = sendbuf
