"""Slurm pieces that need no Slurm: node lists, the batch script, launcher choice, job states, CLI errors."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from pimpi.cli import cli
from pimpi.cluster.launch import Launch
from pimpi.cluster.slurm import allocation, batch, jobs, launch, view


def test_expand_nodelist():
    assert allocation.expand_nodelist("pi[1-3,5],head") == ["pi1", "pi2", "pi3", "pi5", "head"]
    assert allocation.expand_nodelist("n[08-10]") == ["n08", "n09", "n10"]
    assert allocation.expand_nodelist("a[1-2]-ib") == ["a1-ib", "a2-ib"]
    with pytest.raises(ValueError, match="x-y"):
        allocation.expand_nodelist("pi[x-y]")


def test_current_allocation_from_the_environment():
    assert allocation.current({}) is None
    got = allocation.current({"SLURM_JOB_ID": "7", "SLURM_JOB_NODELIST": "pi[1-2]", "SLURM_NTASKS": "4"})
    assert got == allocation.Allocation("7", ["pi1", "pi2"], 4)


def test_script_is_readable_and_requeueable():
    text = batch.script_text(batch.Batch(["render", "scene", "julia", "--out", "/srv/a b"], nodes=2, ntasks=4,
                                         time="2:00:00", log="/srv/log-%j.out", chdir="/srv"),
                             python="/opt/pimpi/venv/bin/python")
    assert text.startswith("#!/bin/bash\n")
    for line in ("#SBATCH --job-name=pimpi-render-scene", "#SBATCH --nodes=2", "#SBATCH --ntasks=4",
                 "#SBATCH --time=2:00:00", "#SBATCH --output=/srv/log-%j.out", "#SBATCH --open-mode=append",
                 "#SBATCH --requeue", "exec /opt/pimpi/venv/bin/python -m pimpi run -- render scene julia "
                 "--out '/srv/a b'"):
        assert line in text.splitlines()


@pytest.mark.parametrize("limit", ["30", "1:30", "1:00:00", "2-00", "2-12:00:00", "infinite"])
def test_time_limits(limit):
    assert batch.check_time(limit) == limit


@pytest.mark.parametrize("bad", [batch.Batch(["doctor"], nodes=0), batch.Batch(["doctor"], nodes=3, ntasks=2),
                                 batch.Batch(["doctor"], time="1h"), batch.Batch(["missing.py"]),
                                 batch.Batch(["doctor"], name="a b")])
def test_bad_batch_values_are_refused(bad):
    with pytest.raises(ValueError):
        batch.script_text(bad)


def test_job_names():
    assert batch.job_name(["pimpi", "bench", "pingpong"]) == "pimpi-bench-pingpong"
    assert batch.job_name(["dir/my.script.py", "--x"]) == "pimpi-my_script"
    assert batch.job_name(["-m", "pkg.mod"]) == "pimpi-mod"


def test_launcher_choice():
    alloc = allocation.Allocation("7", ["pi1", "pi2"], 4)
    assert launch.choose_launcher("auto", alloc) == "mpirun"
    assert launch.choose_launcher("auto", None) == "mpirun"
    with pytest.raises(ValueError, match="needs a Slurm allocation"):
        launch.choose_launcher("srun", None)
    cmd = launch.srun_command(Launch(nprocs=None, target=["doctor"]), alloc)
    assert cmd[:5] == ["srun", "--mpi=pmix", "--kill-on-bad-exit=1", "-n", "4"]
    with pytest.raises(ValueError, match="hostfile"):
        launch.srun_command(Launch(nprocs=None, target=["doctor"], hostfile="h"), alloc)


def test_exit_codes_and_states():
    assert jobs.exit_code({"JobState": "COMPLETED", "ExitCode": "0:0"}) == 0
    assert jobs.exit_code({"JobState": "FAILED", "ExitCode": "3:0"}) == 3
    assert jobs.exit_code({"JobState": "CANCELLED", "ExitCode": "0:15"}) == 143
    assert jobs.exit_code({"JobState": "TIMEOUT", "ExitCode": "0:0"}) == 124
    assert jobs._requeue_coming({"JobState": "NODE_FAIL", "Requeue": "1"})


def test_view_problems():
    nodes = view.parse_nodes("pi1|idle|4|900|none\npi2|down*|4|900|Not responding\npi3|drain|4|900|fan\n"
                             "pi4|alloc|4|900|none\n")
    got = view.problems(view.SlurmView(partitions=[("pimpi*", "up")], nodes=nodes, job_nodes=["pi1", "pi4"]),
                        ["pi1", "pi1"])
    assert got == ["Slurm node pi2 is down* (Not responding)", "Slurm node pi3 is drain (fan)",
                   "no rank ran on allocated node(s) pi4"]
    assert view.problems(view.SlurmView(munge="Invalid credential")) == ["munge does not work: Invalid credential"]


def test_run_inside_an_allocation_needs_no_hostfile(monkeypatch):
    monkeypatch.setenv("SLURM_JOB_ID", "9")
    monkeypatch.setenv("SLURM_JOB_NODELIST", "pi[1-2]")
    monkeypatch.setenv("SLURM_NTASKS", "6")
    result = CliRunner().invoke(cli, ["run", "--dry-run", "--", "doctor"])
    assert result.exit_code == 0, result.output
    assert "Slurm job 9 on pi1,pi2" in result.stderr
    command = result.stderr.splitlines()[-1]
    assert " -n 6 " in command and "--hostfile" not in command and "OVERSUBSCRIBE" not in command
    bad = CliRunner().invoke(cli, ["run", "--dry-run", "--hostfile", __file__, "--", "doctor"])
    assert bad.exit_code == 2


def test_submit_errors_are_one_line_before_any_work(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for args, needle in ((["-N", "0"], "0 is out of range 1..4096"), (["-t", "soon"], "--time 'soon'"),
                         (["--log", "nodir/x.out"], "missing or not writable")):
        result = CliRunner().invoke(cli, ["submit", *args, "--", "doctor"])
        assert result.exit_code == 2 and needle in result.stderr, result.output
        assert "Traceback" not in result.output
    assert list(tmp_path.iterdir()) == []


def test_submit_dry_run_prints_the_script(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["submit", "-N", "2", "--dry-run", "--", "bench", "pingpong"])
    assert result.exit_code == 0
    assert "#SBATCH --nodes=2" in result.stdout and f"#SBATCH --chdir={tmp_path}" in result.stdout
    assert list(tmp_path.iterdir()) == []


def test_submit_without_slurm_is_a_runtime_error(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bin").mkdir()
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    result = CliRunner().invoke(cli, ["submit", "--", "doctor"])
    assert result.exit_code == 1 and "sbatch not found" in result.stderr, result.output
    assert [p.name for p in tmp_path.iterdir()] == ["bin"]


def test_doctor_leaves_slurm_out_on_request(monkeypatch):
    monkeypatch.setenv("SLURM_CONF", "/nonexistent/slurm.conf")  # "set up", but nothing answers
    quiet = CliRunner().invoke(cli, ["doctor", "--no-slurm"])
    assert quiet.exit_code == 0 and "Slurm" not in quiet.stdout, quiet.output
