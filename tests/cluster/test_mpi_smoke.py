"""The MPI harness itself: tests really run under mpirun, at the size it was started with."""

from __future__ import annotations

import os

import numpy as np
import pytest

from pimpi.testing import assert_all_ranks


@pytest.mark.mpi
def test_world_size_matches_mpirun(comm):
    assert comm.size == int(os.environ.get("OMPI_COMM_WORLD_SIZE", comm.size))
    ranks = np.zeros(comm.size, dtype=np.int64)
    comm.Allgather(np.array([comm.rank], dtype=np.int64), ranks)
    assert_all_ranks(comm, ranks.tolist() == list(range(comm.size)), f"got {ranks}")


@pytest.mark.mpi(min_size=2)
def test_shared_tmp_path_is_one_folder(comm, shared_tmp_path):
    (shared_tmp_path / f"r{comm.rank}").write_text("x")
    comm.Barrier()
    names = sorted(p.name for p in shared_tmp_path.iterdir())
    assert_all_ranks(comm, names == sorted(f"r{r}" for r in range(comm.size)), f"{names}")
