"""pimpi: turn a handful of Raspberry Pis (or any Linux boxes) into a working MPI cluster.

The shared plumbing sits at the top, one mechanism each: `fileio` (atomic writes),
`procs` (running programs in their own process group), `mpi` (lazy MPI, waiting without
spinning, agreeing on errors), `cliutil` (shared click options and the error edge), and
`tasks/` (the dynamic task farm). The capabilities build on them: `cluster/`,
`collectives/`, `render/`, `bench/`; `cli.py` assembles their commands.
"""

__version__ = "0.1.0"
__all__ = ["__version__"]
