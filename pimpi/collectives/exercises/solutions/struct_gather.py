"""Reference solution for struct_gather: one particle described as a struct datatype, gathered by Send/Recv."""

from mpi4py import MPI


def particle_type(dtype):
    """The MPI struct datatype of one record of `dtype` (fields id, x, y, mass), padding included."""
    names = ["id", "x", "y", "mass"]
    types = [MPI.INT32_T, MPI.DOUBLE, MPI.DOUBLE, MPI.FLOAT]
    displs = [dtype.fields[n][1] for n in names]
    struct = MPI.Datatype.Create_struct([1] * len(names), displs, types)
    resized = struct.Create_resized(0, dtype.itemsize).Commit()
    struct.Free()
    return resized


def gather_particles(comm, particles, counts, out, root=0):
    rank, size = comm.Get_rank(), comm.Get_size()
    ptype = particle_type(particles.dtype)
    if rank != root:
        if counts[rank]:
            comm.Send([particles, counts[rank], ptype], dest=root, tag=5)
    else:
        start = 0
        for r in range(size):
            if r == root:
                out[start:start + counts[r]] = particles
            elif counts[r]:
                comm.Recv([out[start:start + counts[r]], counts[r], ptype], source=r, tag=5)
            start += counts[r]
    ptype.Free()
