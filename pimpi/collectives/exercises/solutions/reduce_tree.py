"""Reference solution for reduce_tree: the library's binomial reduce."""

from mpi4py import MPI

from pimpi.collectives import reduce


def reduce_tree(comm, sendbuf, recvbuf, op=MPI.SUM, root=0):
    reduce(comm, sendbuf, recvbuf, op=op, root=root, algorithm="binomial")
