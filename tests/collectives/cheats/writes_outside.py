"""Cheat bcast_linear: the root leaves the data in a file for the other ranks (a shared folder
outside its own), which they read instead of receiving a message."""

import os
import time

import numpy as np


def bcast_linear(comm, buf, root=0):
    shared = os.path.join(os.path.dirname(os.getcwd()), "shared.npy")
    if comm.Get_rank() == root:
        np.save(shared, buf)
        return
    for _ in range(100):
        if os.path.exists(shared):
            buf[:] = np.load(shared)
            return
        time.sleep(0.01)
