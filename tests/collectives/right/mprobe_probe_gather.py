"""A right probe_gather with a matched probe: comm.Mprobe, then msg.Recv (allowed by the rules)."""

import numpy as np
from mpi4py import MPI
from mpi4py.util.dtlib import from_numpy_dtype


def probe_gather(comm, data, root=0):
    rank, size = comm.Get_rank(), comm.Get_size()
    if rank != root:
        comm.Send(data, dest=root, tag=7)
        return None
    mpitype = from_numpy_dtype(data.dtype)
    pieces = {root: data}
    status = MPI.Status()
    for _ in range(size - 1):
        msg = comm.Mprobe(source=MPI.ANY_SOURCE, tag=7, status=status)
        buf = np.empty(status.Get_count(mpitype), data.dtype)
        msg.Recv(buf)
        pieces[status.Get_source()] = buf
    return np.concatenate([pieces[r] for r in range(size)])
