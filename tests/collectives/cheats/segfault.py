"""Buggy bcast_linear: rank 1 reads memory at address 0 (a segmentation fault)."""

import ctypes

from pimpi.collectives import bcast


def bcast_linear(comm, buf, root=0):
    if comm.Get_rank() == 1:
        ctypes.string_at(0)
    bcast(comm, buf, root=root, algorithm="linear")
