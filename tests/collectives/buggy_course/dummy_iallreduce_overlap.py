"""Buggy iallreduce_overlap: waits for the real reduction first, then keeps a zero-length dummy
Iallreduce in flight while work() runs."""

import numpy as np
from mpi4py import MPI


def normalize(comm, x, work):
    local = np.array([np.dot(x, x)])
    total = np.zeros(1)
    comm.Iallreduce(local, total, op=MPI.SUM).Wait()
    dummy = comm.Iallreduce(np.zeros(0), np.zeros(0), op=MPI.SUM)
    work()
    dummy.Wait()
    return x / np.sqrt(total[0])
