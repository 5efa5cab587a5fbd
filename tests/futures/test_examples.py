"""The examples run unchanged with ProcessPoolExecutor, and on the cluster after the one-line
import change, with identical results."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
BEFORE = "from concurrent.futures import ProcessPoolExecutor\n"
AFTER = "from pimpi.futures import ProcessPoolExecutor\n"


def _cluster_copy(name: str, folder: Path) -> Path:
    """The example with its import changed, and nothing else."""
    source = (EXAMPLES / name).read_text()
    assert source.count(BEFORE) == 1
    changed = source.replace(BEFORE, AFTER)
    diff = [(a, b) for a, b in zip(source.splitlines(), changed.splitlines()) if a != b]
    assert diff == [(BEFORE.strip(), AFTER.strip())]
    copy = folder / name
    copy.write_text(changed)
    return copy


def _local(name: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(EXAMPLES / name), *args], capture_output=True, text=True,
                          timeout=120, stdin=subprocess.DEVNULL)


def test_sweep_same_csv_on_the_cluster(jobs, tmp_path: Path) -> None:
    args = ("--grid", "3", "--size", "40", "--days", "80")
    local = _local("sweep.py", *args)
    assert local.returncode == 0, local.stderr
    assert len(local.stdout.splitlines()) == 10
    cluster = jobs.run_job(4, str(_cluster_copy("sweep.py", tmp_path)), *args)
    assert cluster.returncode == 0, cluster.stderr
    assert cluster.stdout.splitlines()[-10:] == local.stdout.splitlines()
    assert jobs.leftovers(str(tmp_path)) == []


def test_thumbnails_same_bytes_on_the_cluster(jobs, tmp_path: Path) -> None:
    image = pytest.importorskip("PIL.Image")
    np = pytest.importorskip("numpy")
    photos = tmp_path / "photos"
    photos.mkdir()
    rng = np.random.default_rng(7)
    for k in range(7):
        pixels = rng.integers(0, 256, size=(120 + 17 * k, 200 - 9 * k, 3), dtype=np.uint8)
        image.fromarray(pixels).save(photos / f"p{k}.{'png' if k % 2 else 'jpg'}")
    (photos / "notes.txt").write_text("not an image")
    local = _local("thumbnails.py", str(photos), str(tmp_path / "local"), "--size", "48")
    assert local.returncode == 0, local.stderr
    assert len(local.stdout.splitlines()) == 7
    cluster = jobs.run_job(3, str(_cluster_copy("thumbnails.py", tmp_path)), str(photos),
                           str(tmp_path / "cluster"), "--size", "48")
    assert cluster.returncode == 0, cluster.stderr
    assert cluster.stdout.splitlines()[-7:] == local.stdout.splitlines()
    for thumb in sorted((tmp_path / "local").iterdir()):
        assert (tmp_path / "cluster" / thumb.name).read_bytes() == thumb.read_bytes()
    assert jobs.leftovers(str(tmp_path)) == []
