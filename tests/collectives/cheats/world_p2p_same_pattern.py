"""Cheat bcast_linear: sends the right messages on `comm` (empty ones) but moves the data on
MPI.COMM_WORLD, so the recorded pattern looks right while the real traffic is elsewhere."""

import numpy as np
from mpi4py import MPI


def bcast_linear(comm, buf, root=0):
    world = MPI.COMM_WORLD
    empty = np.zeros(0, buf.dtype)
    if comm.Get_rank() == root:
        for dest in range(comm.Get_size()):
            if dest != root:
                comm.Send(empty, dest=dest)
                world.Send(buf, dest=dest, tag=5)
    else:
        comm.Recv(empty, source=root)
        world.Recv(buf, source=root, tag=5)
