"""The library never imports the teaching package, and trace's rooms import cleanly on their own."""

from __future__ import annotations

import subprocess
import sys


def test_library_and_trace_do_not_import_the_exercises():
    code = ("import sys, pimpi.collectives, pimpi.collectives.trace, pimpi.collectives.cases; "
            "print(sorted(m for m in sys.modules if 'exercises' in m))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]", out.stdout
