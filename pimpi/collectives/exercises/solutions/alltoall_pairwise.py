"""Reference solution for alltoall_pairwise: the library's pairwise alltoall."""

from pimpi.collectives import alltoall


def alltoall_pairwise(comm, sendbuf, recvbuf):
    alltoall(comm, sendbuf, recvbuf, algorithm="pairwise")
