"""pimpi.fileio: the one atomic write (mode from the umask, nothing left behind on failure)."""

from __future__ import annotations

import os
import subprocess

import pytest

from pimpi.fileio import BUILT, atomic_path, atomic_write, built_once, default_mode, last_lines, stale_temps


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


@pytest.mark.parametrize("make, path, folder, needle", [
    (None, "", False, "empty path"),
    (None, "   ", True, "empty path"),
    ("dir", "{tmp}/x", False, "is a folder, not a file"),
    ("file", "{tmp}/x", True, "is a file, not a folder"),
    ("fifo", "{tmp}/x", False, "special file"),
    ("link", "{tmp}/x", False, "broken symbolic link"),
    (None, "{tmp}/missing/x.json", False, "does not exist"),
    ("file", "{tmp}/x/sub/deeper", True, "is not a folder"),
    (None, "{tmp}/x/", False, "names a folder"),
    (None, "/proc/x.json", False, "proc file system"),
    (None, "/sys/kernel/x", True, "sysfs file system"),
    (None, "/dev/x.mp4", False, "devtmpfs file system"),
])
def test_check_target_refuses_what_cannot_take_an_output(tmp_path, make, path, folder, needle):
    from pimpi.fileio import check_target

    spot = tmp_path / "x"
    if make == "dir":
        spot.mkdir()
    elif make == "file":
        spot.write_text("x")
    elif make == "fifo":
        os.mkfifo(spot)
    elif make == "link":
        spot.symlink_to(tmp_path / "gone")
    if path.startswith("/dev/") and not os.path.ismount("/dev"):
        pytest.skip("/dev is no mount of its own here")
    before = sorted(os.listdir(tmp_path))
    with pytest.raises(ValueError, match=needle):
        check_target(path.format(tmp=tmp_path), folder=folder)
    assert sorted(os.listdir(tmp_path)) == before


def test_check_target_accepts_new_files_and_folders_and_writes_nothing(tmp_path):
    from pimpi.fileio import check_target

    (tmp_path / "old.json").write_text("{}")
    for path, folder in ((tmp_path / "new.json", False), (tmp_path / "old.json", False),
                         (tmp_path / "a" / "b" / "c", True), (tmp_path, True)):
        check_target(path, folder=folder)
    assert sorted(os.listdir(tmp_path)) == ["old.json"]


def _slow_build(final: str, log: str) -> None:
    """Run in another process: count the build in LOG, take a while, fill the folder."""
    import time
    from pathlib import Path

    def build(tmp):
        with open(log, "a") as fh:
            fh.write("built\n")
        time.sleep(0.5)
        (tmp / "data").write_text("ok")
        return "test\n"

    built_once(Path(final), build)


def test_built_once_builds_one_time_even_for_callers_that_come_while_it_builds(tmp_path):
    import multiprocessing

    final, log = tmp_path / "cache" / "thing", tmp_path / "log"
    ctx = multiprocessing.get_context("spawn")
    workers = [ctx.Process(target=_slow_build, args=(str(final), str(log))) for _ in range(3)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(60)
    assert [w.exitcode for w in workers] == [0, 0, 0]
    assert log.read_text() == "built\n"
    assert (final / "data").read_text() == "ok" and (final / BUILT).read_text() == "test\n"
    assert built_once(final, lambda tmp: pytest.fail("built again")) == final


def test_built_once_leaves_nothing_when_the_build_fails_and_replaces_a_broken_folder(tmp_path):
    final = tmp_path / "thing"
    final.mkdir()
    (final / "half").write_text("an older build that never finished")

    def broken(tmp):
        (tmp / "part").write_text("x")
        raise RuntimeError("network down")

    with pytest.raises(RuntimeError, match="network down"):
        built_once(final, broken)
    assert not (tmp_path / "thing.partial").exists() and not (final / BUILT).exists()
    built_once(final, lambda tmp: (tmp / "data").write_text("ok") and "v1\n")
    assert sorted(p.name for p in final.iterdir()) == [BUILT, "data"]


def test_last_lines_reads_only_the_end_and_skips_what_it_is_told(tmp_path):
    log = tmp_path / "log"
    log.write_bytes(b"old\n" * 10_000 + b"first\n\n+ mpirun ...\nprogress 1%\rprogress 99%\r\nlast  \n")
    assert last_lines(log, 3) == ["progress 1%", "progress 99%", "last"]
    assert last_lines(log, 2, keep=lambda line: line.strip() and not line.startswith("+ "), window=64) == [
        "progress 99%", "last"]
    assert len(last_lines(log, 100_000, window=100)) < 30  # only the last 100 bytes were read
    assert last_lines(tmp_path / "missing", 3) == []


@pytest.mark.root
def test_built_once_replaces_a_partial_build_that_a_killed_build_left_mounted(tmp_path):
    """debootstrap killed half-way leaves /proc mounted in the .partial folder: the next build
    must still be able to remove it and build."""
    final = tmp_path / "cache"
    partial = tmp_path / "cache.partial"
    (partial / "proc").mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "none", str(partial / "proc")], check=True, timeout=30)
    try:
        built = built_once(final, lambda tmp: (tmp / "x").write_text("ok") and "made\n")
        assert (built / "x").read_text() == "ok" and not partial.exists()
    finally:
        subprocess.run(["umount", "--lazy", str(partial / "proc")], capture_output=True, timeout=30)
