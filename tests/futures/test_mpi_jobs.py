"""pimpi.futures under real mpirun at 1-5 ranks: the same results as local processes, resume
after a killed worker, failing items reported, and jobs that always end."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from pimpi.journal import ResultJournal



_LOCAL: dict[str, object] = {}


@pytest.fixture
def local_equal(jobs, tmp_path_factory) -> object:
    """What equal.py prints with local processes (computed once)."""
    if "equal" not in _LOCAL:
        proc = jobs.run_local("equal.py", str(tmp_path_factory.mktemp("local") / "journal"))
        assert proc.returncode == 0, proc.stderr
        _LOCAL["equal"] = jobs.result(proc)
    return _LOCAL["equal"]


@pytest.mark.parametrize("ranks", [1, 2, 3, 4, 5])
def test_results_equal_local_process_pool(jobs, ranks: int, tmp_path: Path, local_equal: object) -> None:
    proc = jobs.run_job(ranks, "equal.py", str(tmp_path / "journal"))
    assert proc.returncode == 0, proc.stderr
    assert jobs.result(proc) == local_equal
    assert jobs.leftovers(str(tmp_path)) == []


def test_killed_worker_keeps_finished_results_and_rerun_completes(jobs, tmp_path: Path) -> None:
    (tmp_path / "kill-once").write_text("")
    first = jobs.run_job(3, "killed.py", str(tmp_path))
    assert first.returncode != 0, "the killed worker should have ended the job"
    assert not (tmp_path / "kill-once").exists()
    assert jobs.leftovers(str(tmp_path)) == []
    records = list((tmp_path / "journal").glob("*.rec"))
    assert records, "no result was recorded before the kill"
    recorded = len(ResultJournal(tmp_path / "journal", "__main__.work").load())
    assert 0 < recorded < 24, "the kill should come after some results and before the end"
    first_calls = len((tmp_path / "calls").read_text().split())
    second = jobs.run_job(3, "killed.py", str(tmp_path))
    assert second.returncode == 0, second.stderr
    assert jobs.result(second) == [{"x": x, "square": x * x} for x in range(24)]
    rerun = (tmp_path / "calls").read_text().split()[first_calls:]
    assert sorted(map(int, rerun)) == sorted(set(map(int, rerun)))  # each item at most once
    assert len(rerun) == 24 - recorded  # recorded items were not computed again
    assert jobs.leftovers(str(tmp_path)) == []


def test_failing_items_are_listed_with_argument_and_traceback(jobs, tmp_path: Path) -> None:
    proc = jobs.run_job(4, "failing.py", "resumable", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert "FAILED [7, 8] [3, 3]" in proc.stdout  # retried twice, on other workers
    assert "item 7: picky(7) raised ValueError: cannot take 7" in proc.stdout
    assert 'in picky\n    raise ValueError(f"cannot take {x}")' in proc.stdout
    assert jobs.leftovers(str(tmp_path)) == []


def test_uncaught_item_exception_aborts_the_job_with_its_traceback(jobs, tmp_path: Path) -> None:
    proc = jobs.run_job(3, "failing.py", "plain", str(tmp_path), timeout=60)
    assert proc.returncode not in (0, 124)  # failed, and did not hang until the timeout
    assert "ValueError: cannot take 7" in proc.stderr and "in picky" in proc.stderr
    assert "pimpi.futures: raised by picky(7) on rank " in proc.stderr  # the item's argument
    assert jobs.leftovers(str(tmp_path)) == []


def test_program_that_never_shuts_down_still_ends(jobs, tmp_path: Path) -> None:
    proc = jobs.run_job(3, "no_shutdown.py", str(tmp_path), timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "SUBMITTED" in proc.stdout
    assert jobs.leftovers(str(tmp_path)) == []


def test_started_on_every_rank_says_how_to_start_it(jobs, tmp_path: Path) -> None:
    proc = jobs.run_job(2, "equal.py", str(tmp_path / "journal"), module=False, timeout=60)
    assert proc.returncode not in (0, 124)
    assert "runs on each of the 2 ranks; start it with `pimpi run -n N" in proc.stderr
    assert "-m pimpi.futures equal.py" in proc.stderr
    assert jobs.leftovers(str(tmp_path)) == []


def _default_signals() -> None:
    """In the child: SIGINT as a terminal gives it (a background job of a shell ignores it,
    and Python then raises no KeyboardInterrupt)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.parametrize("signum, code", [(signal.SIGTERM, 143), (signal.SIGHUP, 129), (signal.SIGINT, 130)])
def test_signal_to_pimpi_run_ends_every_rank(jobs, tmp_path: Path, signum: int, code: int) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "pimpi", "run", "-n", "3", "--timeout", "120", "--",
                             "-m", "pimpi.futures", str(jobs.PROGS / "forever.py"), str(tmp_path)],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, start_new_session=True,
                            preexec_fn=_default_signals)
    try:
        assert proc.stdout.readline().strip() == "STARTED"
        proc.send_signal(signum)
        assert proc.wait(timeout=60) == code
    finally:
        if proc.poll() is None:  # SIGTERM first: the launcher then ends mpirun's own session too
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    assert jobs.leftovers(str(tmp_path)) == []


def test_timeout_ends_a_job_whose_tasks_never_end(jobs, tmp_path: Path) -> None:
    proc = jobs.run_job(3, "forever.py", str(tmp_path), timeout=8)
    assert proc.returncode == 124
    assert "STARTED" in proc.stdout
    assert jobs.leftovers(str(tmp_path)) == []


def test_a_script_that_never_used_the_cluster_executor_gets_one_warning_line(jobs, tmp_path: Path) -> None:
    plain = jobs.run_job(3, "one_machine.py")
    assert plain.returncode == 0, plain.stderr
    assert jobs.result(plain) == sum(x * x for x in range(10))
    warned = [line for line in plain.stderr.splitlines() if "never used the cluster executor" in line]
    assert len(warned) == 1 and "one_machine.py" in warned[0] and "other 2 ranks" in warned[0], plain.stderr
    used = jobs.run_job(3, "equal.py", str(tmp_path / "journal"))
    assert used.returncode == 0, used.stderr
    assert "never used the cluster executor" not in used.stderr
