"""A bad inventory fails early, on the controller, with a clear message naming the bad value."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import yaml

ANSIBLE_DIR = Path(__file__).resolve().parents[2] / "ansible"


def _filters():
    path = ANSIBLE_DIR / "roles" / "cluster" / "filter_plugins" / "cluster.py"
    spec = importlib.util.spec_from_file_location("pimpi_ansible_cluster_filters", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _hosts(inventory: dict) -> tuple[list[str], dict[str, dict], dict]:
    """(node names head first, hostvars, all-vars) of a YAML inventory shaped like inventory.example.yml."""
    groups = inventory["all"]["children"]
    heads = list(groups["head"]["hosts"])
    names = heads + list(groups.get("workers", {}).get("hosts", {}))
    hostvars = {**groups["head"]["hosts"], **groups.get("workers", {}).get("hosts", {})}
    return names, {n: dict(hostvars[n] or {}) for n in names}, inventory["all"]["vars"]


def test_example_inventory_is_a_valid_cluster():
    f = _filters()
    names, hostvars, allvars = _hosts(yaml.safe_load((ANSIBLE_DIR / "inventory.example.yml").read_text()))
    table = f.cluster_table(names, hostvars)
    assert [row["hostname"] for row in table] == ["pi0", "pi1", "pi2", "pi3"]
    assert f.cluster_problems(table, names[:1], allvars["cluster_subnet"], allvars["cluster_user"],
                              allvars["cluster_shared_path"]) == []


@pytest.mark.parametrize("change, expected", [
    ({"pi2": {"cluster_address": None}}, "host pi2: no cluster_address"),
    ({"pi2": {"cluster_hostname": "pi1"}}, "host pi2: hostname 'pi1' is also the hostname of pi1"),
    ({"pi2": {"cluster_address": "10.0.0.11"}}, "cluster_address 10.0.0.11 is also the address of pi1"),
    ({"pi3": {"cluster_address": "10.9.0.13"}}, "cluster_address 10.9.0.13 is not inside cluster_subnet 10.0.0.0/24"),
    ({"pi3": {"cluster_address": "pi3.local"}}, "cluster_address 'pi3.local' is not an IP address"),
    ({"pi1": {"cluster_hostname": "Pi_1"}}, "hostname 'pi_1' is not a valid host name"),
])
def test_filter_names_each_problem(change, expected):
    f = _filters()
    names, hostvars, allvars = _hosts(yaml.safe_load((ANSIBLE_DIR / "inventory.example.yml").read_text()))
    for host, values in change.items():
        hostvars[host].update(values)
    table = f.cluster_table(names, hostvars)
    problems = f.cluster_problems(table, names[:1], allvars["cluster_subnet"], "mpi", "/srv/pimpi")
    assert any(expected in p for p in problems), problems


def test_filter_checks_the_shared_settings():
    f = _filters()
    problems = f.cluster_problems([], [], "10.0.0.0/33", "root", "srv")
    assert len(problems) == 4, problems
    assert "exactly one host" in problems[0]
    assert "'10.0.0.0/33' is not a subnet" in problems[1]
    assert "cluster_user 'root'" in problems[2]
    assert "cluster_shared_path 'srv'" in problems[3]


def _write_inventory(tmp_path: Path, subnet: str, head: dict, workers: dict) -> Path:
    inv = {"all": {"vars": {"cluster_subnet": subnet, "ansible_user": "nobody"},
                   "children": {"head": {"hosts": head}, "workers": {"hosts": workers}}}}
    path = tmp_path / "inventory.yml"
    path.write_text(yaml.safe_dump(inv))
    return path


# TEST-NET-1 addresses: if the checks let a bad inventory through, the play would try them and fail
# differently (unreachable), never with "Bad inventory".
@pytest.mark.parametrize("case, head, workers, subnet, expected", [
    ("no address", {"pi1": {"ansible_host": "192.0.2.1", "cluster_address": "10.0.0.1"}},
     {"pi2": {"ansible_host": "192.0.2.2"}}, "10.0.0.0/24",
     "host pi2: no cluster_address"),
    ("duplicate hostname", {"pi1": {"ansible_host": "192.0.2.1", "cluster_address": "10.0.0.1"}},
     {"pi1.lab": {"ansible_host": "192.0.2.2", "cluster_address": "10.0.0.2"}}, "10.0.0.0/24",
     "host pi1.lab: hostname 'pi1' is also the hostname of pi1"),
    ("subnet without the nodes", {"pi1": {"ansible_host": "192.0.2.1", "cluster_address": "10.0.0.1"}},
     {"pi2": {"ansible_host": "192.0.2.2", "cluster_address": "10.0.0.2"}}, "10.5.0.0/24",
     "host pi1: cluster_address 10.0.0.1 is not inside cluster_subnet 10.5.0.0/24"),
])
def test_bad_inventory_fails_before_any_node_is_touched(playbook, tmp_path, case, head, workers, subnet, expected):
    inventory = _write_inventory(tmp_path, subnet, head, workers)
    out = playbook("site.yml", "-i", str(inventory), timeout=120, ANSIBLE_TIMEOUT="3")
    assert out.returncode != 0, out.stdout[-3000:]
    text = " ".join(out.stdout.split())  # Ansible folds long messages over lines
    assert "Bad inventory:" in text and expected in text, out.stdout[-3000:]
    assert "Gathering Facts" not in out.stdout, "a node was contacted before the inventory was checked"
    assert "UNREACHABLE" not in out.stdout


def test_cluster_addresses_are_every_address_nodes_hold_in_the_subnet():
    f = _filters()
    table = f.cluster_table(["pi1", "pi2", "pi3"], {
        "pi1": {"cluster_address": "10.0.0.11"},
        "pi2": {"cluster_address": "10.0.0.12"},  # Ethernet, and Wi-Fi in the same subnet
        "pi3": {"cluster_address": "10.0.0.13"}})
    hostvars = {
        "pi1": {"ansible_facts": {"all_ipv4_addresses": ["10.0.0.11", "172.17.0.1"], "all_ipv6_addresses": []}},
        "pi2": {"ansible_facts": {"all_ipv4_addresses": ["10.0.0.12", "10.0.0.112"],
                                  "all_ipv6_addresses": ["fe80::1%wlan0"]}},
        "pi3": {},  # outside a --limit run, no facts: its cluster address alone
    }
    assert f.cluster_addresses(table, hostvars, "10.0.0.0/24") == ["10.0.0.11", "10.0.0.12", "10.0.0.13",
                                                                     "10.0.0.112"]


def test_newest_kernel_is_of_the_running_flavour():
    f = _filters()
    pi = ["6.6.51+rpt-rpi-v8", "6.6.51+rpt-rpi-2712", "6.12.25+rpt-rpi-v8", "6.12.25+rpt-rpi-2712"]
    assert f.cluster_newest_kernel(pi, "6.6.51+rpt-rpi-2712") == "6.12.25+rpt-rpi-2712"
    assert f.cluster_newest_kernel(pi[:2], "6.6.51+rpt-rpi-v8") == "6.6.51+rpt-rpi-v8"
    debian = ["6.1.0-9-amd64", "6.1.0-10-amd64", "6.1.0-28-cloud-amd64"]
    assert f.cluster_newest_kernel(debian, "6.1.0-9-amd64") == "6.1.0-10-amd64"  # 10 > 9, not as text
    assert f.cluster_newest_kernel([], "6.1.0-9-amd64") == "6.1.0-9-amd64"
