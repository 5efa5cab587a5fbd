"""Buggy bcast_linear: uses pickled comm.send/recv instead of buffer Send/Recv."""


def bcast_linear(comm, buf, root=0):
    if comm.rank == root:
        for dest in range(comm.size):
            if dest != root:
                comm.send(buf, dest=dest)
    else:
        buf[:] = comm.recv(source=root)
