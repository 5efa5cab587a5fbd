"""Size parsing, shrinking loop counts, min/median/max; and the JSON envelope."""

from __future__ import annotations

import json
import math

import pytest

from pimpi.bench import schema, timing
from pimpi.cliutil import parse_sizes


def test_parse_sizes_ranges_are_powers_of_two():
    assert parse_sizes("1:16") == [1, 2, 4, 8, 16]
    assert parse_sizes("1K:4K") == [1024, 2048, 4096]
    assert parse_sizes("64K,1M,64K") == [65536, 1 << 20]
    assert parse_sizes("3:9") == [4, 8]
    for bad in ("", "x", "8:1", "1Q"):
        with pytest.raises(ValueError):
            parse_sizes(bad)


def test_loops_shrink_for_large_messages():
    small = timing.loops_for(8, 10, 1000)
    large = timing.loops_for(64 << 10, 10, 1000)
    huge = timing.loops_for(4 << 20, 10, 1000)
    assert small[1] > large[1] > huge[1] >= 1
    assert timing.loops_for(4 << 20, 1, 1) == (0, 1)


def test_summary():
    assert timing.summary([3.0, 1.0, 2.0]) == {"min": 1.0, "median": 2.0, "max": 3.0, "n": 3}
    with pytest.raises(ValueError):
        timing.summary([])


def test_json_is_versioned_atomic_and_strict(tmp_path):
    path = tmp_path / "r.json"
    doc = schema.document("pingpong", {"cores": 2}, {"x": math.nan})
    schema.write_json(path, doc)
    loaded = json.loads(path.read_text())  # strict JSON: NaN became null
    assert loaded["schema"] == schema.SCHEMA and loaded["results"]["x"] is None
    assert schema.read_json(path, kind="pingpong")["machine"] == {"cores": 2}
    with pytest.raises(ValueError, match="expected 'scaling'"):
        schema.read_json(path, kind="scaling")
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]  # no temporary left behind
    assert path.stat().st_mode & 0o044 == 0o044  # readable by others, not mkstemp's 0600
    (tmp_path / "other.json").write_text('{"schema": "x/9"}')
    with pytest.raises(ValueError, match="not a pimpi.bench/1"):
        schema.read_json(tmp_path / "other.json")
    with pytest.raises(ValueError, match="does not exist"):
        schema.write_json(tmp_path / "missing" / "r.json", doc)
