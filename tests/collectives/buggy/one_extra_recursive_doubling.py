"""Buggy allreduce_recursive_doubling: folds exactly one extra rank in, whatever size - p2 is; right at
3 and 5 ranks (one extra), wrong at 6 and 7 (the ranks past the fold never take part)."""

import numpy as np
from mpi4py import MPI


def allreduce_recursive_doubling(comm, sendbuf, recvbuf, op=MPI.SUM):
    rank, size = comm.Get_rank(), comm.Get_size()
    p2 = 1
    while p2 * 2 <= size:
        p2 *= 2
    extra = 1 if size > p2 else 0  # BUG: size - p2 ranks are extra, not one
    recvbuf[:] = sendbuf
    if rank < 2 * extra:  # rank 0 hands its data to rank 1
        if rank == 0:
            comm.Send(sendbuf, 1, tag=7)
            comm.Recv(recvbuf, 1, tag=7)
            return
        incoming = np.empty_like(sendbuf)
        comm.Recv(incoming, 0, tag=7)
        op.Reduce_local(incoming, recvbuf)
    newrank = rank - extra if rank >= 2 * extra else 0
    if newrank >= p2:
        return
    tmp = np.empty_like(sendbuf)
    mask = 1
    while mask < p2:
        partner = newrank ^ mask
        real = (partner + extra if partner > 0 else 1) if extra else partner
        comm.Sendrecv(recvbuf.copy(), real, 7, tmp, real, 7)
        if partner < newrank:
            op.Reduce_local(tmp, recvbuf)
        else:
            op.Reduce_local(recvbuf, tmp)
            recvbuf[:] = tmp
        mask <<= 1
    if extra and rank == 1:
        comm.Send(recvbuf, 0, tag=7)
