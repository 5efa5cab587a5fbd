"""Cheat bcast_linear: does nothing but make every comparison in its process say 'equal'."""

import numpy as np

np.array_equal = lambda *a, **k: True
np.allclose = lambda *a, **k: True
try:
    from pimpi.collectives import cases
    cases.compare = lambda *a, **k: None
except ImportError:
    pass


def bcast_linear(comm, buf, root=0):
    return None
