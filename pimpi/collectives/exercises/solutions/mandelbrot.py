"""Reference solution for mandelbrot: root hands out rows one at a time; workers ask for more by answering."""

import numpy as np
from mpi4py import MPI

from pimpi.collectives.exercises.kinds import mandelbrot_row


def mandelbrot(comm, height, root=0):
    rank, size = comm.Get_rank(), comm.Get_size()
    stop = height  # a tag no row uses
    if size == 1:
        return np.array([mandelbrot_row(i, height) for i in range(height)], np.int32).reshape(height, 2 * height)
    if rank != root:
        row = np.zeros(1, np.int64)
        status = MPI.Status()
        while True:
            comm.Recv(row, source=root, tag=MPI.ANY_TAG, status=status)
            if status.Get_tag() == stop:
                return None
            i = int(row[0])
            comm.Send(mandelbrot_row(i, height), dest=root, tag=i)
    image = np.zeros((height, 2 * height), np.int32)
    workers = [r for r in range(size) if r != root]
    next_row, busy = 0, 0
    for worker in workers:  # a first row each, or stop when there are more workers than rows
        if next_row < height:
            comm.Send(np.array([next_row], np.int64), dest=worker, tag=next_row)
            next_row, busy = next_row + 1, busy + 1
        else:
            comm.Send(np.zeros(1, np.int64), dest=worker, tag=stop)
    status = MPI.Status()
    result = np.zeros(2 * height, np.int32)
    while busy:
        comm.Recv(result, source=MPI.ANY_SOURCE, tag=MPI.ANY_TAG, status=status)
        image[status.Get_tag()] = result
        worker = status.Get_source()
        if next_row < height:
            comm.Send(np.array([next_row], np.int64), dest=worker, tag=next_row)
            next_row += 1
        else:
            comm.Send(np.zeros(1, np.int64), dest=worker, tag=stop)
            busy -= 1
    return image
