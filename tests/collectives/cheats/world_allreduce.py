"""Cheat allreduce_ring: calls the built-in Allreduce on MPI.COMM_WORLD, around the grader's comm."""

from mpi4py import MPI


def allreduce_ring(comm, sendbuf, recvbuf, op=MPI.SUM):
    MPI.COMM_WORLD.Allreduce(sendbuf, recvbuf, op=op)
