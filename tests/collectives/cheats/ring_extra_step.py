"""Wrong allreduce_ring: a correct ring, then one extra pass of every chunk around the ring."""

import numpy as np
from mpi4py import MPI

from pimpi.collectives import allreduce


def allreduce_ring(comm, sendbuf, recvbuf, op=MPI.SUM):
    allreduce(comm, sendbuf, recvbuf, op=op, algorithm="ring")
    rank, size = comm.Get_rank(), comm.Get_size()
    if size > 1:  # one more step: send the result right, receive (the same) from the left
        got = np.empty_like(recvbuf)
        comm.Sendrecv(recvbuf, (rank + 1) % size, recvbuf=got, source=(rank - 1) % size)
