"""A pimpi fix reaches the nodes without a new version number: the build hash the role installs by and
`pimpi doctor` compares, and the one archive per node platform the role sends (its own pip wheel)."""

from __future__ import annotations

import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from pimpi.buildhash import build_hash, wheel_hash
from pimpi.cluster.doctor import find_problems
from pimpi.cluster.facts import local_facts
from pimpi.provision.wheelpack import members, pack
from tests.ansible.conftest import copy_source

def _wheel(src: Path, out: Path) -> Path:
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                            "--wheel-dir", str(out), str(src)], capture_output=True, text=True, timeout=300,
                           check=False)
    assert built.returncode == 0, built.stderr
    return next(out.glob("pimpi-*.whl"))


@pytest.mark.timeout(600)
def test_a_source_change_without_a_version_bump_is_a_new_build_the_wheel_carries(tmp_path):
    src = copy_source(tmp_path)
    before = build_hash(src / "pimpi")
    assert wheel_hash(_wheel(src, tmp_path / "a")) == before  # the node shows what the tree had
    module = src / "pimpi" / "cluster" / "hostfile.py"
    module.write_text(module.read_text() + "\n# a fix, same version\n")
    after = build_hash(src / "pimpi")
    assert after != before
    wheel = _wheel(src, tmp_path / "b")
    assert wheel.name == f"pimpi-{_version(src)}-py3-none-any.whl"  # the same name as before
    assert wheel_hash(wheel) == after
    # the command line the role runs, on the tree and on the wheel, from the source's own file
    for arg, want in ((str(src), after), (str(wheel), after)):
        out = subprocess.run([sys.executable, str(src / "pimpi" / "buildhash.py"), arg], capture_output=True,
                             text=True, timeout=60, check=False)
        assert out.returncode == 0 and out.stdout.strip() == want, out.stdout + out.stderr
    bad = subprocess.run([sys.executable, "-m", "pimpi.buildhash", str(tmp_path / "nothing")], capture_output=True,
                         text=True, timeout=60, check=False)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "nothing" in bad.stderr, bad.stderr


def _version(src: Path) -> str:
    return next(line.split('"')[1] for line in (src / "pimpi" / "__init__.py").read_text().splitlines()
                if line.startswith("__version__"))


def test_doctor_shows_the_build_and_names_the_nodes_that_differ():
    mine = local_facts(mpi=False)
    assert mine["pimpi_build"] == build_hash()
    records = [{**mine, "rank": 0, "hostname": "pi1", "sees": {}},
               {**mine, "rank": 1, "hostname": "pi2", "sees": {}},
               {**mine, "rank": 2, "hostname": "pi3", "sees": {}, "pimpi_build": "0123456789ab"}]
    differs = [p for p in find_problems(records) if p.startswith("pimpi build differs")]
    assert differs == [f"pimpi build differs between ranks: {mine['pimpi_build']} on pi1 (rank 0), pi2 (rank 1); "
                       "0123456789ab on pi3 (rank 2)"], find_problems(records)
    same = [p for p in find_problems(records[:2]) if "build" in p]
    assert same == []


def _fake_wheel(folder: Path, name: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(folder / name, "w") as zf:
        zf.writestr("x/__init__.py", name)
    return folder / name


def test_each_platform_archive_holds_its_own_newest_pip_and_the_fresh_pimpi(tmp_path):
    # A Bookworm folder cached long ago (old pip), a Trixie folder downloaded today (new pip): the
    # Trixie node must get the pip wheel its own folder has, not the first platform's name.
    old = tmp_path / "cp311-x86_64-glibc2.36"
    new = tmp_path / "cp313-x86_64-glibc2.41"
    for folder, pips in ((old, ["pip-23.0.1-py3-none-any.whl"]),
                         (new, ["pip-24.3.1-py3-none-any.whl", "pip-25.0-py3-none-any.whl"])):
        for name in [*pips, "numpy-2.2.0-cp311-cp311-manylinux_2_17_x86_64.whl",
                     "pimpi-0.1.0-py3-none-any.whl"]:  # a pimpi wheel of an earlier build, same version
            _fake_wheel(folder, name)
    fresh = _fake_wheel(tmp_path / "pimpi-0.1.0-abc", "pimpi-0.1.0-py3-none-any.whl")
    assert [p.name for p in members(new, fresh)] == [
        "numpy-2.2.0-cp311-cp311-manylinux_2_17_x86_64.whl", "pimpi-0.1.0-py3-none-any.whl", "pip-25.0-py3-none-any.whl"]
    for folder, pip in ((old, "pip-23.0.1"), (new, "pip-25.0")):
        out = tmp_path / f"{folder.name}.tar"
        names = pack(folder, fresh, out)
        with tarfile.open(out) as tar:
            assert sorted(tar.getnames()) == sorted(names)
            assert [n for n in names if n.startswith("pip-")] == [f"{pip}-py3-none-any.whl"]
            pimpi = tar.extractfile("pimpi-0.1.0-py3-none-any.whl").read()
        assert pimpi == fresh.read_bytes()  # the build of now, not the folder's stale one
    with pytest.raises(ValueError, match="has no pip wheel"):
        members(tmp_path / "pimpi-0.1.0-abc", fresh)
    bad = subprocess.run([sys.executable, "-m", "pimpi.provision.wheelpack", "--folder", str(new), "--pimpi",
                          str(tmp_path / "none.whl"), "--out", str(tmp_path / "x.tar")], capture_output=True,
                         text=True, timeout=60, check=False)
    assert bad.returncode == 2 and bad.stderr.startswith("error: --pimpi") and bad.stderr.count("\n") == 1, bad.stderr
    assert not (tmp_path / "x.tar").exists()
