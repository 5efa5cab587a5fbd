"""Helpers for tests that run under mpirun: agree on pass/fail across ranks, so none hangs."""

from __future__ import annotations

from typing import Any

__all__ = ["assert_all_ranks"]


def assert_all_ranks(comm: Any, ok: bool, detail: str = "") -> None:
    """Raise AssertionError on every rank if `ok` is false on any rank.

    A plain `assert` that fails on one rank leaves the others waiting in the
    next collective; this combines the verdict first and names the failing ranks.
    """
    failures = comm.allgather(None if ok else (detail or "assertion failed"))
    bad = [(rank, msg) for rank, msg in enumerate(failures) if msg is not None]
    if bad:
        lines = "; ".join(f"rank {rank}: {msg}" for rank, msg in bad)
        raise AssertionError(f"failed on {len(bad)} of {comm.size} ranks: {lines}")
