"""Buggy ring_pass: every rank receives first, so nobody ever sends (deadlock)."""

import numpy as np


def ring_pass(comm, buf, root=0):
    rank, size = comm.Get_rank(), comm.Get_size()
    if size == 1:
        return
    comm.Recv(buf, source=(rank - 1) % size)  # bug: root should send first
    if rank != root:
        np.add(buf, rank, out=buf, casting="unsafe")
        comm.Send(buf, dest=(rank + 1) % size)
