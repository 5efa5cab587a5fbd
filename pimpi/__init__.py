"""pimpi: turn a handful of Raspberry Pis (or any Linux boxes) into a working MPI cluster."""

__version__ = "0.1.0"
__all__ = ["__version__"]
