"""Buggy iallreduce_overlap: waits for the reduction before doing the work (nothing overlaps)."""

import numpy as np
from mpi4py import MPI


def normalize(comm, x, work):
    local = np.array([np.dot(x, x)])
    total = np.zeros(1)
    req = comm.Iallreduce(local, total, op=MPI.SUM)
    req.Wait()
    work()
    return x / np.sqrt(total[0])
