"""pimpi.fileio: the one atomic write (mode from the umask, nothing left behind on failure)."""

from __future__ import annotations

import os

import pytest

from pimpi.fileio import atomic_path, atomic_write, default_mode, stale_temps


def test_atomic_write_gets_the_umask_mode_not_mkstemps_0600(tmp_path):
    old = os.umask(0o027)
    try:
        assert default_mode() == 0o640
        path = atomic_write(tmp_path / "a.json", "{}\n")
    finally:
        os.umask(old)
    assert path.read_text() == "{}\n" and path.stat().st_mode & 0o777 == 0o640
    assert atomic_write(tmp_path / "run.sh", b"#!/bin/sh\n", 0o755).stat().st_mode & 0o777 == 0o755


def test_a_failed_block_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "v.mp4"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            assert tmp.suffix == ".mp4"  # programs pick the format by the extension
            tmp.write_bytes(b"half")
            raise RuntimeError("encoder died")
    assert target.read_bytes() == b"old" and sorted(p.name for p in tmp_path.iterdir()) == ["v.mp4"]


def test_stale_temps_finds_what_a_killed_run_left(tmp_path):
    with atomic_path(tmp_path / "frame_00001.png") as tmp:
        leftover = tmp_path / ("kept-" + tmp.name)
        os.link(tmp, leftover)  # what SIGKILL would leave: the temporary name itself
        left_name = tmp.name
    os.replace(leftover, tmp_path / left_name)
    assert [p.name for p in stale_temps(tmp_path, "frame_*")] == [left_name]
    assert stale_temps(tmp_path, "other*") == []
