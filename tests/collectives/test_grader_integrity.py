"""The grader cannot be fooled: one cheating or buggy submission per integrity rule fails with the
right message, and a class with a broken file still gets every other learner graded.

The checker starts its own mpirun per file and rank count, so these are serial tests; every
mpirun has a deadline inside the checker.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pimpi.collectives.exercises import reference_path, sandbox
from pimpi.collectives.exercises.check import grade

CHEATS = Path(__file__).with_name("cheats")
BUGGY = Path(__file__).with_name("buggy")


def _grade(name: str, file: str, sizes=(3,), timeout: float = 20) -> list:
    return grade([(name, str(CHEATS / file))], list(sizes), timeout=timeout)


def _failed(records) -> list:
    return [r for r in records if r.status != "PASS"]


@pytest.mark.timeout(300)
@pytest.mark.parametrize("name, file, needle", [
    ("allreduce_ring", "world_allreduce.py", "used outside `comm`"),
    ("allreduce_ring", "unbound_allreduce.py", "a built-in collective or a new communicator was used on `comm`"),
    ("bcast_linear", "world_p2p.py", "went through `comm`"),
    ("bcast_linear", "world_p2p_same_pattern.py", "went through `comm`"),
])
def test_reaching_around_the_recording_communicator_fails_every_case(name, file, needle):
    records = _grade(name, file)
    assert records and all(r.status == "FAIL" for r in records), [r for r in records if r.status == "PASS"][:1]
    # an empty built-in moves nothing MPI could count: those cases fail on their (empty) pattern
    counted = [r for r in records if r.length > 0 or "unbound" not in file]
    assert all(needle in r.message and file in r.message for r in counted), counted[0].message


@pytest.mark.timeout(300)
def test_patching_the_comparison_inside_the_submission_changes_nothing():
    records = _grade("bcast_linear", "patch_numpy.py")
    bad = [r for r in records if r.length > 0]
    assert bad and all(r.status == "FAIL" and "got" in r.message and "expected" in r.message
                       for r in bad if r.root != 0 or r.ranks > 1)


@pytest.mark.timeout(300)
def test_a_submission_deleting_its_folder_touches_no_one_elses_files(tmp_path):
    teacher = tmp_path / "class"
    teacher.mkdir()
    vandal = teacher / "vandal.py"
    shutil.copy(CHEATS / "delete_cwd.py", vandal)
    good = teacher / "good.py"
    shutil.copy(reference_path("bcast_linear"), good)
    (teacher / "grades.json").write_text("{}\n")
    records = grade([("bcast_linear", str(vandal)), ("bcast_linear", str(good))], [2], timeout=20)
    assert sorted(p.name for p in teacher.iterdir()) == ["good.py", "grades.json", "vandal.py"]
    assert {r.status for r in records} == {"PASS"}  # the vandal's algorithm itself is right


@pytest.mark.timeout(300)
def test_overwriting_the_send_buffer_fails():
    failed = _failed(_grade("allreduce_recursive_doubling", "overwrite_sendbuf.py"))
    assert failed and any("changed its input (argument 2 of allreduce_recursive_doubling)" in r.message
                          and "overwrite_sendbuf.py" in r.message for r in failed)


@pytest.mark.timeout(300)
def test_every_op_is_tested_and_ignoring_op_fails_only_there():
    records = _grade("reduce_tree", "ignores_op.py")
    assert {r.status for r in records if r.op == "SUM"} == {"PASS"}
    others = [r for r in records if r.op != "SUM"]
    assert {r.op for r in others} >= {"PROD", "MAX", "FIRST"}
    assert any(r.status == "FAIL" and "op PROD" in r.case.describe() for r in others)


@pytest.mark.timeout(300)
@pytest.mark.parametrize("file, needle", [
    ("gather_as_ring.py", "rank 0 sent 2 messages where it sends 4"),
    ("ring_extra_step.py", "5 rounds where it takes 4 (extra steps)"),
])
def test_another_algorithm_or_extra_rounds_fail_and_say_which(file, needle):
    records = _grade("allreduce_ring", file)
    sums = [r for r in records if r.op == "SUM" and r.length > 0]
    assert sums and all(r.status == "FAIL" for r in sums)
    assert any(needle in r.message for r in sums), sums[0].message


@pytest.mark.timeout(300)
def test_messages_never_received_are_reported():
    records = _grade("scatterv_gatherv", "zero_length_unreceived.py")
    failed = [r for r in records if r.function == "scatterv" and r.status == "FAIL"]
    assert failed and all("(0 bytes, tag 0) that was never received" in r.message for r in failed)
    assert {r.status for r in records if r.function == "gatherv"} == {"PASS"}


@pytest.mark.timeout(300)
def test_a_request_never_waited_fails_the_same_way_on_every_run():
    runs = [_grade("bcast_linear", "irecv_never_waited.py", sizes=(2,)) for _ in range(2)]
    first = [(r.status, r.message) for r in runs[0]]
    assert first == [(r.status, r.message) for r in runs[1]]
    assert any("returned before completing Irecv(source=" in message for _status, message in first)


@pytest.mark.timeout(400)
def test_a_class_with_a_broken_file_still_grades_everyone_else(tmp_path):
    files = [str(CHEATS / "syntax_error.py"), str(reference_path("bcast_linear")), str(CHEATS / "world_p2p.py")]
    out, table, report = tmp_path / "class.json", tmp_path / "class.csv", tmp_path / "report.md"
    names = tmp_path / "names.csv"
    names.write_text(f"file,student\n{files[1]},Ada Lovelace\n")
    proc = subprocess.run(
        [sys.executable, "-m", "pimpi", "exercises", "check", "bcast_linear", *files, "-n", "2", "-q",
         "--json", str(out), "--csv", str(table), "--report", str(report), "--names", str(names)],
        capture_output=True, text=True, timeout=380)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    data = json.loads(out.read_text())
    summary = {s["file"]: s for s in data["students"]}
    assert summary[files[0]]["passed"] == 0 and "cannot parse line 3" in summary[files[0]]["first_failure"]
    assert summary[files[1]]["passed"] == summary[files[1]]["total"] > 0 and summary[files[1]]["score"] == 100.0
    assert summary[files[2]]["passed"] == 0 and "went through `comm`" in summary[files[2]]["first_failure"]
    rows = list(csv.DictReader(table.open()))
    assert [r["file"] for r in rows] == files and rows[1]["score"] == "100.0"
    # a name per student (the --names map, else the file's name), a count per status, an integrity column
    assert [r["student"] for r in rows] == ["syntax_error", "Ada Lovelace", "world_p2p"]
    assert rows[0]["ERROR"] == rows[0]["total"] and rows[1]["PASS"] == rows[1]["total"]
    assert rows[2]["FAIL"] == rows[2]["total"] and "integrity" in rows[0]
    assert files[1] in report.read_text() and "| score |" in report.read_text()
    # one cause, one line: the syntax error is printed once with its count
    assert proc.stdout.count("cannot parse line 3") == 1
    assert "(and " in proc.stdout and " more cases like it" in proc.stdout


def _left_behind(marker: str) -> list[str]:
    """Command lines of processes that mention `marker` (the test's own temporary folder)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if marker in cmd:
            found.append(cmd)
    return found


@pytest.mark.timeout(200)
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_a_signal_ends_every_job_of_a_class_run(tmp_path, sig):
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    files = [str(BUGGY / "deadlock_ring.py"), str(BUGGY / "deadlock_ring.py")]
    proc = subprocess.Popen([sys.executable, "-m", "pimpi", "exercises", "check", "ring_pass", *files, "-n", "3",
                             "--timeout", "120"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while not any("exercises.worker" in c for c in _left_behind(str(tmp_path))):
            assert time.monotonic() < deadline and proc.poll() is None, "no worker started"
            time.sleep(0.5)
        proc.send_signal(sig)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    deadline = time.monotonic() + 20
    while _left_behind(str(tmp_path)) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert _left_behind(str(tmp_path)) == []
    assert proc.returncode != 0


def test_one_cause_is_one_line_with_a_count_and_the_smallest_case():
    from pimpi.collectives.exercises.check import Record
    from pimpi.collectives.exercises.report import collapsed_lines, summary

    def rec(ranks, length, status, message):
        return Record("bcast_linear", "a.py", "bcast_linear", ranks, 0, length, "int32", status, message)

    records = [rec(5, 100000, "FAIL", "rank 3 got [1 2 3] expected [4 5 6] (line 7 of a.py)"),
               rec(2, 7, "FAIL", "rank 1 got [9] expected [8] (line 7 of a.py)"),
               rec(2, 0, "PASS", ""),
               rec(3, 1, "ERROR", "rank 0 raised ValueError: x (line 9 of a.py)")]
    lines = collapsed_lines(records, with_file=False)
    assert lines == ["FAIL     bcast_linear with 2 ranks, root 0, 7 elements, int32: rank 1 got [9] expected [8] "
                     "(line 7 of a.py) (and 1 more cases like it)",
                     "ERROR    bcast_linear with 3 ranks, root 0, 1 elements, int32: rank 0 raised ValueError: x "
                     "(line 9 of a.py)"]
    (only,) = summary(records, ["a.py"])
    assert (only["passed"], only["total"], only["score"]) == (1, 4, 25.0)
    assert only["first_failure"] == lines[0].split(" (and")[0]


def test_open_mpis_counts_are_read_per_peer_and_per_communicator():
    from pimpi.collectives.exercises.monitor import MonitorReport, parse_report

    text = ("# POINT TO POINT\nE\t0\t1\t160 bytes\t2 msgs sent\t0,0\nI\t0\t1\t208 bytes\t14 msgs sent\n"
            "# COLLECTIVES\nD\tpimpi-case-0\tprocs: 0,1\nO2A\t0\t0 bytes\t0 msgs sent\n"
            "A2O\t0\t0 bytes\t0 msgs sent\nA2A\t0\t160 bytes\t1 msgs sent\n"
            "D\tpimpi-harness\tprocs: 0,1\nA2A\t0\t12 bytes\t3 msgs sent\n"
            "D\tMPI_COMM_WORLD\tprocs: 0,1\nA2A\t0\t12 bytes\t3 msgs sent\n")
    report = MonitorReport(2)
    parse_report(text, 0, report)
    assert report.sent == {(0, 1): 2}
    assert report.collective["pimpi-case-0"] == {0: (1, 160)}
    one_send = [[["S", 1, 0, 80, 0.0]], []]
    found = report.problems(one_send, 1, 0, 1)
    assert [where for where, _ in found] == [0, None]  # the built-in on case 0; one message unrecorded
    assert "rank 0 really sent 2 messages to rank 1 but only 1 went through `comm`" in found[1][1]
    assert report.problems([[["S", 1, 0, 80, 0.0]] * 2, []], 1, 0, 1)[1:] == []


def test_a_job_that_ends_before_the_learners_import_is_run_once_more_and_only_once(tmp_path, monkeypatch):
    """mpirun itself can fail to start (CI saw PMIx's listener thread fail); that says nothing about
    the file, so that segment runs again, once. A failure after the import is never run again."""
    from pimpi.collectives.exercises import check, get_exercise

    job = check._Job(get_exercise("bcast_linear"), str(reference_path("bcast_linear")), 2, 60)
    runs: list[int] = []

    def fake(root, start, end, failed_launch=True):
        runs.append(start)
        stop = (start, "ERROR", "the job ended: PMIx listener thread failed")
        return check._Segment({}, {}, {}, stop, None, tmp_path, launch_failed=failed_launch)

    monkeypatch.setattr(job, "_segment_once", fake)
    assert job._segment(tmp_path, 0, 3).launch_failed and runs == [0, 0]
    runs.clear()
    monkeypatch.setattr(job, "_segment_once", lambda root, start, end: fake(root, start, end, False))
    assert not job._segment(tmp_path, 0, 3).launch_failed and runs == [0]


def _needs(mode: str) -> None:
    """Skip (one line) where this machine cannot contain a job that way; never on CI."""
    order = ["none", "pidns", "bwrap"]
    if order.index(sandbox.mode()) < order.index(mode) and os.environ.get("CI") != "true":
        pytest.skip(f"needs {'bubblewrap' if mode == 'bwrap' else 'unshare --pid'} (sandbox here: {sandbox.mode()})")


@pytest.mark.timeout(300)
def test_a_detached_child_holding_the_ranks_output_neither_hangs_the_grade_nor_survives_it():
    _needs("pidns")
    records = _grade("bcast_linear", "detached_child.py", sizes=(2,), timeout=20)
    assert {r.status for r in records} == {"PASS"}  # its algorithm is right
    assert all("outlived its rank" in r.integrity for r in records)
    assert _left_behind("pimpi-detached-child") == []


@pytest.mark.timeout(300)
@pytest.mark.parametrize("file, needle", [
    ("os_exit.py", "rank 1 ended its process with os._exit(0) at line 10 of os_exit.py before its function "
                   "returned"),
    ("sys_exit.py", "ended its process with sys.exit(0) (or exit() or raise SystemExit) inside the function"),
    ("segfault.py", "rank 1 crashed: Segmentation fault at line 10 of segfault.py; hint: memory was read"),
])
def test_an_early_exit_names_the_rank_the_call_and_the_code(file, needle):
    records = _grade("bcast_linear", file, sizes=(2,))
    assert records[0].status == "ERROR" and needle in records[0].message, records[0].message


@pytest.mark.timeout(300)
def test_the_answers_are_not_in_the_job_folder():
    failed = _failed(_grade("scatterv_gatherv", "read_answers.py"))
    scattered = [r for r in failed if r.function == "scatterv" and r.length > 0]
    assert scattered and all(r.status == "FAIL" and " got " in r.message and "expected" in r.message
                             for r in scattered)


@pytest.mark.timeout(300)
def test_inputs_are_drawn_fresh_for_every_run():
    from pimpi.collectives.exercises.check import format_record

    # the shift is one of 1000: two runs alike happen once in 1000, three alike once in a million
    runs = [_failed(_grade("scatterv_gatherv", "read_answers.py", sizes=(2,))) for _ in range(3)]
    firsts = [format_record(next(r for r in run if r.length > 1)) for run in runs]
    assert len(set(firsts)) > 1  # the expected values differ: a run's inputs cannot be rebuilt


@pytest.mark.timeout(300)
def test_a_write_outside_the_rank_folder_is_refused_and_reported():
    _needs("bwrap")
    records = _grade("bcast_linear", "writes_outside.py")
    assert records and all(r.status in ("ERROR", "FAIL") for r in records)
    first = next(r for r in records if r.status == "ERROR")
    assert "Read-only file system" in first.message and "only in its own folder" in first.message
    assert "tried to write outside its folder" in first.integrity


@pytest.mark.timeout(300)
def test_the_reference_solutions_are_hidden_from_the_learners_code():
    _needs("bwrap")
    records = _grade("split_sums", "copy_reference.py")
    assert records and all(r.status == "ERROR" and "No such file or directory" in r.message for r in records)


@pytest.mark.timeout(300)
def test_patching_the_course_verdict_in_the_submission_turns_no_rule_off():
    records = _grade("heat_sendrecv", "patch_verdict_heat.py")
    # the rules it broke (Send/Recv instead of Sendrecv) are still judged: by the checker
    assert records and all(r.status == "FAIL" and "uses comm.Send; every ghost cell travels in comm.Sendrecv"
                           in r.message and "more rule break" in r.message for r in records)
