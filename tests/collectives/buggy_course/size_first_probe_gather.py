"""Buggy probe_gather: sends the size first, then the data (two messages where Probe needs one)."""

import numpy as np


def probe_gather(comm, data, root=0):
    rank, size = comm.Get_rank(), comm.Get_size()
    if rank != root:
        comm.Send(np.array([data.size], np.int64), dest=root, tag=1)
        comm.Send(data, dest=root, tag=2)
        return None
    pieces = []
    for r in range(size):
        if r == root:
            pieces.append(data)
            continue
        n = np.zeros(1, np.int64)
        comm.Recv(n, source=r, tag=1)
        buf = np.empty(int(n[0]), data.dtype)
        comm.Recv(buf, source=r, tag=2)
        pieces.append(buf)
    return np.concatenate(pieces)
