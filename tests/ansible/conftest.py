"""Helpers for the Ansible tests: where the playbooks are, and running the .venv's Ansible tools offline."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pimpi.procs import EXIT_TIMEOUT, end_group, start

REPO = Path(__file__).resolve().parents[2]
ANSIBLE_DIR = REPO / "ansible"
BIN = Path(sys.executable).parent


def ansible_env() -> dict[str, str]:
    """Our ansible.cfg, no colours, no retry files; nothing reaches the network unless a play does."""
    env = dict(os.environ)
    env.update({
        "ANSIBLE_CONFIG": str(ANSIBLE_DIR / "ansible.cfg"),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_FORCE_COLOR": "0",
        "PY_COLORS": "0",
        "NO_COLOR": "1",
        "PATH": f"{BIN}{os.pathsep}{env.get('PATH', '/usr/bin:/bin')}",
    })
    return env


def run_tool(argv: list[str], timeout: float, **env: str) -> subprocess.CompletedProcess:
    """Run an Ansible tool from the .venv in ansible/, capturing stdout and stderr together.

    Its own process group ends with it (forks and ssh masters included). On timeout the result has
    returncode 124 and the output so far, so a failing assert shows where the play was."""
    args = [str(BIN / argv[0]), *argv[1:]]
    proc = start(args, cwd=ANSIBLE_DIR, env={**ansible_env(), **env}, stdout=subprocess.PIPE,
                 stderr=subprocess.STDOUT, text=True)
    try:
        out, _ = proc.communicate(timeout=timeout)
        code = proc.returncode
    except subprocess.TimeoutExpired:
        end_group(proc)
        out, _ = proc.communicate()
        out, code = f"{out}\n[timed out after {timeout:g} s]", EXIT_TIMEOUT
    finally:
        end_group(proc)
    return subprocess.CompletedProcess(args, code, out)


def copy_source(work: Path) -> Path:
    """WORK/src: a copy of what the pimpi wheel is built from (for tests that change the source)."""
    src = work / "src"
    shutil.copytree(REPO / "pimpi", src / "pimpi", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("setup.cfg", "pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, src / name)
    return src


@pytest.fixture
def ansible_tool():
    """ansible_tool(['ansible-lint', ...], timeout=...) -> CompletedProcess, run in ansible/."""
    return run_tool


@pytest.fixture
def playbook():
    """playbook('site.yml', '-i', inventory, ...) -> CompletedProcess of ansible-playbook."""

    def _run(name: str, *args: str, timeout: float = 600, **env: str) -> subprocess.CompletedProcess:
        return run_tool(["ansible-playbook", *args, f"playbooks/{name}"], timeout=timeout, **env)

    return _run
