"""Buggy mandelbrot: the right image, but rows split statically (rank r takes rows r, r+p, ...), no manager."""

import numpy as np

from pimpi.collectives.exercises.kinds import mandelbrot_row


def mandelbrot(comm, height, root=0):
    rank, size = comm.Get_rank(), comm.Get_size()
    mine = np.array([mandelbrot_row(i, height) for i in range(rank, height, size)], np.int32)
    if rank != root:
        if len(mine):
            comm.Send(mine, dest=root, tag=1)
        return None
    image = np.zeros((height, 2 * height), np.int32)
    image[rank::size] = mine.reshape(-1, 2 * height)
    for r in range(size):
        rows = len(range(r, height, size))
        if r != root and rows:
            part = np.zeros((rows, 2 * height), np.int32)
            comm.Recv(part, source=r, tag=1)
            image[r::size] = part
    return image
