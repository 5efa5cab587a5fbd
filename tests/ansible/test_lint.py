"""The playbooks pass ansible-lint (production profile, offline), yamllint and a syntax check."""

from __future__ import annotations

from pathlib import Path

import pytest

PLAYBOOKS = sorted(p.name for p in (Path(__file__).resolve().parents[2] / "ansible" / "playbooks").glob("*.yml"))


def test_playbooks_are_found():
    assert {"site.yml", "verify.yml", "reset.yml"} <= set(PLAYBOOKS)


def test_ansible_lint_production_offline(ansible_tool):
    out = ansible_tool(["ansible-lint", "--offline", "--profile", "production", "--nocolor"], timeout=280)
    assert out.returncode == 0, out.stdout[-4000:]
    assert "Profile 'production' was required, and it passed" in out.stdout


def test_yamllint(ansible_tool):
    out = ansible_tool(["yamllint", "--strict", "."], timeout=120)
    assert out.returncode == 0, out.stdout[-4000:]


@pytest.mark.parametrize("name", PLAYBOOKS)
def test_syntax_check(ansible_tool, name):
    out = ansible_tool(["ansible-playbook", "--syntax-check", "-i", "inventory.example.yml", f"playbooks/{name}"],
                       timeout=120)
    assert out.returncode == 0, out.stdout[-4000:]
    assert f"playbook: playbooks/{name}" in out.stdout
