"""Atomic file output for render code (kept for its import path; see pimpi.fileio)."""

from pimpi.fileio import atomic_write

__all__ = ["atomic_write"]
