"""Buggy bcast_linear: non-root ranks post an Irecv and return without waiting for it (a race)."""


def bcast_linear(comm, buf, root=0):
    if comm.Get_rank() == root:
        for dest in range(comm.Get_size()):
            if dest != root:
                comm.Send(buf, dest=dest)
    else:
        comm.Irecv(buf, source=root)  # bug: no Wait
