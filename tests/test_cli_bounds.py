"""Every number a pimpi command takes is bounded and every output path is checked before any work.

The walk over `pimpi --help` (every command, every parameter) is what keeps a new option
from forgetting: a numeric option without a `Bounded` type, or an output path without
`OutPath`, fails here. The CLI cases then try each class with several absurd values.
"""

from __future__ import annotations

import math
import os
import stat
import subprocess

import click
import pytest
from click.testing import CliRunner

from pimpi.cli import cli
from pimpi.cliutil import Bounded, OutPath
from tests.helpers import pimpi

pytestmark = pytest.mark.timeout(120)

# Parameters that are text by nature (names, patterns, commands, inputs that must exist).
# A new text option goes here on purpose; a new number or output path never does.
TEXT = {
    "--iface", "--mpirun", "target", "--time", "--partition", "--name", "--log", "--sbatch-option",
    "collective", "--algorithm", "script", "args", "name", "file", "--function", "files", "--expect",
    "command", "--codec", "--arch", "--subnet", "node", "--template", "--profile", "--ops", "--algorithms",
    "--host", "--token",
}
INPUT_PATHS = {"path", "--hostfile", "src", "predicted", "measured", "folders", "previous", "now", "blend", "--names"}  # read, never written


def _commands(group: click.Command = cli, path: tuple[str, ...] = ("pimpi",)):
    if isinstance(group, click.Group):
        for name, sub in group.commands.items():
            yield from _commands(sub, (*path, name))
    else:
        yield " ".join(path), group


def _params():
    for where, command in _commands():
        for param in command.params:
            if isinstance(param, click.Option) and (param.is_flag or param.count):
                continue
            if isinstance(param.type, click.Choice):
                continue
            yield where, param


def _name(param: click.Parameter) -> str:
    """An option's long name (`--frames`), an argument's name (`src`)."""
    return max(param.opts, key=len) if isinstance(param, click.Option) else param.name


def test_the_walk_sees_every_command_family():
    names = {where for where, _ in _commands()}
    for expected in ("pimpi run", "pimpi render scene", "pimpi render cmd", "pimpi render transcode",
                     "pimpi bench scaling", "pimpi exercises check", "pimpi collectives trace", "pimpi submit",
                     "pimpi doctor", "pimpi vcluster up", "pimpi vcluster slurm up"):
        assert expected in names
    assert len(list(_params())) > 100


def test_every_numeric_option_has_a_finite_bound():
    unbounded = []
    for where, param in _params():
        kind = param.type
        if isinstance(kind, Bounded):
            assert math.isfinite(kind.lo) and math.isfinite(kind.hi), (where, param.name)
            continue
        numeric = (click.types.IntParamType, click.types.FloatParamType, click.types.BoolParamType)
        if isinstance(kind, numeric) or (param.callback and _name(param) not in TEXT):
            unbounded.append(f"{where} {_name(param)}")
    assert not unbounded, f"numeric options without a Bounded type (pimpi.cliutil): {unbounded}"


def test_every_other_parameter_is_declared_text_an_input_or_an_output_path():
    undeclared = []
    for where, param in _params():
        if isinstance(param.type, (Bounded, OutPath)):
            continue
        name = _name(param)
        if isinstance(param.type, click.Path):
            if name not in INPUT_PATHS:
                undeclared.append(f"{where} {name} (a click.Path that is written? use OutPath)")
        elif name not in TEXT:
            undeclared.append(f"{where} {name}")
    assert not undeclared, f"parameters neither Bounded, OutPath, input nor declared text: {undeclared}"


# -- the classes, through the real CLI ----------------------------------------------------------

def _refused(args: list[str], needle: str, tmp_path, code: int = 2) -> None:
    before = set(os.listdir(tmp_path))
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == code, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error")]
    assert len(errors) == 1 and needle in errors[0], result.output
    assert "Traceback" not in result.output
    assert set(os.listdir(tmp_path)) == before, "something was written"


@pytest.mark.parametrize("option, value", [
    ("--frames", "99999999999"), ("--frames", "0"), ("--frames", "-3"), ("--frames", "1e3"),
    ("-W", "100000"), ("-H", "99999999999999999999"), ("--max-iter", "1e20"), ("--max-iter", "99999999999"),
    ("--fps", "nan"), ("--fps", "inf"), ("--fps", "-inf"), ("--fps", "0"), ("--retries", "1000000"),
    ("--tiles", "9999x1"), ("--tiles", "2x99999999999999999999"), ("--tiles", "0x2"),
])
def test_render_scene_refuses_absurd_numbers(option, value, tmp_path):
    _refused(["render", "scene", "mandelbrot", "--out", str(tmp_path / "f"), option, value], value, tmp_path)


@pytest.mark.parametrize("args, needle", [
    (["--frames", "0-9999999999"], "0-9999999999"),
    (["--frames", "99999999999"], "99999999999"),
    (["--frames", "0-99999999"], "more than 1000000 frames"),
    (["--frames", "1-4", "--chunk", "99999999999"], "99999999999"),
    (["--frames", "1-4", "--task-timeout", "nan"], "nan"),
    (["--frames", "1-4", "--task-timeout", "1e300"], "1e300"),
    (["--frames", "1-4", "--retries", "-1"], "-1"),
])
def test_render_cmd_refuses_absurd_numbers_even_for_a_dry_run(args, needle, tmp_path):
    _refused(["render", "cmd", *args, "--out", str(tmp_path / "o"), "--expect", "f{frame}.png", "--dry-run",
              "--", "echo", "{out}/f.png"], needle, tmp_path)


@pytest.mark.parametrize("placeholder", ["{frame:>9999999999999}", "{frame:09999d}", "{out:.99999}",
                                         "{start:0>65}"])
def test_render_cmd_bounds_format_specs(placeholder, tmp_path):
    _refused(["render", "cmd", "--frames", "1-2", "--out", str(tmp_path / "o"), "--expect", "f{frame}.png",
              "--dry-run", "--", "echo", "{out}/" + placeholder], placeholder, tmp_path)


@pytest.mark.parametrize("args, needle", [
    (["run", "-n", "99999999999999999999", "--dry-run", "--", "doctor"], "99999999999999999999"),
    (["run", "-n", "0", "--dry-run", "--", "doctor"], "'-n'"),
    (["run", "--timeout", "nan", "--dry-run", "--", "doctor"], "nan"),
    (["run", "--timeout", "inf", "--dry-run", "--", "doctor"], "inf"),
    (["submit", "-N", "100000", "--dry-run", "--", "doctor"], "100000"),
    (["submit", "-t", "99999999999", "--dry-run", "--", "doctor"], "99999999999"),
    (["submit", "--run-timeout", "nan", "--dry-run", "--", "doctor"], "nan"),
    (["exercises", "check", "bcast_binomial", "x.py", "-n", "1,2,99999"], "99999"),
    (["exercises", "check", "bcast_binomial", "x.py", "--timeout", "nan"], "nan"),
    (["collectives", "list", "-p", "1e9"], "1e9"),
    (["collectives", "trace", "bcast", "--size", "99999999999"], "99999999999"),
    (["bench", "pingpong", "--sizes", "1:1T"], "1:1T"),
    (["bench", "pingpong", "--loops", "99999999999"], "99999999999"),
    (["bench", "scaling", "--ranks", "1,2,99999999"], "99999999"),
    (["bench", "predict", "--profile", "pi4", "--local-speed", "nan"], "nan"),
    (["bench", "compare", "a.json", "b.json", "--tolerance", "inf"], "inf"),
    (["doctor", "--hot-celsius", "nan"], "nan"),
    (["vcluster", "up", "--nodes", "100000"], "100000"),
    (["vcluster", "slow", "n1", "--delay", "99999s"], "99999s"),
    (["vcluster", "slow", "n1", "--rate", "999999gbit"], "999999gbit"),
    (["vcluster", "slurm", "up", "--timeout", "nan"], "nan"),
    (["render", "transcode", "a.mp4", "b.mp4", "--segment-seconds", "inf"], "inf"),
    (["render", "transcode", "a.mp4", "b.mp4", "--threads", "99999"], "99999"),
])
def test_every_family_refuses_absurd_numbers(args, needle, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _refused(args, needle, tmp_path)


@pytest.mark.parametrize("option, value, needle", [
    ("--video", "{tmp}/v.txt", "must end in .mp4"),
    ("--video", "{tmp}/missing/v.mp4", "does not exist"),
    ("--video", "{tmp}", "must end in"),
    ("--video", "{tmp}/d.mp4", "is a folder"),
    ("--video", "/proc/v.mp4", "proc"),
    ("--stats", "", "empty path"),
    ("--stats", "{tmp}/s.txt", ".json"),
    ("--stats", "{tmp}/fifo.json", "special file"),
    ("--gantt", "/sys/g.png", "sysfs"),
    ("--out", "", "empty path"),
    ("--out", "{tmp}/file", "is a file"),
    ("--out", "/proc/frames", "proc"),
])
def test_render_scene_checks_every_output_path_before_any_work(option, value, needle, tmp_path):
    (tmp_path / "d.mp4").mkdir()
    (tmp_path / "file").write_text("x")
    os.mkfifo(tmp_path / "fifo.json")
    args = ["render", "scene", "mandelbrot", "--frames", "2", "-W", "16", "-H", "16"]
    if option != "--out":
        args += ["--out", str(tmp_path / "frames")]
    _refused([*args, option, value.format(tmp=tmp_path)], needle, tmp_path)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into any folder")
def test_an_unwritable_folder_is_refused_for_output(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        _refused(["render", "scene", "mandelbrot", "--out", str(locked / "f")], "not writable", tmp_path)
    finally:
        locked.chmod(0o755)


@pytest.mark.parametrize("args, needle", [
    (["bench", "pingpong", "--json", "{tmp}/nope/p.json"], "does not exist"),
    (["bench", "scaling", "--plot", "{tmp}/p.svg"], ".png"),
    (["doctor", "--json", "{tmp}"], "must end in .json"),
    (["collectives", "trace", "bcast", "--svg", "{tmp}/t.png"], ".svg"),
    (["exercises", "check", "bcast_binomial", "x.py", "--json", "/dev/x.json"], "devtmpfs"),
    (["render", "cmd", "--frames", "1", "--out", "{tmp}/o", "--expect", "f.png", "--stats", "{tmp}/x/s.json",
      "--", "echo", "{{out}}"], "does not exist"),
])
def test_other_commands_check_output_paths_first(args, needle, tmp_path):
    _refused([a.format(tmp=tmp_path) for a in args], needle, tmp_path)


@pytest.mark.parametrize("args, needle", [
    (["{tmp}/in.mp4", "{tmp}/out.txt"], "must end in .mp4"),
    (["{tmp}/in.mp4", "{tmp}/out.mp4", "--codec", "nosuchcodec"], "nosuchcodec"),
    (["{tmp}/in.mp4", "{tmp}/out.mp4", "--preset", "ludicrous"], "ludicrous"),
    (["{tmp}/in.mp4", ""], "empty path"),
])
def test_transcode_refuses_kinds_codecs_and_presets_before_any_work(args, needle, tmp_path):
    (tmp_path / "in.mp4").write_bytes(b"not really a video")
    _refused(["render", "transcode", *[a.format(tmp=tmp_path) for a in args]], needle, tmp_path)


def test_a_frame_larger_than_the_memory_is_refused(tmp_path, monkeypatch):
    from pimpi.cliutil import memory_problem
    from pimpi.cluster.facts import mem_available
    from pimpi.render.job import frame_memory

    available = mem_available()
    assert available and available > 0
    per_rank, shared = frame_memory(16384, 16384)
    assert per_rank > 16384 * 16384 and shared > 16384 * 16384 * 3
    monkeypatch.setenv("OMPI_COMM_WORLD_LOCAL_SIZE", "4")
    problem = memory_problem("-W 16384 -H 16384", per_rank, shared, available=4 * per_rank)
    assert problem and problem.startswith("-W 16384 -H 16384: 4 ranks on this node need about")
    assert memory_problem("-W 640 -H 360", *frame_memory(640, 360), available=available) is None
    monkeypatch.delenv("OMPI_COMM_WORLD_LOCAL_SIZE")
    monkeypatch.setattr("pimpi.cluster.facts.mem_available", lambda: 512 * 2**20)  # a small Pi's
    _refused(["render", "scene", "mandelbrot", "--out", str(tmp_path / "f"), "-W", "16384", "-H", "16384"],
             "-W 16384 -H 16384", tmp_path)


def test_more_local_ranks_than_the_memory_holds_are_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("pimpi.cluster.facts.mem_available", lambda: 512 * 2**20)  # a small Pi's
    _refused(["run", "-n", "64", "--dry-run", "--", "doctor"], "-n 64: 64 ranks on this node need", tmp_path)
    result = CliRunner().invoke(cli, ["run", "-n", "4", "--dry-run", "--", "doctor"])
    assert result.exit_code == 0, result.output  # 4 ranks fit in 512 MiB


def test_a_benchmark_buffer_larger_than_the_memory_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr("pimpi.cluster.facts.mem_available", lambda: 512 * 2**20)  # a small Pi's
    _refused(["bench", "pingpong", "--sizes", "1G"], "--sizes 1024M", tmp_path)


# -- real processes: MPI started, and two ranks under `pimpi run` --------------------------------

def _pimpi(*args: str, cwd=None, timeout: float = 150) -> subprocess.CompletedProcess:
    return pimpi(*args, cwd=cwd, timeout=timeout)


def test_one_process_failing_after_mpi_started_exits_without_the_abort_banner(tmp_path):
    proc = _pimpi("render", "cmd", "--frames", "1", "--out", str(tmp_path / "o"), "--expect", "f.png",
                  "--retries", "0", "-q", "--", "false", "{out}")
    text = proc.stdout + proc.stderr
    assert proc.returncode == 1, text
    assert "failed for good" in proc.stderr
    for banner in ("Sorry!", "MPI_ABORT", "help-mpi-api", "MPI_Abort"):
        assert banner not in text, text
    assert "Traceback" not in text


@pytest.mark.timeout(300)
@pytest.mark.parametrize("extra, needle", [
    (["--frames", "99999999999"], "99999999999"),
    (["--fps", "nan"], "nan"),
    (["--frames", "2", "--stats", "{tmp}/nope/s.json"], "does not exist"),
    (["--frames", "2", "--video", "{tmp}/v.txt"], "v.txt"),
])
def test_under_two_ranks_a_bad_value_is_one_error_exit_2_and_nothing_is_written(extra, needle, tmp_path):
    out = tmp_path / "frames"
    proc = _pimpi("run", "-n", "2", "--timeout", "240", "--", "render", "scene", "mandelbrot", "-W", "16", "-H", "16",
                  "--out", str(out), *[a.format(tmp=tmp_path) for a in extra], cwd=tmp_path, timeout=280)
    assert proc.returncode == 2, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("Error")]
    assert len(errors) == 1 and needle in errors[0], proc.stderr  # rank 0 alone says it
    assert "Traceback" not in proc.stderr
    assert sorted(os.listdir(tmp_path)) == []
