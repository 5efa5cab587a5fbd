"""--imager VM nodes' seed: the shape Raspberry Pi Imager writes, and the board's stand-ins."""

from __future__ import annotations

import base64
import json
import subprocess
from pathlib import Path

import pytest

from pimpi.vcluster.cluster import inventory
from pimpi.vcluster.backends.vm.seed import MODEL_FILE, USER, fake_vcgencmd, user_data
from pimpi.vcluster.spec import make_spec


def _config(**kw) -> dict:
    spec = make_spec(name="t", nodes=2, subnet="10.9.0.0/24", kind="vm", imager=True, **kw)
    text = user_data(spec, spec.node_list()[0], "ssh-ed25519 AAAA key\n", "PRIV", ("HP", "ssh-ed25519 HPUB\n"),
                     "", {}, [], [], "$6$salt$hash")
    assert text.startswith("#cloud-config\n")
    return json.loads(text.split("\n", 1)[1])


def test_imager_defaults_are_trixie_and_a_sudo_that_asks_for_the_password():
    spec = make_spec(nodes=2, kind="vm", imager=True)
    assert (spec.suite, spec.sudo) == ("trixie", "password")
    assert make_spec(nodes=2, kind="vm", imager=True, suite="bookworm").suite == "bookworm"
    assert make_spec(nodes=2, kind="vm").suite == ""  # plain VM nodes: this machine's release
    for bad, word in [(dict(kind="vm", suite="sid"), "'sid'"), (dict(suite="trixie"), "--suite"),
                      (dict(kind="vm", sudo="nopasswd"), "--sudo"),
                      (dict(kind="vm", imager=True, sudo="maybe"), "'maybe'")]:
        with pytest.raises(ValueError, match=word):
            make_spec(nodes=2, **bad)


def test_imager_seed_has_a_named_user_with_a_key_and_imagers_sudo_choice():
    config = _config()
    user = config["user"]
    assert "users" not in config and user["name"] == USER != "root"
    assert user["ssh_authorized_keys"] == ["ssh-ed25519 AAAA key"] and user["passwd"] == "$6$salt$hash"
    assert "sudo" in user and user["sudo"] is None  # Imager unticked: no NOPASSWD rule, sudo group asks
    assert _config(sudo="nopasswd")["user"]["sudo"] == "ALL=(ALL) NOPASSWD:ALL"
    assert config["manage_etc_hosts"] is True and config["packages"] == ["avahi-daemon"]
    assert 'Check-Date "false"' in config["apt"]["conf"] and config["ssh_pwauth"] is False


def test_imager_seed_writes_a_board_model_and_vcgencmd():
    files = {f["path"]: f for f in _config()["write_files"]}
    model = base64.b64decode(files[MODEL_FILE]["content"]).decode()
    assert model.startswith("Raspberry Pi 4") and model.endswith("\0")
    assert files["/usr/bin/vcgencmd"]["permissions"] == "0755"
    spec = make_spec(name="t", nodes=2, subnet="10.9.0.0/24", kind="vm", imager=True)
    assert inventory(spec)["all"]["vars"]["ansible_user"] == USER
    assert inventory(spec)["all"]["vars"]["raspberrypi_model_file"] == MODEL_FILE


def test_fake_vcgencmd_reads_differently_from_call_to_call(tmp_path: Path):
    script = tmp_path / "vcgencmd"
    script.write_text(fake_vcgencmd())
    script.chmod(0o755)
    env = {"PATH": "/usr/bin:/bin", "PIMPI_VCGENCMD_STATE": str(tmp_path / "state")}

    def call(arg: str) -> str:
        return subprocess.run([str(script), arg], capture_output=True, text=True, env=env, timeout=10,
                              check=True).stdout.strip()

    throttled = [call("get_throttled") for _ in range(4)]
    temps = [call("measure_temp") for _ in range(3)]
    assert all(t.startswith("throttled=0x") for t in throttled) and len(set(throttled)) == 4
    assert all(t.startswith("temp=") and t.endswith("'C") for t in temps) and len(set(temps)) == 3
    assert subprocess.run([str(script), "version"], env=env, capture_output=True, timeout=10).returncode == 1


def test_trixie_nodes_on_a_bookworm_machine_use_its_mirror(tmp_path, monkeypatch):
    from pimpi.vcluster import rootfs

    monkeypatch.delenv("PIMPI_DEBIAN_MIRROR", raising=False)
    monkeypatch.setenv("PIMPI_DEBIAN_SUITE", "bookworm")  # this machine's release
    apt = tmp_path / "apt"
    (apt / "sources.list.d").mkdir(parents=True)
    (apt / "sources.list.d" / "debian.sources").write_text(
        "Types: deb\nURIs: http://two.invalid/debian-security\nSuites: bookworm-security\n\n"
        "Types: deb\nURIs: http://two.invalid/debian\nSuites: bookworm bookworm-updates\n")
    assert rootfs.mirror_for("trixie", apt) == "http://two.invalid/debian"
    (apt / "sources.list.d" / "debian.sources").write_text("Types: deb\nURIs: http://x.invalid/d\nSuites: sid\n")
    with pytest.raises(Exception, match="PIMPI_DEBIAN_MIRROR"):
        rootfs.mirror_for("trixie", apt)
