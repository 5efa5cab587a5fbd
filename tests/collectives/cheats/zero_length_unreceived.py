"""Buggy scatterv_gatherv: root sends zero-length pieces too, but their ranks never receive them."""

import numpy as np


def scatterv(comm, sendbuf, counts, recvbuf, root=0):
    rank, size = comm.Get_rank(), comm.Get_size()
    displs = [0] + [int(d) for d in np.cumsum(counts)[:-1]]
    if rank == root:
        for r in range(size):
            piece = sendbuf[displs[r]:displs[r] + counts[r]]
            if r == root:
                recvbuf[:] = piece
            else:
                comm.Send(np.ascontiguousarray(piece), dest=r)  # also when counts[r] == 0
    elif counts[rank]:  # bug: a zero count is never received
        comm.Recv(recvbuf, source=root)


def gatherv(comm, sendbuf, recvbuf, counts, root=0):
    rank, size = comm.Get_rank(), comm.Get_size()
    displs = [0] + [int(d) for d in np.cumsum(counts)[:-1]]
    if rank != root:
        if counts[rank]:
            comm.Send(sendbuf, dest=root)
        return
    for r in range(size):
        piece = recvbuf[displs[r]:displs[r] + counts[r]]
        if r == root:
            piece[:] = sendbuf
        elif counts[r]:
            comm.Recv(piece, source=r)
