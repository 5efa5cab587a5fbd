"""Reference solution for bcast_linear: the library's linear bcast."""

from pimpi.collectives import bcast


def bcast_linear(comm, buf, root=0):
    bcast(comm, buf, root=root, algorithm="linear")
