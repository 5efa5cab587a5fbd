"""pimpi.futures without MPI: the journal, outcomes, errors, launcher checks and local processes."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest

from pimpi import procs
from pimpi.futures import ClusterExecutor, MapError, ProcessPoolExecutor
from pimpi.futures.attempt import run_batch, worker_id
from pimpi.futures.failures import Failure
from pimpi.journal import ResultJournal, function_name, item_key


def double(x):
    return 2 * x


def odd_fails(x):
    if x % 2:
        raise KeyError(f"odd {x}")
    return x


def pid_fails(x, bad_pid_file):
    """Fails on the first worker that runs an item (its pid is written to the file)."""
    path = Path(bad_pid_file)
    if not path.exists() or not path.read_text():
        path.write_text(str(os.getpid()))
    if path.read_text() == str(os.getpid()):
        raise OSError(f"broken worker {os.getpid()}")
    return x * 10


@pytest.fixture
def local(monkeypatch):
    monkeypatch.setenv("PIMPI_FUTURES", "local")
    for key in ("OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK", "PMI_SIZE", "MPI_LOCALNRANKS"):
        monkeypatch.delenv(key, raising=False)


def test_journal_records_load_and_skip_damage(tmp_path: Path) -> None:
    journal = ResultJournal.open(tmp_path / "j", double)
    keys = [item_key((i,)) for i in range(3)]
    journal.record({keys[0]: 0, keys[1]: 2})
    journal.record({keys[2]: {"four": 4}})
    assert ResultJournal.open(tmp_path / "j", double).load() == {keys[0]: 0, keys[1]: 2, keys[2]: {"four": 4}}
    damaged = sorted((tmp_path / "j").glob("*.rec"))[0]
    damaged.write_bytes(damaged.read_bytes()[:-3] + b"xyz")
    assert len(journal.load()) in (1, 2)  # the damaged record is skipped, the other kept
    assert not list((tmp_path / "j").glob(".*tmp*"))  # no temporary left behind
    (tmp_path / "j" / ".x.rec.abc.tmp.rec").write_bytes(b"torn")  # a kill during a write
    assert len(ResultJournal.open(tmp_path / "j", double).load()) in (1, 2)
    assert not list((tmp_path / "j").glob(".*tmp*"))


def test_journal_of_another_function_or_a_file_is_refused(tmp_path: Path) -> None:
    ResultJournal.open(tmp_path / "j", double)
    with pytest.raises(ValueError, match="holds results of .*double.*not .*odd_fails"):
        ResultJournal.open(tmp_path / "j", odd_fails)
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="is not a folder"):
        ResultJournal.open(tmp_path / "file", double)


def test_item_key_is_stable_and_none_when_unpicklable() -> None:
    assert item_key((1, "a")) == item_key((1, "a")) != item_key((1, "b"))
    assert item_key((lambda: 0,)) is None
    assert function_name(double).endswith(".double") and function_name(run_batch) == "pimpi.futures.attempt.run_batch"


def test_run_batch_reports_each_item_and_declines_when_avoided() -> None:
    me, outcomes = run_batch(odd_fails, [(0, (2,)), (1, (3,))], frozenset())
    assert me == worker_id()
    assert outcomes[0] == (0, True, 2)
    index, ok, exc, text = outcomes[1]
    assert (index, ok, type(exc)) == (1, False, KeyError) and "odd_fails" in text
    assert run_batch(odd_fails, [(0, (2,))], frozenset({me})) == (me, None)


def test_map_error_lists_items_arguments_and_tracebacks() -> None:
    failures = [Failure(3, (3, "x" * 300), ValueError("no"), "Traceback...\nValueError: no\n", ["rank 1 on a"])]
    error = MapError("f", 10, failures)
    text = str(error)
    assert text.startswith("1 of 10 items failed for good:")
    assert "item 3: f(3, 'xxx" in text and "...)" in text and "raised ValueError: no (on rank 1 on a)" in text
    assert "Traceback...\nValueError: no" in text
    assert str(pickle.loads(pickle.dumps(error))) == text


def test_outside_mpirun_says_how_to_start_it(monkeypatch) -> None:
    for key in ("OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK", "PMI_SIZE", "MPI_LOCALNRANKS", "PIMPI_FUTURES"):
        monkeypatch.delenv(key, raising=False)
    with pytest.raises(RuntimeError, match=r"not started by mpirun.*-m pimpi.futures.*PIMPI_FUTURES=local"):
        ClusterExecutor()


def test_bad_arguments_name_the_value(local) -> None:
    with pytest.raises(ValueError, match="max_workers must be at least 1, got 0"):
        ClusterExecutor(0)
    with pytest.raises(TypeError, match="max_workers must be an int or None, got '2'"):
        ClusterExecutor("2")
    with pytest.raises(ValueError, match="fallback must be None or 'local', got 'cloud'"):
        ClusterExecutor(fallback="cloud")
    with ProcessPoolExecutor(2) as ex:
        with pytest.raises(ValueError, match="chunksize must be at least 1, got 0"):
            ex.map(double, [1], chunksize=0, retries=0)
        with pytest.raises(ValueError, match="retries must be at least 0, got -1"):
            ex.map(double, [1], retries=-1)
        with pytest.raises(TypeError, match="journal must be a folder path, got 7"):
            ex.map(double, [1], journal=7)


def test_local_fallback_matches_builtin_and_resumes(local, tmp_path: Path) -> None:
    with ProcessPoolExecutor(2) as ex:
        assert list(ex.map(double, range(10), chunksize=3)) == [2 * i for i in range(10)]
        assert list(ex.map(double, range(10), journal=tmp_path / "j", progress=False)) == [2 * i for i in range(10)]
    with ProcessPoolExecutor(2) as ex:
        # every item is in the journal: odd_fails would fail the odd ones, but they are not recomputed
        run = ex.map(double, range(12), journal=tmp_path / "j", progress=False)
        assert list(run) == [2 * i for i in range(12)]


def test_submit_exception_keeps_its_type_and_names_the_call(local) -> None:
    with ProcessPoolExecutor(1) as ex:
        with pytest.raises(KeyError) as info:
            ex.submit(odd_fails, 3).result()
    assert info.value.__notes__[-1].startswith("pimpi.futures: raised by odd_fails(3) on pid ")


def test_local_workers_forked_under_mpi_are_named_by_pid(local) -> None:
    """The parent runs MPI (as in a serial test run after an MPI test): its forked local
    workers inherit that state but are no rank, so the note names them by pid."""
    code = ("from mpi4py import MPI\n"
            "from pimpi.futures import ProcessPoolExecutor\n"
            "from tests.futures.test_units import odd_fails\n"
            "with ProcessPoolExecutor(1) as ex:\n"
            "    try:\n"
            "        ex.submit(odd_fails, 3).result()\n"
            "    except KeyError as exc:\n"
            "        print(exc.__notes__[-1])\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PIMPI_FUTURES": "local"}, cwd=Path(__file__).parents[2])
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("pimpi.futures: raised by odd_fails(3) on pid "), out.stdout


def test_failing_items_retried_elsewhere_then_listed(local) -> None:
    with ProcessPoolExecutor(2) as ex:
        with pytest.raises(MapError) as info:
            list(ex.map(odd_fails, range(6), retries=1, progress=False))
    failures = info.value.failures
    assert [f.index for f in failures] == [1, 3, 5]
    assert all(len(f.workers) == 2 and type(f.exception) is KeyError for f in failures)
    assert all(f.workers[0] != f.workers[1] for f in failures)  # the retry ran on another worker


def test_a_failing_worker_is_avoided_and_the_items_succeed_elsewhere(local, tmp_path: Path) -> None:
    with ProcessPoolExecutor(3) as ex:
        results = list(ex.map(pid_fails, range(12), [str(tmp_path / "bad")] * 12, retries=3, progress=False))
    assert results == [x * 10 for x in range(12)]


def test_cli_outside_mpirun_is_one_line_exit_2_and_local_runs(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK",
                                                            "PMI_SIZE", "PIMPI_FUTURES")}
    script = tmp_path / "s.py"
    script.write_text("import sys\nfrom pimpi.futures import ProcessPoolExecutor\n"
                      "def f(x):\n    return x + 1\n"
                      "if __name__ == '__main__':\n"
                      "    with ProcessPoolExecutor(2) as ex:\n        print(list(ex.map(f, range(4))), sys.argv[1:])\n")
    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "pimpi.futures", *args], capture_output=True, text=True,
                              timeout=60, env=env, stdin=subprocess.DEVNULL)
    bare = run(str(script))
    assert bare.returncode == 2 and len(bare.stderr.splitlines()) == 1
    assert "not started by mpirun" in bare.stderr and "-m pimpi.futures s.py" in bare.stderr
    missing = run("nope.py")
    assert missing.returncode == 2 and missing.stderr == "pimpi.futures: script not found: 'nope.py'\n"
    local = run("--local", str(script), "a")
    assert local.returncode == 0, local.stderr
    assert local.stdout == "[1, 2, 3, 4] ['a']\n"
    plain = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60, env=env)
    assert plain.returncode == 1 and "RuntimeError: pimpi.futures: not started by mpirun" in plain.stderr


def test_import_starts_no_mpi() -> None:
    code = "import sys, pimpi.futures; assert 'mpi4py.MPI' not in sys.modules"
    assert subprocess.run([sys.executable, "-c", code], timeout=60).returncode == 0


def test_zero_of_one_trap_is_named(tmp_path: Path) -> None:
    """An mpirun of another MPI (here: MPICH's PMI_SIZE) and mpi4py's MPI seeing a world of 1."""
    env = {**os.environ, "PMI_SIZE": "3", "PMI_RANK": "0"}
    env.pop("PIMPI_FUTURES", None)
    script = tmp_path / "s.py"
    script.write_text("print('ran')\n")
    proc = subprocess.run([sys.executable, "-m", "pimpi.futures", str(script)], capture_output=True, text=True,
                          timeout=60, env=env, stdin=subprocess.DEVNULL)
    assert proc.returncode == 1 and proc.stdout == ""
    assert proc.stderr.startswith("pimpi.futures: mpirun started 3 processes but mpi4py's MPI (")
    assert len(proc.stderr.splitlines()) == 1


def test_local_workers_forked_from_an_mpi_process_stay_apart(tmp_path: Path) -> None:
    """Workers forked after MPI started each call themselves rank 0: their ids must still differ,
    or one blocklisted id would stop every worker (the map hung before)."""
    code = ("from mpi4py import MPI\n"
            "from pimpi.futures import ClusterExecutor, MapError\n"
            "def odd(x):\n    if x % 2:\n        raise KeyError(x)\n    return x\n"
            "with ClusterExecutor(2, fallback='local') as ex:\n"
            "    try:\n        list(ex.map(odd, range(8), retries=1, progress=False))\n"
            "    except MapError as exc:\n        print(sorted(f.index for f in exc.failures))\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OMPI_", "PMIX_", "PMI_"))}
    proc = procs.start([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       env=env)
    assert procs.wait(proc, timeout=90) == 0, proc.stderr.read()  # a hang ends the whole group: 124
    assert proc.stdout.read() == "[1, 3, 5, 7]\n"
