"""The course exercises: order and levels, starters, rules, references at 1-5 ranks, typical wrong solutions.

The checker starts its own mpirun per rank count, so these are serial tests; every
mpirun has a deadline inside the checker and every subprocess here has a timeout.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from pimpi.cli import cli
from pimpi.collectives.cases import Case
from pimpi.collectives.exercises import EXERCISES, reference_path
from pimpi.collectives.exercises.check import check_files
from pimpi.collectives.exercises.course import parse_rules
from pimpi.collectives.exercises.starter import starter_text

BUGGY = Path(__file__).with_name("buggy_course")
COURSE = [name for name, ex in EXERCISES.items() if ex.rules is not None]
# A typical wrong solution per course exercise, and what its first failure must say.
WRONG = [
    ("probe_gather", "size_first_probe_gather.py", "never called comm.Probe"),
    ("mandelbrot", "last_row_mandelbrot.py", "got ["),
    ("mandelbrot", "static_mandelbrot.py", "root never received from MPI.ANY_SOURCE: a manager takes each result"),
    ("split_sums", "world_allreduce_split_sums.py",
     "uses built-in comm.Allreduce on the communicator it was given; this exercise allows it only on "
     "communicators you make"),
    ("heat_sendrecv", "periodic_heat.py", "got ["),
    ("heat_overlap", "blocking_heat_overlap.py", "uses comm.Sendrecv; this exercise asks for Isend/Irecv"),
    ("column_type", "copied_column_type.py", "comm.Send sent 4 bytes to rank 1 as a plain buffer; "
                                             "this exercise asks for a derived datatype"),  # 1 int32
    ("struct_gather", "bytes_struct_gather.py", "as a plain buffer; this exercise asks for a derived datatype"),
    ("iallreduce_overlap", "work_after_wait_iallreduce.py",
     "called work() while no non-blocking collective was in flight"),
    ("rma_fence", "wrong_neighbour_rma.py", "got ["),
    ("rma_fence", "messages_rma.py", "uses comm.Isendrecv; move the data with Win.Put / Win.Get, not messages"),
    ("cart_halo", "swapped_shift_cart_halo.py", "ghost row (from the neighbour"),
    ("cart_halo", "handmade_grid_cart_halo.py", "never called comm.Create_cart"),
    ("heat_sendrecv", "token_sendrecv_heat.py", "uses comm.Isend; every ghost cell travels in comm.Sendrecv"),
    ("column_type", "contiguous_copy_column_type.py", "sent its column to rank 1 as a contiguous datatype"),
    ("column_type", "transposed_vector_column_type.py",
     "a column of this 7 x 3 matrix is Create_vector(7, 1, 3) on the matrix itself"),
    ("iallreduce_overlap", "dummy_iallreduce_overlap.py",
     "called work() while no non-blocking collective was in flight"),
]


def test_at_least_eight_course_exercises_each_with_reference_and_wrong_solution():
    assert len(COURSE) >= 8
    for name in COURSE:
        assert reference_path(name).is_file(), name
        assert any(w[0] == name for w in WRONG), f"{name} has no typical wrong solution"
    for _name, file, _needle in WRONG:
        assert (BUGGY / file).is_file(), file


def test_course_page_lists_every_exercise_in_order_and_its_pictures_exist():
    page = Path(__file__).parents[2] / "docs" / "course.md"
    text = page.read_text(encoding="utf-8")
    rows = [line.split("|") for line in text.splitlines() if line.startswith("| ") and "`" in line]
    listed = [row[3].strip().strip("`") for row in rows]
    assert listed == list(EXERCISES)  # the table is the course order
    assert [int(row[2]) for row in rows] == [ex.level for ex in EXERCISES.values()]
    for image in ("heat.svg", "mandelbrot.svg", "cart_halo.svg"):
        path = page.parent / "course" / image
        assert f"(course/{image})" in text and path.stat().st_size < 20_000
        assert "/work/" not in path.read_text(encoding="utf-8")  # no machine's path in a picture


def test_list_shows_every_exercise_in_course_order_with_a_level():
    result = CliRunner().invoke(cli, ["exercises", "list"])
    assert result.exit_code == 0, result.output
    rows = [line.split() for line in result.output.splitlines()[1:] if line[:2].strip().isdigit()]
    assert [int(r[0]) for r in rows] == list(range(1, len(EXERCISES) + 1))
    assert [r[2] for r in rows] == list(EXERCISES)
    assert all(r[1] in ("1", "2", "3") for r in rows)
    orders = [ex.order for ex in EXERCISES.values()]
    assert orders == sorted(orders) and len(set(orders)) == len(orders)
    names = [r[2] for r in rows]
    assert names[0] == "ring_pass" and names.index("heat_sendrecv") < names.index("heat_overlap")
    assert names.index("heat_overlap") < names.index("cart_halo")
    levels = [int(r[1]) for r in rows]
    assert levels == sorted(levels) or levels[0] == 1  # the course starts at level 1
    assert EXERCISES["ring_pass"].level == 1 and EXERCISES["cart_halo"].level == 3


@pytest.mark.parametrize("name", COURSE)
def test_starter_parses_names_its_calls_and_its_reference_trace(name):
    text = starter_text(name)
    tree = ast.parse(text)
    funcs = {n.name: ast.get_docstring(n) for n in tree.body if isinstance(n, ast.FunctionDef)}
    assert set(funcs) == {f.name for f in EXERCISES[name].functions}
    for doc in funcs.values():
        assert "Message pattern:" in doc and "Hints:" in doc
    assert EXERCISES[name].intro.split()[0] in text
    assert f"exercises trace {name} --reference" in text
    assert "from mpi4py import MPI" in text
    compile(text, f"{name}.py", "exec")


def test_mandelbrot_starter_uses_the_graders_row_function():
    from pimpi.collectives.exercises import kinds

    namespace: dict = {}
    exec(compile(starter_text("mandelbrot"), "mandelbrot.py", "exec"), namespace)  # noqa: S102
    assert namespace["mandelbrot_row"] is kinds.mandelbrot_row
    row = kinds.mandelbrot_row(3, 8)
    assert row.shape == (16,) and row.dtype == np.int32 and row.max() == kinds.MAX_ITER and row.min() >= 1


@pytest.mark.parametrize("rules, needle", [
    ({"alowed": ["Bcast"]}, "unknown rule 'alowed'"),
    ({"required": [{"calls": ["Split"], "when": "sometimes"}]}, "required when 'sometimes'"),
    ({"allowed_on": "old"}, "allowed_on 'old'"),
    ({"derived": "receives"}, "derived 'receives'"),
    ({"any_source": "workers"}, "any_source 'workers'"),
])
def test_bad_rules_in_exercises_json_are_named(rules, needle):
    with pytest.raises(ValueError, match="exercise x: ") as info:
        parse_rules(rules, "exercise x")
    assert needle in str(info.value)


def test_heat_pieces_tile_the_rod_and_match_the_serial_run():
    from pimpi.collectives.exercises import kinds

    for p in (1, 2, 3, 4, 5):
        for cells in (p, 12, 40):
            counts = kinds.heat_counts(cells, p)
            assert sum(counts) == cells and min(counts) >= 1 and len(counts) == p
        case = Case("heat", p, 0, 12, "float64")
        parts = [kinds._heat(None, case, r, p, np.dtype("float64")) for r in range(p)]
        assert np.concatenate([part.args[0] for part in parts]).tolist() == kinds.heat_initial(12).tolist()
        whole = np.concatenate([part.expected for part in parts])
        u = kinds.heat_initial(12)
        for _ in range(kinds.HEAT_STEPS):  # the stencil written out cell by cell
            u = np.array([u[i] + kinds.HEAT_ALPHA * ((u[i - 1] if i else 0.0) - 2 * u[i]
                                                     + (u[i + 1] if i < 11 else 0.0)) for i in range(12)])
        assert np.allclose(whole, u, rtol=1e-12)


@pytest.mark.timeout(900)
def test_every_course_reference_passes_at_one_two_four_and_five_ranks():
    """Three ranks are checked for every exercise by test_exercises.py."""
    sizes = [1, 2, 4, 5]
    records = check_files([(name, str(reference_path(name))) for name in COURSE], sizes, timeout=60)
    bad = [r for r in records if r.status != "PASS"]
    assert not bad, bad[:2]
    assert {(r.exercise, r.ranks) for r in records} == {(n, p) for n in COURSE for p in sizes}
    for name in COURSE:
        mine = [r for r in records if r.exercise == name]
        assert {r.function for r in mine} == {f.name for f in EXERCISES[name].functions}
        if EXERCISES[name].rooted:
            assert {r.root for r in mine if r.ranks == 5} == {0, 2, 4}, name
        assert max(r.length for r in mine) == EXERCISES[name].large


@pytest.mark.timeout(600)
def test_typical_wrong_solutions_fail_and_say_why():
    records = check_files([(name, str(BUGGY / file)) for name, file, _n in WRONG], [3], timeout=60)
    for name, file, needle in WRONG:
        mine = [r for r in records if r.file.endswith(file)]
        assert mine and {r.exercise for r in mine} == {name}
        failed = [r for r in mine if r.status != "PASS"]
        assert failed, f"{file} passed every case"
        assert {r.status for r in failed} == {"FAIL"}, (file, failed[0])  # a verdict, not a crash or hang
        assert any(needle in r.message for r in failed), (file, failed[0].message)
        assert failed[0].message.startswith("rank ")


@pytest.mark.timeout(200)
def test_exercises_trace_reference_shows_the_halo_messages(tmp_path):
    out = tmp_path / "heat.json"
    proc = subprocess.run(
        [sys.executable, "-m", "pimpi", "run", "-n", "3", "--timeout", "150", "--", "exercises", "trace",
         "heat_sendrecv", "--reference", "--size", "9", "--json", str(out)],
        capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    data = json.loads(out.read_text())
    from pimpi.collectives.exercises.kinds import HEAT_STEPS

    assert data["result"] == "OK"
    pairs = [(m["src"], m["dst"]) for m in data["messages"]]
    assert len(pairs) == 2 * (3 - 1) * HEAT_STEPS  # one cell each way across each of the 2 borders
    assert set(pairs) == {(0, 1), (1, 0), (1, 2), (2, 1)}  # no message to MPI.PROC_NULL, none 0 <-> 2
    assert "r1 -> r0  8 B" in proc.stdout


@pytest.mark.timeout(120)
def test_trace_needs_a_file_or_reference(pimpi_cli):
    proc = pimpi_cli("exercises", "trace", "heat_sendrecv", timeout=100)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "give either FILE or --reference" in proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr


@pytest.mark.timeout(900)
@pytest.mark.parametrize("name, file, right_at, wrong_at, needle", [
    ("split_sums", "buggy_course/first_row_split_sums.py", 2, 3, "row_sum (over your row) got"),
    ("cart_halo", "buggy_course/swapped_columns_cart_halo.py", 6, 9, "ghost column (from the neighbour on the"),
    ("allreduce_recursive_doubling", "buggy/one_extra_recursive_doubling.py", 5, 6, "got ["),
])
def test_bugs_only_a_bigger_grid_shows_fail_at_the_exercises_default_sizes(name, file, right_at, wrong_at, needle):
    assert wrong_at in EXERCISES[name].sizes  # `check` without -n runs the size that shows the bug
    records = check_files([(name, str(BUGGY.parent / file))], [right_at, wrong_at], timeout=60)
    assert {r.status for r in records if r.ranks == right_at} == {"PASS"}  # a small grid hides it
    failed = [r for r in records if r.ranks == wrong_at and r.status != "PASS"]
    assert failed and {r.status for r in failed} == {"FAIL"}, failed[:1]
    assert any(needle in r.message for r in failed), failed[0].message


@pytest.mark.timeout(300)
def test_a_matched_probe_and_msg_recv_is_a_right_probe_gather():
    path = Path(__file__).with_name("right") / "mprobe_probe_gather.py"
    records = check_files([("probe_gather", str(path))], [3], timeout=60)
    assert records and {r.status for r in records} == {"PASS"}, [r.message for r in records if r.status != "PASS"][:1]
