"""Virtual-cluster pieces that need no root: validation, names, profiles, hosts block, agent, mirror."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from pimpi.cli import cli
from pimpi.cluster import profiles
from pimpi.vcluster import agent, etc_hosts, rootfs
from pimpi.vcluster.options import parse_duration, parse_rate
from pimpi.vcluster.spec import make_spec


def test_spec_names_addresses_and_interfaces_fit_the_kernel_limits():
    spec = make_spec(name="lab", nodes=12, subnet="10.50.0.0/24")
    nodes = spec.node_list()
    assert [n.hostname for n in nodes][:3] == ["lab1", "lab2", "lab3"]
    assert spec.head_address == "10.50.0.1" and nodes[0].address == "10.50.0.2"
    assert len({n.address for n in nodes}) == 12 and spec.head_address not in {n.address for n in nodes}
    assert all(n.netns.startswith("pimpi-") and n.host_if.startswith("pimpi-") for n in nodes)
    longest = make_spec(name="abcdef", nodes=64, subnet="10.0.0.0/24")
    assert max(len(n.host_if) for n in longest.node_list()) <= 15
    assert spec.find("node2") == spec.find("lab2") == spec.find("2") == spec.find("10.50.0.3")
    with pytest.raises(ValueError, match="node13"):
        spec.find("node13")


@pytest.mark.parametrize("kwargs, words", [
    ({"nodes": 0}, "at least 1"),
    ({"nodes": 3, "subnet": "10.0.0.0/30"}, "2 host addresses"),
    ({"subnet": "10.0.0.1/24"}, "bad subnet"),
    ({"subnet": "8.8.8.0/24"}, "not a private"),
    ({"subnet": "fd00::/64"}, "IPv4"),
    ({"name": "Pimpi"}, "cluster name"),
    ({"name": "toolong"}, "cluster name"),
    ({"profile": "pi9"}, "unknown profile"),
    ({"slots": 0}, "slots"),
])
def test_bad_requests_name_the_bad_value(kwargs, words):
    with pytest.raises(ValueError, match=words):
        make_spec(**kwargs)


@pytest.mark.parametrize("args", [
    ["up", "--nodes", "0"],
    ["up", "--nodes", "6", "--subnet", "10.9.9.0/29"],
    ["up", "--nodes", "2", "--subnet", "nonsense"],
    ["up", "--nodes", "2", "--profile", "pi9"],
])
def test_cli_bad_options_exit_2_and_create_nothing(args, monkeypatch, tmp_path):
    from pimpi.vcluster import cluster

    monkeypatch.setenv("PIMPI_VCLUSTER_STATE", str(tmp_path / "state"))
    monkeypatch.setattr(cluster, "up", lambda *a, **k: pytest.fail("up must not be reached"))
    result = CliRunner().invoke(cli, ["vcluster", *args, "--name", "tvu"])
    assert result.exit_code == 2, result.output
    assert not (tmp_path / "state").exists()


def test_cli_without_root_says_so_in_one_line(monkeypatch, tmp_path):
    monkeypatch.setenv("PIMPI_VCLUSTER_STATE", str(tmp_path))
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    for args in (["status"], ["up", "--nodes", "2"], ["down"], ["exec", "node1", "--", "true"]):
        result = CliRunner().invoke(cli, ["vcluster", *args[:1], "--name", "tvu", *args[1:]])
        assert result.exit_code == 1, result.output
        assert "needs root" in result.output and "Traceback" not in result.output


def test_profiles_are_data_with_sources():
    assert set(profiles.names()) == {"lan", "pi3", "pi4", "pi5"}
    for name in ("pi3", "pi4", "pi5"):
        prof = profiles.profile(name)
        assert prof["bandwidth_bps"] > 0 and prof["latency_s"] > 0 and prof["sources"]
        assert set(prof) >= {"bandwidth_bps", "latency_s", "core_speed_relative", "sources", "assumptions"}
    assert profiles.profile("pi3")["bandwidth_bps"] < profiles.profile("pi4")["bandwidth_bps"]
    assert profiles.profile("pi5")["core_speed_relative"] > profiles.profile("pi4")["core_speed_relative"]
    assert profiles.profile("lan")["bandwidth_bps"] is None
    profiles.profile("pi4")["sources"].append("x")  # a copy: the table itself is unchanged
    assert "x" not in profiles.PROFILES["pi4"]["sources"]
    with pytest.raises(ValueError, match="pi9"):
        profiles.profile("pi9")


def test_hosts_block_added_replaced_and_removed_leaving_the_rest(tmp_path):
    path = tmp_path / "hosts"
    original = "127.0.0.1 localhost\n192.168.1.5 nas  # mine\n"
    path.write_text(original)
    spec = make_spec(name="hb", nodes=2, subnet="10.60.0.0/24")
    other = make_spec(name="ot", nodes=1, subnet="10.61.0.0/24")
    etc_hosts.add_block(spec, path)
    etc_hosts.add_block(other, path)
    etc_hosts.add_block(spec, path)  # again: replaced, not doubled
    text = path.read_text()
    assert text.count(etc_hosts.begin_marker("hb")) == 1 and "10.60.0.3\thb2" in text
    assert etc_hosts.remove_block("hb", path) and not etc_hosts.remove_block("hb", path)
    assert "hb2" not in path.read_text() and "ot1" in path.read_text()
    etc_hosts.remove_block("ot", path)
    assert path.read_text() == original
    node = etc_hosts.node_hosts(spec)
    assert "127.0.1.1" not in node and "10.60.0.2\thb1" in node


def test_agent_enters_the_named_node_with_the_command(tmp_path):
    spec = make_spec(name="ag", nodes=2, subnet="10.62.0.0/24")
    script = tmp_path / "agent"
    agent.write_agent(script, agent.agent_script(spec, {"ag1": 111, "ag2": 222}))
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "nsenter").write_text('#!/bin/sh\necho "$@"\n')
    (fake / "nsenter").chmod(0o755)
    env = {**os.environ, "PATH": f"{fake}:{os.environ['PATH']}"}
    out = subprocess.run([str(script), "-x", "-o", "BatchMode=yes", "ag2", "PATH=/x", ";", "prted", "--a"],
                         capture_output=True, text=True, env=env, timeout=30)
    assert out.stdout.split() == ["-t", "222", "--net", "--uts", "--mount", "--", "/bin/sh", "-c",
                                  "PATH=/x", ";", "prted", "--a"]
    bad = subprocess.run([str(script), "elsewhere", "true"], capture_output=True, text=True, env=env, timeout=30)
    assert bad.returncode == 255 and "no node elsewhere" in bad.stderr


def test_env_and_hostfile_text():
    spec = make_spec(name="ev", nodes=3, subnet="10.63.0.0/24", slots=4)
    assert agent.hostfile_text(spec) == "ev1 slots=4\nev2 slots=4\nev3 slots=4\n"
    env = agent.mpi_env(spec, Path("/run/x/ssh-agent"))
    assert env["OMPI_MCA_btl_tcp_if_include"] == env["PRTE_MCA_oob_tcp_if_include"] == "10.63.0.0/24"
    assert env["PRTE_MCA_plm_ssh_agent"] == "/run/x/ssh-agent"
    assert "PRTE_MCA_plm_ssh_agent" not in agent.mpi_env(spec, None)  # rootfs: real ssh
    assert "export OMPI_MCA_btl=tcp,self\n" in agent.env_text(env)


def test_durations_and_rates():
    assert parse_duration("50ms") == pytest.approx(0.05)
    assert parse_duration("200us") == pytest.approx(2e-4)
    assert parse_duration("2") == pytest.approx(0.002)
    assert parse_rate("100mbit") == 1e8 and parse_rate("1gbit") == 1e9
    for bad in ("soon", "-5ms", ""):
        with pytest.raises(ValueError):
            parse_duration(bad)
    with pytest.raises(ValueError):
        parse_rate("fast")


def test_mirror_is_read_from_this_machines_apt_sources(tmp_path, monkeypatch):
    monkeypatch.delenv("PIMPI_DEBIAN_MIRROR", raising=False)
    apt = tmp_path / "apt"
    (apt / "sources.list.d").mkdir(parents=True)
    (apt / "sources.list").write_text("# deb http://commented.invalid/debian bookworm main\n"
                                      "deb [arch=amd64] http://one.invalid/debian bullseye main\n")
    (apt / "sources.list.d" / "debian.sources").write_text(
        "Types: deb\nURIs: http://two.invalid/debian\nSuites: bookworm bookworm-updates\nComponents: main\n\n"
        "Types: deb\nURIs: http://two.invalid/debian-security\nSuites: bookworm-security\n")
    assert rootfs.find_mirror("bookworm", apt) == "http://two.invalid/debian"
    assert rootfs.find_mirror("bullseye", apt) == "http://one.invalid/debian"
    with pytest.raises(Exception, match="PIMPI_DEBIAN_MIRROR"):
        rootfs.find_mirror("trixie", apt)
    monkeypatch.setenv("PIMPI_DEBIAN_MIRROR", "http://mine.invalid/debian")
    assert rootfs.find_mirror("trixie", apt) == "http://mine.invalid/debian"


def test_bind_paths_fold_nested_folders():
    paths = rootfs.bind_paths()
    assert paths and all(os.path.isabs(p) for p in paths)
    assert not any(p != q and p.startswith(q + "/") for p in paths for q in paths)
    import pimpi

    assert any(str(Path(pimpi.__file__).resolve()).startswith(p + "/") for p in paths)


def test_every_node_kind_has_a_backend_with_every_verb_of_the_protocol():
    from pimpi.vcluster.backends import Nodes, for_kind
    from pimpi.vcluster.spec import KINDS

    verbs = [name for name in vars(Nodes) if not name.startswith("_")]
    assert {"build", "start", "teardown", "exec_argv", "status", "shape", "kill"} <= set(verbs)
    for kind in KINDS:
        backend = for_kind(kind)
        missing = [verb for verb in verbs if not callable(getattr(type(backend), verb, None))]
        assert missing == [], f"{kind}: {missing}"
    with pytest.raises(ValueError, match="'lxc'"):
        for_kind("lxc")


def test_status_lines_come_from_the_nodes_backend():
    from pimpi.vcluster.backends import for_kind

    row = {"hostname": "n1", "address": "10.9.0.2", "link": "up", "running": False, "processes": 0,
           "arch": "arm64", "accel": "tcg", "rss_mb": None, "cut": True, "delay_s": 0.05}
    assert for_kind("netns").row_text(row).split()[4:] == ["STOPPED", "0", "processes", "faults:", "cut,",
                                                           "delay_s=0.05"]
    assert for_kind("vm").row_text(row).split()[4:7] == ["OFF", "arm64", "tcg"]
    info = {"accel": {"arm64": "tcg", "amd64": "kvm"}}
    assert for_kind("netns").words(info) == "" and for_kind("vm").words(info) == ", VM nodes (amd64 kvm, arm64 tcg)"
