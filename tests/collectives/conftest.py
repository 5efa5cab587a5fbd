"""Helpers for the collectives tests that run `pimpi` as a user would."""

from __future__ import annotations

import subprocess

import pytest

from tests.helpers import pimpi

# mpi4py's vendored unittest files run through test_mpi4py_suite_mpi.py, not on their own
collect_ignore = ["mpi4py_suite"]


@pytest.fixture
def pimpi_cli():
    """Run `python -m pimpi ARGS...` with a timeout; returns the CompletedProcess."""
    def run(*args: str, timeout: float = 150) -> subprocess.CompletedProcess:
        return pimpi(*args, timeout=timeout)

    return run
