"""Reference solution for allreduce_ring: the library's ring allreduce."""

from mpi4py import MPI

from pimpi.collectives import allreduce


def allreduce_ring(comm, sendbuf, recvbuf, op=MPI.SUM):
    allreduce(comm, sendbuf, recvbuf, op=op, algorithm="ring")
