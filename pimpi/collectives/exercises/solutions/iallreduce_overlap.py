"""Reference solution for iallreduce_overlap: start the reduction, work, then wait."""

import numpy as np
from mpi4py import MPI


def normalize(comm, x, work):
    local = np.array([np.dot(x, x)])
    total = np.zeros(1)
    req = comm.Iallreduce(local, total, op=MPI.SUM)
    work()  # runs while the reduction travels
    req.Wait()
    return x / np.sqrt(total[0])
