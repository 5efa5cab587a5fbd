"""The node pre-flight play refuses a 32-bit system, the 32-bit Raspberry Pi OS on a 64-bit Pi kernel
included, before any role changes a node; a 64-bit node passes it.

The nodes here are this machine (local connection) under two names. Their facts are this machine's
real facts, gathered by Ansible into a fact cache; then one node's cache says what a Pi 4 running
32-bit Raspberry Pi OS reports (kernel aarch64, userland 32-bit: Ansible reads userspace_bits from
the node's own Python). With smart gathering Ansible plays on the cached facts, as it would on that Pi.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import yaml

HERE = Path(__file__).resolve().parent


def _cluster(run_tool, tmp_path: Path, pi1_machine: str, pi1_bits: str) -> tuple[list[str], dict[str, str]]:
    """(inventory args, env) of a two-node cluster whose pi1 has the given kernel machine and userland bits."""
    inventory = {"all": {
        "vars": {"cluster_subnet": "127.0.0.0/8", "ansible_connection": "local",
                 "ansible_python_interpreter": sys.executable},
        "children": {"head": {"hosts": {"pi0": {"cluster_address": "127.0.0.10"}}},
                     "workers": {"hosts": {"pi1": {"cluster_address": "127.0.0.11"}}}}}}
    (tmp_path / "inventory.yml").write_text(yaml.safe_dump(inventory))
    cache = tmp_path / "facts"
    env = {"ANSIBLE_GATHERING": "smart", "ANSIBLE_CACHE_PLUGIN": "jsonfile",
           "ANSIBLE_CACHE_PLUGIN_CONNECTION": str(cache), "ANSIBLE_CACHE_PLUGIN_TIMEOUT": "0"}
    inv = ["-i", str(tmp_path / "inventory.yml")]
    gathered = run_tool(["ansible-playbook", *inv, str(HERE / "gather_facts.yml")], timeout=120, **env)
    assert gathered.returncode == 0, gathered.stdout[-3000:]
    files = [p for p in cache.iterdir() if p.name.endswith("pi1")]
    assert len(files) == 1, sorted(p.name for p in cache.iterdir())
    stored = json.loads(files[0].read_text())
    wrapped = isinstance(stored, dict) and "__payload__" in stored  # ansible-core >= 2.19 wraps the facts
    facts = json.loads(stored["__payload__"]) if wrapped else stored
    assert facts["_ansible_facts_gathered"] and facts["ansible_userspace_bits"] in ("32", "64"), facts.keys()
    facts.update({"ansible_machine": pi1_machine, "ansible_architecture": pi1_machine,
                  "ansible_userspace_bits": pi1_bits})
    facts.pop("ansible_userspace_architecture", None)
    files[0].write_text(json.dumps({**stored, "__payload__": json.dumps(facts)} if wrapped else facts))
    return inv, env


@pytest.mark.timeout(300)
def test_site_refuses_32bit_userland_on_64bit_kernel_first(ansible_tool, tmp_path):
    run_tool = ansible_tool
    inv, env = _cluster(run_tool, tmp_path, "aarch64", "32")
    run = run_tool(["ansible-playbook", *inv, "playbooks/site.yml"], timeout=240, **env)
    assert run.returncode != 0, run.stdout[-3000:]
    assert "pi1 runs 32-bit Raspberry Pi OS" in run.stdout and "Raspberry Pi OS Lite (64-bit)" in run.stdout, \
        run.stdout[-3000:]
    # Refused in the node pre-flight play: no role started on any node, nothing changed anywhere.
    assert "PLAY [Prepare every node]" not in run.stdout, run.stdout[-3000:]
    assert "changed=0" in run.stdout and "changed=1" not in run.stdout


@pytest.mark.timeout(300)
@pytest.mark.parametrize("machine, bits, refused", [
    ("aarch64", "64", False),   # Raspberry Pi OS (64-bit)
    ("armv7l", "32", True),     # a 32-bit kernel too (Pi 2/3 images, or arm_64bit=0)
    ("x86_64", "32", True),     # any 32-bit userland
])
def test_node_preflight_on_each_kind_of_node(ansible_tool, tmp_path, machine, bits, refused):
    run_tool = ansible_tool
    inv, env = _cluster(run_tool, tmp_path, machine, bits)
    run = run_tool(["ansible-playbook", *inv, str(HERE / "preflight_node.yml")], timeout=240, **env)
    assert (run.returncode != 0) == refused, run.stdout[-3000:]
    assert ("pimpi needs a 64-bit system" in run.stdout) == refused, run.stdout[-3000:]
    assert "ok: [pi0]" in run.stdout, run.stdout[-3000:]  # the 64-bit head passes either way
