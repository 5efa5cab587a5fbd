"""Buggy heat_sendrecv: one token Sendrecv to MPI.PROC_NULL meets "calls Sendrecv", while the ghost cells go by Send/Recv."""

import numpy as np
from mpi4py import MPI


def heat(comm, u, steps, alpha=0.25):
    rank, size = comm.Get_rank(), comm.Get_size()
    left = rank - 1 if rank > 0 else MPI.PROC_NULL
    right = rank + 1 if rank < size - 1 else MPI.PROC_NULL
    comm.Sendrecv(np.zeros(1), dest=MPI.PROC_NULL, recvbuf=np.zeros(1), source=MPI.PROC_NULL)  # the token
    ext = np.zeros(len(u) + 2)
    ext[1:-1] = u
    for _ in range(steps):
        reqs = [comm.Isend(ext[1:2].copy(), dest=left, tag=1), comm.Isend(ext[-2:-1].copy(), dest=right, tag=2)]
        comm.Recv(ext[-1:], source=right, tag=1)
        comm.Recv(ext[:1], source=left, tag=2)
        MPI.Request.Waitall(reqs)
        ext[1:-1] = ext[1:-1] + alpha * (ext[:-2] - 2 * ext[1:-1] + ext[2:])
    return ext[1:-1].copy()
