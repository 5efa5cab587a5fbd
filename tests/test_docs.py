"""The documentation cannot rot: the site builds strictly, what it names exists, the README's tour runs."""

from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from pimpi import procs
from pimpi.testing import down_when_gone, marked_processes

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
PAGES = sorted((ROOT / "docs").rglob("*.md"))
DOCS = [README, *PAGES]
BIN = Path(sys.executable).parent  # the venv under test: its pimpi, mpirun and mkdocs
STATE = Path(os.environ.get("PIMPI_VCLUSTER_STATE", "/run/pimpi"))
TOUR_MARK = "<!-- tour -->"
COMMAND_TIMEOUT_S = 240  # one tour command; on an idle machine each takes under 15 s


def _code(text: str) -> list[str]:
    """Every fenced block and inline code span of a Markdown text."""
    spans, fence, block = [], None, []
    for line in text.splitlines():
        if fence is None and line.lstrip().startswith("```"):
            fence, block = line.lstrip()[:3], []
        elif fence is not None and line.lstrip().startswith(fence):
            spans.append("\n".join(block))
            fence = None
        elif fence is not None:
            block.append(re.sub(r"\s#\s.*", "", line))  # a shell comment is prose
        else:
            spans.extend(re.findall(r"`([^`]+)`", line))
    return spans


def _named(pattern: str) -> dict[str, list[str]]:
    """Matches of `pattern` in the code of README.md and docs/*.md -> the files naming them."""
    found: dict[str, list[str]] = {}
    for doc in DOCS:
        for span in _code(doc.read_text()):
            for match in re.finditer(pattern, span):
                found.setdefault(match.group(1), []).append(str(doc.relative_to(ROOT)))
    return found


def test_mkdocs_build_strict_passes(tmp_path: Path) -> None:
    site = tmp_path / "site"
    result = subprocess.run([str(BIN / "mkdocs"), "build", "--strict", "-f", str(ROOT / "mkdocs.yml"), "-d", str(site)],
                            capture_output=True, text=True, timeout=300, cwd=ROOT, stdin=subprocess.DEVNULL,
                            env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    for page in PAGES:  # every page is built (strict also refuses a page left out of the nav)
        rel = page.relative_to(ROOT / "docs").with_suffix("")
        built = site / ("index.html" if rel.name == "index" else rel / "index.html")
        assert built.is_file(), f"{page.relative_to(ROOT)} was not built"


def test_readme_is_a_front_door_whose_quickstart_is_what_ci_runs() -> None:
    text = README.read_text()
    assert len(text.splitlines()) <= 200, f"README.md has {len(text.splitlines())} lines; the docs are in docs/"
    quickstart = text.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    commands = [line.split("#")[0].strip() for line in _code(quickstart)[0].splitlines()]
    assert commands == ["make demo", "make test"]
    ci = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert "make test" in ci


def test_readme_links_point_at_files_that_exist() -> None:
    links = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", README.read_text())
    local = [link for link in links if "://" not in link]
    assert local, "README.md links to no page of docs/"
    missing = [link for link in local if not (ROOT / link).exists()]
    assert not missing, f"README.md links to missing files: {missing}"


def test_paths_named_in_the_docs_exist() -> None:
    named = _named(r"(?<![\w./~-])((?:pimpi|tests|tools|examples|ansible)/[\w./*-]*)")
    assert any(path.startswith("pimpi/") for path in named), "no pimpi/ path found: the pattern is broken"
    missing = {path: docs for path, docs in named.items()
               if not (glob.glob(str(ROOT / path)) if "*" in path else (ROOT / path).exists())}
    assert not missing, f"paths named in the docs that do not exist: {missing}"


def test_pimpi_commands_named_in_the_docs_exist() -> None:
    import click

    from pimpi.cli import cli

    named = _named(r"(?<![\w./\[-])pimpi((?: [a-z][a-z0-9-]*)+)")
    assert " vcluster up" in named and " render scene" in named, "the command pattern is broken"
    wrong = {}
    for words, docs in named.items():
        command: click.Command = cli
        for word in words.split():
            if not isinstance(command, click.Group):
                break  # the rest are the command's arguments
            sub = command.get_command(click.Context(command), word)
            if sub is None:
                wrong[f"pimpi{words}"] = docs
                break
            command = sub
    assert not wrong, f"commands named in the docs that `pimpi` does not have: {wrong}"


def _options(command, args: list[str], line: str, wrong: list[str]) -> None:
    """Check the options in `args` (what follows `pimpi` on a line) against the click command tree."""
    import click

    for index, word in enumerate(args):
        if word == "--":  # `run`/`submit` take another pimpi command after it; others a program
            rest = args[index + 1:]
            if command.name in ("run", "submit") and rest and not (rest[0] == "-m" or rest[0].endswith(".py")):
                from pimpi.cli import cli

                _options(cli, rest, line, wrong)
            return
        if isinstance(command, click.Group) and not word.startswith("-"):
            sub = command.get_command(click.Context(command), word)
            if sub is None:
                return  # the command check names it
            command = sub
        elif word.startswith("-") and len(word) > 1 and not word[1].isdigit():
            known = {"-h", "--help"} | {opt for param in command.params for opt in param.opts + param.secondary_opts}
            if word.split("=")[0] not in known:
                wrong.append(f"{word} (pimpi {command.name}) in: {line.strip()}")


def test_options_in_the_docs_commands_exist() -> None:
    import shlex

    from pimpi.cli import cli

    wrong: list[str] = []
    checked = 0
    for doc in DOCS:
        for span in _code(doc.read_text()):
            for line in span.replace("\\\n", " ").splitlines():
                for match in re.finditer(r"(?<![\w./\[-])pimpi ((?:[a-z-]).*)", line.removeprefix("$ ")):
                    try:
                        args = shlex.split(match.group(1))
                    except ValueError:
                        args = match.group(1).split()
                    _options(cli, args, f"{doc.relative_to(ROOT)}: {line}", wrong)
                    checked += 1
    assert checked > 50, f"only {checked} command lines found: the pattern is broken"
    assert not wrong, "options the commands do not have:\n" + "\n".join(wrong)


_RESOLVE = """
import importlib, sys
bad = []
for name in sys.argv[1:]:
    parts = name.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
            break
        except ImportError:
            continue
    try:
        for attr in parts[cut:]:
            obj = getattr(obj, attr)
    except AttributeError:
        bad.append(name)
print("\\n".join(bad))
"""


def test_pimpi_modules_and_names_in_the_docs_import() -> None:
    named = set(_named(r"(?<![\w./-])(pimpi(?:\.[A-Za-z_]\w*)+)"))
    for line in _named(r"(from pimpi[\w.]* import [\w, ]+)"):
        module, names = re.match(r"from (\S+) import (.+)", line).groups()
        named.update(f"{module}.{name.strip()}" for name in names.split(",") if name.strip())
    assert "pimpi.futures" in named, "the module pattern is broken"
    # in a child process: importing the collectives starts MPI, which this test process must not
    result = subprocess.run([sys.executable, "-c", _RESOLVE, *sorted(named)], capture_output=True, text=True,
                            timeout=120, cwd=ROOT, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == [], f"names in the docs that do not import: {result.stdout.split()}"


def tour() -> list[tuple[str, list[str]]]:
    """The README's tour: (command, the output shown under it) for each `$ ` line of a marked block."""
    steps: list[tuple[str, list[str]]] = []
    blocks = README.read_text().split(TOUR_MARK)[1:]
    for block in blocks:
        body = block.split("```console\n", 1)[1].split("\n```", 1)[0]
        for line in body.splitlines():
            if line.startswith("$ "):
                steps.append((line[2:], []))
            else:
                steps[-1][1].append(line)
    return steps


def _normal(line: str) -> str:
    """A line as compared: measured numbers (those with a decimal point) and spacing do not count."""
    return " ".join(re.sub(r"\d+\.\d+", "#", line).split())


def test_readme_tour_is_marked() -> None:
    steps = tour()
    assert len(steps) >= 5 and all(shown for _, shown in steps), steps
    assert any("vcluster up" in command for command, _ in steps) and "vcluster down" in steps[-1][0]


def _vclusters(steps: list[tuple[str, list[str]]]) -> list[str]:
    return [re.search(r"--name (\w+)", command).group(1) for command, _ in steps if "vcluster up" in command]


@pytest.mark.root
@pytest.mark.timeout(1500)
def test_readme_tour_runs_and_prints_the_last_line_it_shows(tmp_path: Path) -> None:
    """Each `$` command of the tour, in a fresh folder with the venv on PATH, exits 0 within its
    timeout and prints the last (unshortened) line the README shows under it; afterwards no
    cluster, bridge or process of the tour is left."""
    steps = tour()
    names = _vclusters(steps)
    for name in names:
        assert not (STATE / f"vcluster-{name}.json").exists(), f"a virtual cluster {name!r} is already up"
        down_when_gone(name)
    assert shutil.which("pimpi", path=str(BIN)), f"no pimpi in {BIN}"
    token = uuid.uuid4().hex  # in every process the tour starts, to find any left running
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", "PIMPI_TOUR": token}
    timings = []
    try:
        for command, shown in steps:
            log, begin = tmp_path / "step.log", time.monotonic()
            with open(log, "w") as out:
                proc = procs.start(["bash", "-c", command], guard=True, stdout=out, stderr=subprocess.STDOUT,
                                   cwd=tmp_path, env=env)
                code = procs.wait(proc, timeout=COMMAND_TIMEOUT_S)
                procs.end_group(proc)
            printed = log.read_text(errors="replace").replace("\r", "\n")
            timings.append(f"{time.monotonic() - begin:6.1f} s  exit {code}  {command[:70]}")
            assert code == 0, f"`{command}` exited {code}:\n{printed[-3000:]}"
            expected = [line for line in shown if "…" not in line]
            lines = {_normal(line) for line in printed.splitlines()}
            assert _normal(expected[-1]) in lines, f"`{command}` no longer prints {expected[-1]!r}:\n{printed[-3000:]}"
    finally:
        for name in names:  # a failed step must not leave the cluster up
            subprocess.run([str(BIN / "pimpi"), "vcluster", "down", "--name", name], capture_output=True,
                           timeout=300, stdin=subprocess.DEVNULL)
    print("\n".join(timings))
    for name in names:
        assert not (STATE / f"vcluster-{name}.json").exists(), f"the tour left cluster {name!r} up"
        assert subprocess.run(["ip", "link", "show", f"pimpi-{name}"], capture_output=True).returncode != 0
    assert marked_processes(f"PIMPI_TOUR={token}") == [], "the tour left processes running"
