"""Reference solution for scatterv_gatherv: the library's linear scatterv and gatherv."""

from pimpi.collectives import gatherv as _gatherv
from pimpi.collectives import scatterv as _scatterv


def scatterv(comm, sendbuf, counts, recvbuf, root=0):
    _scatterv(comm, sendbuf, counts, recvbuf, root=root)


def gatherv(comm, sendbuf, recvbuf, counts, root=0):
    _gatherv(comm, sendbuf, recvbuf, counts, root=root)
