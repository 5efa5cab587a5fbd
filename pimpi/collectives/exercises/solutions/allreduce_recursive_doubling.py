"""Reference solution for allreduce_recursive_doubling: the library's recursive_doubling allreduce."""

from mpi4py import MPI

from pimpi.collectives import allreduce


def allreduce_recursive_doubling(comm, sendbuf, recvbuf, op=MPI.SUM):
    allreduce(comm, sendbuf, recvbuf, op=op, algorithm="recursive_doubling")
