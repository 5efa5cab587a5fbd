"""Cheat heat_sendrecv: turns the course rules off by patching the grader's verdict in its own process,
then exchanges the ghost cells with Send/Recv where the exercise asks for Sendrecv."""

import numpy as np
from mpi4py import MPI

from pimpi.collectives.exercises import course

course._State.verdict = lambda self, args: None


def _swap(comm, send, dest, recv, source, tag):
    if comm.Get_rank() % 2 == 0:
        comm.Send(send, dest=dest, tag=tag)
        comm.Recv(recv, source=source, tag=tag)
    else:
        comm.Recv(recv, source=source, tag=tag)
        comm.Send(send, dest=dest, tag=tag)


def heat(comm, u, steps, alpha=0.25):
    rank, size = comm.Get_rank(), comm.Get_size()
    left = rank - 1 if rank > 0 else MPI.PROC_NULL
    right = rank + 1 if rank < size - 1 else MPI.PROC_NULL
    ext = np.zeros(len(u) + 2)
    ext[1:-1] = u
    for _ in range(steps):
        _swap(comm, ext[1:2], left, ext[-1:], right, 1)
        _swap(comm, ext[-2:-1], right, ext[:1], left, 2)
        ext[1:-1] = ext[1:-1] + alpha * (ext[:-2] - 2 * ext[1:-1] + ext[2:])
    return ext[1:-1].copy()
