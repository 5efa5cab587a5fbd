"""Graded exercises: starters, usage errors, and the checker on references and buggy solutions.

The checker starts its own mpirun per rank count, so these are serial tests; every
mpirun has a deadline inside the checker and every subprocess here has a timeout.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from pimpi.cli import cli
from pimpi.collectives.exercises import EXERCISES, reference_path
from pimpi.collectives.exercises.check import check_file, check_files

BUGGY = Path(__file__).with_name("buggy")
REQUIRED = ("ring_pass", "bcast_linear", "bcast_binomial", "scatterv_gatherv", "dot_product", "pi",
            "reduce_tree", "allreduce_recursive_doubling", "allreduce_ring", "allgather_ring",
            "alltoall_pairwise", "scan")


def test_list_shows_every_exercise():
    result = CliRunner().invoke(cli, ["exercises", "list"])
    assert result.exit_code == 0
    for name in REQUIRED:
        assert name in result.output
        assert reference_path(name).is_file()


def test_start_writes_a_starter_and_never_overwrites(tmp_path):
    runner = CliRunner()
    result = runner.invoke(cli, ["exercises", "start", "scatterv_gatherv", str(tmp_path)])
    assert result.exit_code == 0, result.output
    path = tmp_path / "scatterv_gatherv.py"
    tree = ast.parse(path.read_text())
    funcs = {n.name: ast.get_docstring(n) for n in tree.body if isinstance(n, ast.FunctionDef)}
    assert set(funcs) == {"scatterv", "gatherv"}
    assert "Hints:" in funcs["scatterv"] and "Message pattern:" in funcs["gatherv"]
    path.write_text("my work\n")
    again = runner.invoke(cli, ["exercises", "start", "scatterv_gatherv", str(tmp_path)])
    assert again.exit_code == 2 and "not overwriting" in again.output
    assert path.read_text() == "my work\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scatterv_gatherv.py"]


@pytest.mark.parametrize("args, needle", [
    (["start", "nosuch"], "unknown exercise 'nosuch'"),
    (["check", "nosuch", "x.py"], "unknown exercise 'nosuch'"),
    (["check", "bcast_linear", "missing.py"], "no such file: missing.py"),
    (["check", "bcast_linear", "{ok}", "-n", "0"], "0 in '0' is out of range 1..64"),
    (["check", "bcast_linear", "{ok}", "-n", "2,x"], "'x' is not a whole number"),
    (["check", "bcast_linear", "{ok}", "--timeout", "0"], "'--timeout': 0 is out of range: more than 0"),
    (["check", "bcast_linear", "{syntax}"], "cannot parse line 1"),
    (["check", "bcast_binomial", "{ok}"], "defines no function bcast_binomial()"),
])
def test_bad_input_exits_2_with_one_line_and_runs_nothing(tmp_path, args, needle):
    (tmp_path / "ok.py").write_text("def bcast_linear(comm, buf, root=0):\n    pass\n")
    (tmp_path / "syntax.py").write_text("def bcast_linear(:\n")
    args = [a.format(ok=tmp_path / "ok.py", syntax=tmp_path / "syntax.py") for a in args]
    result = CliRunner().invoke(cli, ["exercises", *args])
    assert result.exit_code == 2, result.output
    assert needle in result.output
    assert "Traceback" not in result.output


@pytest.mark.timeout(900)
def test_every_reference_solution_passes_at_three_ranks():
    records = check_files([(name, str(reference_path(name))) for name in EXERCISES], [3], timeout=30)
    assert {r.exercise for r in records} == set(EXERCISES)
    assert all(r.status == "PASS" for r in records), [r for r in records if r.status != "PASS"][:2]
    for name, ex in EXERCISES.items():
        roots = {r.root for r in records if r.exercise == name}
        assert roots == ({0, 1, 2} if ex.rooted else {0}), name


@pytest.mark.timeout(900)
def test_some_references_pass_at_one_and_five_ranks():
    names = ["ring_pass", "scatterv_gatherv", "allreduce_recursive_doubling", "allreduce_ring"]
    records = check_files([(name, str(reference_path(name))) for name in names], [1, 5], timeout=30)
    assert {(r.exercise, r.ranks) for r in records} == {(n, p) for n in names for p in (1, 5)}
    assert all(r.status == "PASS" for r in records), [r for r in records if r.status != "PASS"][:2]
    for name in names:
        mine = [r for r in records if r.exercise == name]
        assert {r.dtype for r in mine} >= set(EXERCISES[name].dtypes)
        assert max(r.length for r in mine) == EXERCISES[name].large


@pytest.mark.timeout(300)
def test_a_class_is_graded_in_one_command_with_a_summary_and_one_record_per_case(tmp_path):
    out = tmp_path / "grades.json"
    files = [str(BUGGY / "wrong_root_bcast.py"), str(BUGGY / "pickled_bcast.py"),
             str(reference_path("bcast_linear"))]
    proc = subprocess.run(
        [sys.executable, "-m", "pimpi", "exercises", "check", "bcast_linear", *files, "-n", "3", "-q",
         "--json", str(out)],
        capture_output=True, text=True, timeout=280)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "FAIL     " + files[0] + ": bcast_linear with 3 ranks, root 1, 1 elements, int32: rank " in proc.stdout
    assert "uses pickled comm.send; use comm.Send on NumPy buffers" in proc.stdout
    assert "line 8 of pickled_bcast.py" in proc.stdout  # the learner's line, not Comm.pyx
    data = json.loads(out.read_text())
    records = data["records"]
    assert set(records[0]) >= {"exercise", "file", "ranks", "root", "length", "dtype", "status", "message"}
    by_file = {path: [r for r in records if r["file"] == path] for path in files}
    wrong, pickled, good = by_file.values()
    assert {r["status"] for r in wrong if r["root"] == 0} == {"PASS"}
    assert {r["status"] for r in wrong if r["root"] != 0 and r["length"] > 0} == {"FAIL"}
    assert {r["status"] for r in pickled} == {"FAIL"}
    assert {r["status"] for r in good} == {"PASS"} and len(good) == len(wrong)
    students = {s["file"]: s for s in data["students"]}
    assert students[files[2]]["score"] == 100.0 and students[files[1]]["passed"] == 0
    assert proc.stdout.strip().splitlines()[-1] == f"{files[2]}: bcast_linear: {len(good)} of {len(good)} cases passed"
    # one cause, one line: the pickled call is one FAIL line with a count, not one per case
    assert proc.stdout.count("uses pickled comm.send") == 1 and "more cases like it" in proc.stdout


@pytest.mark.timeout(200)
def test_off_by_one_scatterv_fails_while_its_gatherv_passes():
    records = check_file("scatterv_gatherv", str(BUGGY / "offbyone_scatterv.py"), [3], timeout=30)
    scatter = [r for r in records if r.function == "scatterv"]
    gather = [r for r in records if r.function == "gatherv"]
    assert all(r.status == "PASS" for r in gather)
    failed = [r for r in scatter if r.status == "FAIL"]
    assert failed and all("got" in r.message and "expected" in r.message for r in failed)
    assert any(r.message.startswith("rank 2 got") for r in failed)


@pytest.mark.timeout(400)
def test_deadlock_is_named_and_the_next_file_still_gets_graded():
    deadlock, good = str(BUGGY / "deadlock_ring.py"), str(reference_path("ring_pass"))
    records = check_files([("ring_pass", deadlock), ("ring_pass", good)], [1, 3], timeout=4)
    mine = [r for r in records if r.file == deadlock]
    assert all(r.status == "PASS" for r in mine if r.ranks == 1)  # one rank: nothing to wait for
    three = [r for r in mine if r.ranks == 3]
    assert three[0].status == "DEADLOCK"
    assert "no result after 4 s" in three[0].message
    assert "rank 0 waits in Recv(source=2, tag=any) at line 10" in three[0].message
    # one timeout per rank count: the rest of that size is skipped, and says why
    assert all(r.status == "NOT RUN" and "hung in an earlier case with 3 ranks" in r.message for r in three[1:])
    assert {r.status for r in records if r.file == good} == {"PASS"}
    assert {r.ranks for r in records if r.file == good} == {1, 3}


@pytest.mark.timeout(400)
def test_exception_on_one_rank_is_an_error_not_a_hang():
    records = check_file("reduce_tree", str(BUGGY / "raises_on_one_rank.py"), [3], timeout=60)
    first = records[0]
    assert first.status == "ERROR"
    assert "rank 1 raised IndexError: chunk index out of range (line 10 of raises_on_one_rank.py)" in first.message
    assert records[1].status == "ERROR"  # cases go on after an error (no NOT RUN cascade)


def test_case_texts_counts_and_comparison_messages():
    import numpy as np

    from pimpi.collectives.cases import Case, Prepared, abbreviate, compare, uneven_counts

    assert Case("bcast", 5, 2, 7, "int32").describe() == "with 5 ranks, root 2, 7 elements, int32"
    assert Case("allreduce", 1, 0, 0, "float64").describe() == "with 1 rank, 0 elements, float64"
    counts = uneven_counts(7, 5)
    assert 0 in counts and len(set(counts)) > 2 and uneven_counts(3, 1) == [3]
    assert abbreviate(np.arange(100)) == "[ 0  1  2 ... 97 98 99] (100 items)"
    expected = np.arange(5)
    prepared = Prepared((), {}, lambda returned: returned, expected)
    assert compare(prepared, expected.copy()) is None
    got = expected.copy()
    got[3] = 7
    assert compare(prepared, got) == "got [0 1 2 7 4] expected [0 1 2 3 4] (first difference at index 3)"
    assert compare(prepared, None) == "returned None, expected [0 1 2 3 4]"
    assert compare(Prepared((), {}, lambda r: r, None), got) is None  # nothing to check on this rank


@pytest.mark.timeout(150)
def test_exercises_trace_shows_a_learners_own_messages_and_the_mismatch(tmp_path):
    out = tmp_path / "mine.json"
    proc = subprocess.run(
        [sys.executable, "-m", "pimpi", "run", "-n", "3", "--timeout", "120", "--", "exercises", "trace",
         "bcast_linear", str(BUGGY / "wrong_root_bcast.py"), "--root", "1", "--size", "4", "--json", str(out)],
        capture_output=True, text=True, timeout=140)
    assert proc.returncode != 0
    assert "r0 -> r1  32 B" in proc.stdout and "r0 -> r2  32 B" in proc.stdout  # root 0, not 1, sends
    assert "result: MISMATCH: rank 0 got [0. 0. 0. 0.] expected" in proc.stdout
    data = json.loads(out.read_text())
    assert data["result"] == "MISMATCH" and data["prediction"] == {"messages": 2, "bytes": 64}
    assert sorted((m["src"], m["dst"]) for m in data["messages"]) == [(0, 1), (0, 2)]


@pytest.mark.timeout(150)
def test_exercises_trace_of_a_hanging_solution_shows_each_ranks_calls_up_to_the_hang():
    proc = subprocess.run(
        [sys.executable, "-m", "pimpi", "run", "-n", "3", "--timeout", "120", "--", "exercises", "trace",
         "ring_pass", str(BUGGY / "deadlock_ring.py"), "--timeout", "5"],
        capture_output=True, text=True, timeout=140)
    assert proc.returncode != 0
    for rank, source in ((0, 2), (1, 0), (2, 1)):
        assert f"HANG: rank {rank} after 5 s: calls so far: Recv(source={source}, tag=any) <- hangs here" in proc.stdout


@pytest.mark.root
@pytest.mark.timeout(300)
def test_a_full_disk_is_one_line_naming_the_path_and_no_verdict_is_lost(tmp_path):
    import os

    disk = tmp_path / "disk"
    disk.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(disk)], check=True, timeout=30)
    try:
        with open(disk / "filler", "wb", buffering=0) as filler:  # fill it up
            try:
                while True:
                    filler.write(b"\0" * 4096)
            except OSError:
                pass
        out, csv = disk / "grades.json", tmp_path / "grades.csv"
        proc = subprocess.run(
            [sys.executable, "-m", "pimpi", "exercises", "check", "bcast_linear", str(reference_path("bcast_linear")),
             "-n", "2", "-q", "--json", str(out), "--csv", str(csv)],
            capture_output=True, text=True, timeout=280, stdin=subprocess.DEVNULL)
        leftovers = sorted(p.name for p in disk.iterdir())
    finally:
        subprocess.run(["umount", str(disk)], check=False, timeout=30)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(errors) == 1 and errors[0].startswith(f"Error: cannot write {out}: No space left on device"), proc.stderr
    total = proc.stdout.strip().splitlines()[-1]
    assert total.startswith("bcast_linear: ") and total.endswith("cases passed")  # the verdicts were all given
    passed, _, of = total.split(": ")[1].split()[:3]
    assert f",bcast_linear,{passed},{of}," in csv.read_text()  # the other file is written all the same
    assert leftovers == ["filler"] and not os.path.exists(out)  # no half-written JSON
