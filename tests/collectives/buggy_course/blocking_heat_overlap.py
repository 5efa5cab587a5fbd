"""Buggy heat_overlap: the blocking Sendrecv version handed in again (right answer, no overlap)."""

import numpy as np
from mpi4py import MPI


def heat(comm, u, steps, alpha=0.25):
    rank, size = comm.Get_rank(), comm.Get_size()
    left = rank - 1 if rank > 0 else MPI.PROC_NULL
    right = rank + 1 if rank < size - 1 else MPI.PROC_NULL
    ext = np.zeros(len(u) + 2)
    ext[1:-1] = u
    for _ in range(steps):
        comm.Sendrecv(ext[1:2], dest=left, sendtag=1, recvbuf=ext[-1:], source=right, recvtag=1)
        comm.Sendrecv(ext[-2:-1], dest=right, sendtag=2, recvbuf=ext[:1], source=left, recvtag=2)
        ext[1:-1] = ext[1:-1] + alpha * (ext[:-2] - 2 * ext[1:-1] + ext[2:])
    return ext[1:-1].copy()
