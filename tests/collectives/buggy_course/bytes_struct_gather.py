"""Buggy struct_gather: ships the records as raw bytes instead of describing them with a struct datatype."""

from mpi4py import MPI


def gather_particles(comm, particles, counts, out, root=0):
    rank, size = comm.Get_rank(), comm.Get_size()
    if rank != root:
        if counts[rank]:
            comm.Send([particles.view("u1"), MPI.BYTE], dest=root, tag=5)
        return
    start = 0
    for r in range(size):
        if r == root:
            out[start:start + counts[r]] = particles
        elif counts[r]:
            comm.Recv([out[start:start + counts[r]].view("u1"), MPI.BYTE], source=r, tag=5)
        start += counts[r]
