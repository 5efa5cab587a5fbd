"""Buggy bcast_linear: assumes the root is always rank 0."""


def bcast_linear(comm, buf, root=0):
    if comm.Get_rank() == 0:
        for dest in range(1, comm.Get_size()):
            comm.Send(buf, dest=dest)
    else:
        comm.Recv(buf, source=0)
