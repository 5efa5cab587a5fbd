"""Reference solution for bcast_binomial: the library's binomial bcast."""

from pimpi.collectives import bcast


def bcast_binomial(comm, buf, root=0):
    bcast(comm, buf, root=root, algorithm="binomial")
