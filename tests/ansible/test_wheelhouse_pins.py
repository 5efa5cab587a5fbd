"""Role mpi_venv's version pins come from real pip resolutions per node platform and Python, here on a
local index of generated wheels shaped like the real problem: numpy 2.5.0 has no cp311 wheel (Bookworm),
numpy 2.0.2 is the last with a cp39 wheel and has none for cp313 (Trixie)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from pimpi.provision.wheelhouse import WheelhouseError, common_pins, load_targets, resolve

WHEELS = {  # (name, version): [(python tag, machine)], None = py3-none-any
    ("numpy", "2.0.2"): [("cp39", "x86_64"), ("cp39", "aarch64"), ("cp311", "x86_64"), ("cp311", "aarch64")],
    ("numpy", "2.4.6"): [(py, m) for py in ("cp311", "cp312", "cp313") for m in ("x86_64", "aarch64")],
    ("numpy", "2.5.0"): [("cp312", "x86_64"), ("cp313", "x86_64"), ("cp313", "aarch64"), ("cp312", "aarch64")],
    ("mpi4py", "4.1.0"): [(py, m) for py in ("cp39", "cp311", "cp312", "cp313") for m in ("x86_64", "aarch64")],
    ("pimpi", "1.0"): None,
}


def _wheel(folder: Path, name: str, version: str, tag: tuple[str, str] | None, requires: list[str]) -> None:
    py, machine = tag or ("py3", "")
    tags = f"{py}-{py}-manylinux_2_17_{machine}" if tag else "py3-none-any"
    info = f"{name}-{version}.dist-info"
    metadata = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n" + "".join(
        f"Requires-Dist: {r}\n" for r in requires)
    wheel = f"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: {'false' if tag else 'true'}\nTag: {tags}\n"
    with zipfile.ZipFile(folder / f"{name}-{version}-{tags}.whl", "w") as zf:
        zf.writestr(f"{name.replace('-', '_')}/__init__.py", "")
        zf.writestr(f"{info}/METADATA", metadata)
        zf.writestr(f"{info}/WHEEL", wheel)
        zf.writestr(f"{info}/RECORD", "")


@pytest.fixture(scope="module")
def index(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("wheels")
    for (name, version), tags in WHEELS.items():
        requires = ["numpy", "mpi4py>=4"] if name == "pimpi" else []
        for tag in tags or [None]:
            _wheel(folder, name, version, tag, requires)
    return folder


@pytest.fixture(autouse=True)
def offline_pip(monkeypatch):
    """pip reads no config file and no PIP_* setting of this machine: the generated wheels are all it sees."""
    for key in [k for k in os.environ if k.startswith("PIP_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)


def _target(python: str, machine: str, *hosts: str) -> dict:
    key = f"cp{python.replace('.', '')}-{machine}-glibc2.36"
    return {"key": key, "machine": machine, "python": python, "glibc": "2.36", "hosts": list(hosts)}


def _resolver(index: Path):
    return lambda reqs, target: resolve(reqs, target, find_links=[str(index)], extra=["--no-index"], timeout=300)


@pytest.mark.timeout(300)
def test_pip_resolves_for_the_node_platform_not_the_controllers(index):
    assert resolve(["pimpi"], _target("3.11", "aarch64"), find_links=[str(index)], extra=["--no-index"]) == {
        "pimpi": "1.0", "numpy": "2.4.6", "mpi4py": "4.1.0"}
    assert resolve(["pimpi"], _target("3.13", "aarch64"), find_links=[str(index)],
                   extra=["--no-index"])["numpy"] == "2.5.0"


@pytest.mark.timeout(400)
def test_controller_version_no_node_can_take_is_replaced_by_the_newest_common(index):
    # A 3.12 controller has numpy 2.5.0; Bookworm (3.11) nodes cannot install it, a Trixie node can.
    targets = [_target("3.11", "aarch64", "pi1", "pi2"), _target("3.13", "aarch64", "pi3")]
    pins = common_pins(["pimpi==1.0"], {"numpy": "2.5.0", "mpi4py": "4.1.0"}, targets, _resolver(index))
    assert pins == {"numpy": "2.4.6", "mpi4py": "4.1.0"}


@pytest.mark.timeout(400)
def test_platform_matters_as_well_as_python(index):
    # numpy 2.5.0 has cp312 wheels for both machines; pins differ from the controller only when needed.
    targets = [_target("3.12", "aarch64", "pi1"), _target("3.12", "x86_64", "pc")]
    assert common_pins(["pimpi==1.0"], {"numpy": "2.5.0"}, targets, _resolver(index)) == {"numpy": "2.5.0"}
    targets = [_target("3.11", "x86_64", "pc"), _target("3.12", "aarch64", "pi1")]
    assert common_pins(["pimpi==1.0"], {"numpy": "2.5.0"}, targets, _resolver(index)) == {"numpy": "2.4.6"}
    # Not installed on the controller: still one version for every node (the newest they share).
    assert common_pins(["pimpi==1.0"], {"numpy": None, "mpi4py": None}, targets, _resolver(index)) == {
        "numpy": "2.4.6", "mpi4py": "4.1.0"}


@pytest.mark.timeout(400)
def test_no_common_version_names_the_package_and_the_nodes(index):
    targets = [_target("3.9", "aarch64", "old1"), _target("3.13", "aarch64", "new1", "new2")]
    with pytest.raises(WheelhouseError) as caught:
        common_pins(["pimpi==1.0"], {"numpy": "2.4.6", "mpi4py": "4.1.0"}, targets, _resolver(index))
    message = str(caught.value)
    assert message.startswith("no version of numpy installs on every node"), message
    assert "old1 (cp39-aarch64-glibc2.36) up to 2.0.2" in message, message
    assert "new1, new2 (cp313-aarch64-glibc2.36) up to 2.5.0" in message, message
    assert "\n" not in message


@pytest.mark.timeout(400)
def test_command_line_writes_pins_or_fails_with_one_line(index, tmp_path):
    targets = tmp_path / "targets.json"
    targets.write_text(json.dumps([_target("3.11", "x86_64", "pi1"), _target("3.13", "x86_64", "pi2")]))
    by_host = {"pi1": _target("3.11", "x86_64"), "pi2": _target("3.11", "x86_64"), "pi3": _target("3.13", "x86_64")}
    assert load_targets(json.dumps(by_host)) == [_target("3.11", "x86_64", "pi1", "pi2"),
                                                 _target("3.13", "x86_64", "pi3")]
    out = tmp_path / "pins.json"
    base = [sys.executable, "-m", "pimpi.provision.wheelhouse", "--targets", str(targets), "--requirement",
            "pimpi==1.0", "--find-links", str(index), "--no-index", "--out", str(out)]
    ok = subprocess.run([*base, "--prefer", "numpy==2.5.0"], capture_output=True, text=True, timeout=300)
    assert ok.returncode == 0, ok.stderr
    assert json.loads(out.read_text()) == {"pins": {"numpy": "2.4.6"}}
    out.unlink()
    bad = subprocess.run([*base, "--prefer", "numpy=="], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and bad.stderr.strip() == "error: --prefer 'numpy==' is not NAME==VERSION or NAME", \
        bad.stderr
    targets.write_text(json.dumps([_target("3.9", "x86_64", "pi1"), _target("3.13", "x86_64", "pi2")]))
    none = subprocess.run([*base, "--prefer", "numpy==2.5.0"], capture_output=True, text=True, timeout=300)
    assert none.returncode == 1 and none.stderr.startswith("error: no version of numpy"), none.stderr
    assert len(none.stderr.strip().splitlines()) == 1 and "Traceback" not in none.stderr
    assert not out.exists()
