"""Buggy rma_fence: put_right is right, but get_left reads the RIGHT neighbour's window."""

from mpi4py import MPI


def put_right(comm, x, out):
    win = MPI.Win.Create(out, disp_unit=out.itemsize, comm=comm)
    win.Fence()
    win.Put(x, (comm.Get_rank() + 1) % comm.Get_size())
    win.Fence()
    win.Free()


def get_left(comm, x, out):
    win = MPI.Win.Create(x, disp_unit=x.itemsize, comm=comm)
    win.Fence()
    win.Get(out, (comm.Get_rank() + 1) % comm.Get_size())  # BUG: that is the right neighbour
    win.Fence()
    win.Free()
