"""Buggy bcast_linear: the root ends with SystemExit(0) after sending, as a script would."""

from pimpi.collectives import bcast


def bcast_linear(comm, buf, root=0):
    bcast(comm, buf, root=root, algorithm="linear")
    if comm.Get_rank() == root:
        raise SystemExit(0)
