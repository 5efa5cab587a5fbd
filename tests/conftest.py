"""Shared test setup: quiet non-zero ranks under mpirun, and the root/namespace skip rule."""

from __future__ import annotations

import os
import sys
import tempfile

import pytest

from pimpi.mpi import env_rank as _mpi_rank

IN_CI = os.environ.get("CI", "").lower() == "true"


@pytest.hookimpl(trylast=True)
def pytest_configure(config: pytest.Config) -> None:
    """Under mpirun only rank 0's report is shown; other ranks keep theirs in a file
    and print it to stderr only when they failed."""
    rank = _mpi_rank()
    if rank == 0 or not config.getoption("--with-mpi", default=False):
        return
    from _pytest.terminal import TerminalReporter

    log = tempfile.NamedTemporaryFile("w+", prefix=f"pimpi-rank{rank}-", suffix=".log", delete=False)
    config._pimpi_rank_log = log  # type: ignore[attr-defined]
    old = config.pluginmanager.get_plugin("terminalreporter")
    if old is not None:
        config.pluginmanager.unregister(old, "terminalreporter")
    config.pluginmanager.register(TerminalReporter(config, log), "terminalreporter")


def pytest_unconfigure(config: pytest.Config) -> None:
    log = getattr(config, "_pimpi_rank_log", None)
    if log is None:
        return
    failed = getattr(config, "_pimpi_failed", False)
    log.seek(0)
    text = log.read()
    log.close()
    os.unlink(log.name)
    if failed:
        sys.stderr.write(f"\n===== report of rank {_mpi_rank()} (failed) =====\n{text}\n")
        sys.stderr.flush()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    session.config._pimpi_failed = exitstatus not in (0, 5)  # type: ignore[attr-defined]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """`root` tests need root and network namespaces: skip on a laptop, never in CI."""
    if os.geteuid() == 0 or IN_CI:  # in CI they run, and fail if they cannot
        return
    skip = pytest.mark.skip(reason="needs root (network namespaces); runs in CI")
    for item in items:
        if "root" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def comm():
    """MPI.COMM_WORLD for tests marked `mpi`."""
    from mpi4py import MPI

    return MPI.COMM_WORLD


@pytest.fixture
def shared_tmp_path(comm, tmp_path_factory):
    """One temp folder for all ranks (rank 0's), for tests on one machine or shared storage."""
    path = str(tmp_path_factory.mktemp("shared")) if comm.rank == 0 else None
    from pathlib import Path

    return Path(comm.bcast(path, root=0))
