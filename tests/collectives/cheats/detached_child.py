"""Cheat bcast_linear: starts a detached child (its own session) that keeps the rank's stdout and
stderr open for a long time; the grade must still end, and the child with it."""

import subprocess
import sys

from pimpi.collectives import bcast


def bcast_linear(comm, buf, root=0):
    subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)", "pimpi-detached-child"], start_new_session=True,
                     stdin=subprocess.DEVNULL)
    bcast(comm, buf, root=root, algorithm="linear")
