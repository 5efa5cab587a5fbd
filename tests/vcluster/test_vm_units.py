"""VM nodes without booting any: the request's checks, the seed, QEMU's command line, guest scripts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from pimpi.vcluster.backends.vm import guest, qemu
from pimpi.vcluster.backends.vm.seed import Share, meta_data, user_data
from pimpi.vcluster.backends.vm.vmimage import Image
from pimpi.vcluster.cli import vcluster
from pimpi.vcluster.spec import make_spec


def test_spec_kinds_and_arches():
    spec = make_spec(nodes=3, kind="vm", arch="amd64,amd64,arm64")
    assert spec.ssh and [spec.node_arch(n) for n in spec.node_list()] == ["amd64", "amd64", "arm64"]
    assert make_spec(nodes=2, kind="vm", arch="arm64").node_arch(make_spec(nodes=2).node_list()[1]) == "arm64"
    assert not make_spec(nodes=2).ssh and make_spec(nodes=2, rootfs=True).ssh
    for bad, word in [(dict(kind="lxc"), "'lxc'"), (dict(kind="vm", arch="sparc"), "'sparc'"),
                      (dict(kind="vm", arch="amd64,arm64"), "'amd64,arm64'"),
                      (dict(arch="arm64"), "--vm"), (dict(kind="vm", rootfs=True), "--rootfs")]:
        with pytest.raises(ValueError, match=word):
            make_spec(nodes=3, **bad)


def test_cli_names_the_bad_arch_with_exit_2():
    out = CliRunner().invoke(vcluster, ["up", "--nodes", "2", "--vm", "--arch", "mips"])
    assert out.exit_code == 2 and "'mips'" in out.output and "Traceback" not in out.output


def test_seed_is_like_imager_with_the_cluster_hosts_in_the_template():
    spec = make_spec(name="t", nodes=2, subnet="10.9.0.0/24", kind="vm")
    node = spec.node_list()[1]
    text = user_data(spec, node, "ssh-ed25519 AAAA key\n", "PRIVATE", ("HOSTPRIV", "ssh-ed25519 HOSTPUB\n"),
                     "t1 ssh-ed25519 X\n", {"OMPI_MCA_btl": "tcp,self"}, ["/venv/bin"],
                     [Share("pimpi0", "/repo", False), Share("pimpi1", "/shared", True)])
    assert text.startswith("#cloud-config\n")
    config = json.loads(text.split("\n", 1)[1])
    assert config["hostname"] == "t2" and config["manage_etc_hosts"] is True
    assert config["users"][0]["ssh_authorized_keys"] == ["ssh-ed25519 AAAA key"]
    assert config["ssh_genkeytypes"] == ["ed25519"] and config["ssh_keys"]["ed25519_private"] == "HOSTPRIV"
    files = {f["path"]: f for f in config["write_files"]}
    hosts = files["/etc/cloud/templates/hosts.debian.tmpl"]["content"]
    assert hosts.startswith("## template:jinja\n") and "10.9.0.3\tt2" in hosts and "127.0.1.1" not in hosts
    assert files["/root/.ssh/id_ed25519"]["permissions"] == "0600"
    assert 'SetEnv "OMPI_MCA_btl=tcp,self" "PATH=/venv/bin:' in files["/etc/ssh/sshd_config.d/pimpi.conf"]["content"]
    mounts = [c[2] for c in config["bootcmd"]]
    assert "pimpi0 /repo" in mounts[0] and ",ro" in mounts[0] and ",ro" not in mounts[1]
    assert meta_data(node, "i-1") == "instance-id: i-1\nlocal-hostname: t2\n"


def test_imager_seed_leaves_cloud_inits_hosts_template_alone():
    spec = make_spec(name="t", nodes=2, subnet="10.9.0.0/24", kind="vm", imager=True)
    text = user_data(spec, spec.node_list()[0], "ssh-ed25519 AAAA key\n", "PRIVATE", ("HP", "ssh-ed25519 HPUB\n"),
                     "", {}, [], [])
    config = json.loads(text.split("\n", 1)[1])
    assert config["manage_etc_hosts"] is True and config["hostname"] == "t1"
    assert "/etc/cloud/templates/hosts.debian.tmpl" not in {f["path"] for f in config["write_files"]}
    with pytest.raises(ValueError, match="--imager"):
        make_spec(name="t", nodes=2, subnet="10.9.0.0/24", imager=True)


def test_qemu_boots_the_kernel_directly_on_a_tap_with_a_static_address(tmp_path: Path):
    spec = make_spec(name="t", nodes=2, subnet="10.9.0.0/24", kind="vm")
    node = spec.node_list()[0]
    image = Image(tmp_path / "base.raw", tmp_path / "vmlinuz", tmp_path / "initrd.img", "amd64")
    argv = qemu.qemu_argv(spec, node, image, "tcg", tmp_path / "d.qcow2", tmp_path / "s.iso", tmp_path / "c.log",
                        [Share("pimpi0", "/repo", False)])
    joined = " ".join(argv)
    assert argv[0] == "qemu-system-x86_64" and "-cpu Nehalem -accel tcg,tb-size=256" in joined
    assert f"ifname={node.host_if}," in joined and f"mac={qemu.mac_address(node)}" in joined
    cmdline = argv[argv.index("-append") + 1]
    assert "net.ifnames=0" in cmdline and "ip=10.9.0.2::" in cmdline and ":eth0:off" in cmdline
    assert "mount_tag=pimpi0,security_model=none,readonly=on" in joined
    assert qemu.mac_address(node) == "52:54:00:09:00:02"


def test_guest_shaping_delays_both_directions_and_unshapes():
    script = guest.shape_script(0.002, None)
    assert script.count("netem delay 2000us") == 2 and "mirred egress redirect dev ifb0" in script
    assert "tbf" not in script
    assert "tbf rate 940000000bit" in guest.shape_script(None, 940e6)
    plain = guest.shape_script(None, None)
    assert "netem" not in plain and "ifb0 type ifb" not in plain and "ip link del ifb0" in plain


def test_foreign_root_units_are_enabled_and_masked_by_links(tmp_path: Path):
    from pimpi.vcluster.backends.vm import foreignroot

    units = tmp_path / "lib/systemd/system"
    units.mkdir(parents=True)
    (units / "ssh.service").write_text("[Unit]\n[Service]\n[Install]\nWantedBy=multi-user.target\nAlias=sshd.service\n")
    foreignroot.enable_units(tmp_path, ["ssh.service"])
    foreignroot.mask_units(tmp_path, ["cloud-final.service"])
    etc = tmp_path / "etc/systemd/system"
    assert str((etc / "multi-user.target.wants/ssh.service").readlink()) == "/lib/systemd/system/ssh.service"
    assert str((etc / "sshd.service").readlink()) == "/lib/systemd/system/ssh.service"
    assert str((etc / "cloud-final.service").readlink()) == "/dev/null"


def test_native_initrd_is_a_gzip_newc_cpio_with_init(tmp_path: Path, monkeypatch):
    import gzip

    from pimpi.vcluster.backends.vm import initrd

    (tmp_path / "usr/bin").mkdir(parents=True)
    (tmp_path / "usr/bin/busybox").write_bytes(b"\x7fELF busybox")
    monkeypatch.setattr(initrd, "module_order", lambda root, release: [])
    size = initrd.write_initrd(tmp_path, "6.1.0-1-arm64", tmp_path / "initrd.img")
    data = gzip.decompress((tmp_path / "initrd.img").read_bytes())
    assert size == (tmp_path / "initrd.img").stat().st_size and data.startswith(b"070701")
    assert b"bin/busybox\0" in data and b"exec switch_root /newroot /sbin/init" in data
    assert data.rstrip(b"\0").endswith(b"TRAILER!!!")
