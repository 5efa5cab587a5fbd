"""Buggy mandelbrot: an off-by-one in the manager loop never hands out the last row."""

import numpy as np
from mpi4py import MPI

from pimpi.collectives.exercises.kinds import mandelbrot_row


def mandelbrot(comm, height, root=0):
    rank, size = comm.Get_rank(), comm.Get_size()
    stop = height
    if rank != root:
        row = np.zeros(1, np.int64)
        status = MPI.Status()
        while True:
            comm.Recv(row, source=root, tag=MPI.ANY_TAG, status=status)
            if status.Get_tag() == stop:
                return None
            comm.Send(mandelbrot_row(int(row[0]), height), dest=root, tag=int(row[0]))
    image = np.zeros((height, 2 * height), np.int32)
    last = height - 1  # BUG: rows 0 .. height-2 only
    if size == 1:
        for i in range(last):
            image[i] = mandelbrot_row(i, height)
        return image
    next_row, busy = 0, 0
    for worker in (r for r in range(size) if r != root):
        if next_row < last:
            comm.Send(np.array([next_row], np.int64), dest=worker, tag=next_row)
            next_row, busy = next_row + 1, busy + 1
        else:
            comm.Send(np.zeros(1, np.int64), dest=worker, tag=stop)
    status, result = MPI.Status(), np.zeros(2 * height, np.int32)
    while busy:
        comm.Recv(result, source=MPI.ANY_SOURCE, tag=MPI.ANY_TAG, status=status)
        image[status.Get_tag()] = result
        if next_row < last:
            comm.Send(np.array([next_row], np.int64), dest=status.Get_source(), tag=next_row)
            next_row += 1
        else:
            comm.Send(np.zeros(1, np.int64), dest=status.Get_source(), tag=stop)
            busy -= 1
    return image
