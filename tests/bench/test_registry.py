"""The benchmark registry: one list of names, each resolving to a function marked @benchmark."""

from __future__ import annotations

import subprocess
import sys

import pytest

from pimpi.bench import registry


def test_every_listed_benchmark_resolves_to_a_marked_function() -> None:
    for name in registry.names():
        bench = registry.get(name)
        assert bench.name == name and callable(bench.func) and callable(bench.text)
        assert isinstance(bench.mpi, bool)


def test_an_unknown_benchmark_is_refused_with_the_known_names() -> None:
    with pytest.raises(ValueError, match="unknown benchmark 'nosuch'; known: collectives, compare"):
        registry.get("nosuch")


def test_listing_the_names_imports_no_member() -> None:
    code = ("import sys; from pimpi.bench import registry; registry.names();"
            " print(sorted(m for m in sys.modules if m.startswith('pimpi.bench.')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True).stdout
    assert eval(out) == ["pimpi.bench.benchmark", "pimpi.bench.registry"]
