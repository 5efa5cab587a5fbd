"""A usage error is one line on stderr, `Error: ...`, exit 2: no click Usage/Try lines around it,
except the --help hint when no command was recognised at all."""

from __future__ import annotations

import pytest

from tests.helpers import pimpi

pytestmark = pytest.mark.timeout(300)

CASES = [
    (["render", "scene", "mandelbrot", "--frames", "x"], "'x' is not an integer"),
    (["bench", "pingpong", "--sizes", "huge"], "not a size: 'huge'"),
    (["render", "nosuch"], "No such command 'nosuch'"),
    (["hosts", "check", "/nonexistent/hostfile"], "/nonexistent/hostfile"),
    (["collectives", "trace", "allreduce", "--size", "-3"], "--size"),
]


@pytest.mark.parametrize("args, names", CASES, ids=[" ".join(a) for a, _ in CASES])
def test_a_usage_error_is_one_error_line(args, names):
    proc = pimpi(*args, timeout=120)
    lines = proc.stderr.splitlines()
    assert proc.returncode == 2, proc.stderr
    assert len(lines) == 1 and lines[0].startswith("Error: ") and names in lines[0], proc.stderr


def test_nothing_valid_adds_the_help_hint_and_nothing_else():
    proc = pimpi("nosuch", timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == ["Error: No such command 'nosuch'.", "Try 'pimpi --help' for help."]


def test_a_group_given_nothing_still_shows_its_help():
    proc = pimpi("render", timeout=120)
    assert proc.returncode == 2 and "Usage: pimpi render" in proc.stderr and "Commands:" in proc.stderr
