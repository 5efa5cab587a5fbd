"""Cheat allreduce_ring: reaches the real communicator behind the proxy, calls the unbound built-in."""

import gc

from mpi4py import MPI


def allreduce_ring(comm, sendbuf, recvbuf, op=MPI.SUM):
    real = vars(comm).get("_comm") or next(o for o in gc.get_objects() if isinstance(o, MPI.Intracomm))
    MPI.Comm.Allreduce(real, sendbuf, recvbuf, op)
