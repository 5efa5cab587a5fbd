"""`pimpi --help`, a command's --help and usage errors load neither NumPy nor MPI.

On a Pi Zero 2 importing NumPy alone takes seconds: help and a mistyped option must answer
at once. Each case runs the real `python -m pimpi` in a fresh interpreter and lists what it
imported (no timing here: speed is not asserted in tests).
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.timeout(240)

_WRAPPER = """
import json, runpy, sys
out = sys.argv.pop(1)
code = None
try:
    runpy.run_module("pimpi", run_name="__main__", alter_sys=True)
except SystemExit as exc:
    code = exc.code
with open(out, "w") as handle:
    json.dump({"code": code, "modules": sorted(sys.modules)}, handle)
"""

CASES = [
    (["--help"], 0),
    (["render", "--help"], 0),
    (["render", "scene", "--help"], 0),
    (["bench", "scaling", "--help"], 0),
    (["collectives", "trace", "--help"], 0),
    (["exercises", "check", "--help"], 0),
    (["render", "scene", "mandelbrot", "--frames", "lots"], 2),
    (["bench", "pingpong", "--sizes", "huge"], 2),
    (["collectives", "trace", "allreduce", "--size", "-3"], 2),
    (["run", "-n", "x", "--", "script.py"], 2),
]


@pytest.mark.parametrize("args, code", CASES, ids=[" ".join(a) for a, _ in CASES])
def test_help_and_usage_errors_import_no_numpy_and_no_mpi(tmp_path, args, code):
    out = tmp_path / "modules.json"
    proc = subprocess.run([sys.executable, "-c", _WRAPPER, str(out), *args], capture_output=True,
                          text=True, timeout=110)
    seen = json.loads(out.read_text())
    assert seen["code"] == code, proc.stderr
    heavy = [m for m in seen["modules"] if m.split(".")[0] in ("numpy", "mpi4py")]
    assert heavy == [], f"pimpi {' '.join(args)} imported {heavy[:5]}"


def test_the_command_list_is_what_the_cli_offers():
    from pimpi.cli import cli
    from pimpi.commands import COMMANDS

    assert list(cli.commands) == list(COMMANDS)  # `pimpi run` tells commands from scripts by this list
