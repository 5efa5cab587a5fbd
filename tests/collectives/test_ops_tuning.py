"""Serial tests: op mapping, the decision table, cost data and argument checks (no MPI started)."""

from __future__ import annotations

import json

import numpy as np
import pytest

import pimpi.collectives as coll
from pimpi.collectives import ALGORITHMS, ORDERED, choose, cost, get, load_table, resolve_op, save_table
from pimpi.collectives import tuning


class FakeComm:
    """Enough of a communicator for the argument checks, which run before any message."""

    def __init__(self, rank: int = 0, size: int = 3) -> None:
        self.rank, self.size = rank, size

    def Get_size(self) -> int:  # noqa: N802 - the agreement step asks, as of any communicator
        return self.size

    def Get_rank(self) -> int:  # noqa: N802
        return self.rank

    def Allreduce(self, sendbuf, recvbuf, op) -> None:  # noqa: N802 - the other ranks had no error
        pass

    def allgather(self, value):
        return [value] + [None] * (self.size - 1)


# --------------------------------------------------------------------------- ops

@pytest.mark.parametrize("name,ufunc", [("SUM", np.add), ("max", np.maximum), ("BAND", np.bitwise_and)])
def test_op_names_map_to_ufuncs(name, ufunc):
    op = resolve_op(name)
    assert op.ufunc is ufunc and op.commutative


def test_ufuncs_pass_through_and_commutativity_is_known():
    assert resolve_op(np.minimum).commutative
    assert not resolve_op(np.copysign).commutative
    with pytest.raises(TypeError, match="binary"):
        resolve_op(np.negative)
    with pytest.raises(TypeError, match="op must be"):
        resolve_op(lambda a, b: a)


def test_op_refuses_a_dtype_it_cannot_reduce():
    with pytest.raises(TypeError, match="bitwise_and.*float64"):
        resolve_op(np.bitwise_and).check_dtype(np.dtype(np.float64))
    resolve_op(np.bitwise_and).check_dtype(np.dtype(np.int32))


# --------------------------------------------------------------------------- registry and cost

def test_every_listed_algorithm_has_an_implementation_and_a_cost():
    for collective, algos in ALGORITHMS.items():
        assert callable(get(collective))
        for algo in algos:
            assert callable(coll.implementation(collective, algo))
            msgs, nbytes = cost(collective, algo, 1 << 20, 6)
            assert msgs > 0 and nbytes >= 0
            assert cost(collective, algo, 1 << 20, 1) == (0, 0)
    for collective, algos in ORDERED.items():
        assert set(algos) <= set(ALGORITHMS[collective])


def test_cost_matches_the_textbook():
    p, n = 8, 8000
    assert cost("allreduce", "ring", n, p) == (2 * (p - 1), 2 * (p - 1) / p * n)
    assert cost("bcast", "binomial", n, p) == (3, 3 * n)
    assert cost("allgather", "bruck", n, 5) == (3, 4 / 5 * n)
    with pytest.raises(ValueError, match="'nope'"):
        cost("bcast", "nope", n, p)


def test_get_names_the_unknown_collective_or_algorithm():
    with pytest.raises(ValueError, match="'bcastt'"):
        get("bcastt")
    with pytest.raises(ValueError, match="'tree'.*bcast"):
        get("bcast", "tree")


# --------------------------------------------------------------------------- decision table

def test_default_table_is_valid_and_covers_every_collective():
    table = load_table(tuning.DEFAULT_TABLE_PATH)
    assert set(ALGORITHMS) <= set(table)
    for collective in ALGORITHMS:
        for nbytes in (0, 8, 1 << 10, 1 << 20, 1 << 24):
            for size in (1, 2, 3, 4, 7, 64):
                assert choose(collective, nbytes, size) in ALGORITHMS[collective]


def test_rules_match_first_on_bytes_and_size(tmp_path, monkeypatch):
    path = tmp_path / "tuning.json"
    save_table({"allreduce": [{"max_bytes": 100, "algorithm": "recursive_doubling"},
                              {"min_size": 4, "max_size": 8, "algorithm": "ring"},
                              {"algorithm": "rabenseifner"}]}, path)
    monkeypatch.setenv("PIMPI_TUNING", str(path))
    coll.reload_table()
    try:
        assert choose("allreduce", 100, 64) == "recursive_doubling"
        assert choose("allreduce", 101, 4) == "ring"
        assert choose("allreduce", 101, 9) == "rabenseifner"
        assert choose("allreduce", 101, 3) == "rabenseifner"
        default = load_table(tuning.DEFAULT_TABLE_PATH)
        assert load_table()["bcast"] == default["bcast"]  # the user table only replaces what it names
    finally:
        monkeypatch.delenv("PIMPI_TUNING")
        coll.reload_table(lazy=True)


def test_user_table_in_config_home(tmp_path, monkeypatch):
    monkeypatch.delenv("PIMPI_TUNING", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    assert coll.user_table_path() == tmp_path / "pimpi" / "tuning.json"
    written = save_table({"barrier": [{"algorithm": "tree"}]})
    assert written == coll.user_table_path()
    try:
        assert choose("barrier", 0, 4) == "tree"
    finally:
        coll.reload_table(lazy=True)


@pytest.mark.parametrize("table,word", [
    ({"bcastt": []}, "'bcastt'"),
    ({"bcast": [{"algorithm": "ring"}]}, "'ring'"),
    ({"bcast": [{"algorithm": "linear", "max_byte": 3}]}, "'max_byte'"),
    ({"bcast": [{"algorithm": "linear", "max_bytes": -1}]}, "max_bytes"),
    ({"bcast": {"algorithm": "linear"}}, "must be a list"),
    ([], "JSON object"),
])
def test_bad_tables_are_refused_and_nothing_is_written(tmp_path, table, word):
    path = tmp_path / "t.json"
    with pytest.raises(ValueError, match=word):
        save_table(table, path)
    assert list(tmp_path.iterdir()) == []


def test_load_table_names_the_broken_file(tmp_path):
    path = tmp_path / "t.json"
    path.write_text("{not json")
    with pytest.raises(ValueError, match="t.json"):
        load_table(path)
    path.write_text(json.dumps({"scan": [{"algorithm": "ring"}]}))
    with pytest.raises(ValueError, match="'ring'"):
        load_table(path)


def test_save_table_round_trips_atomically(tmp_path):
    path = tmp_path / "deep" / "t.json"
    table = {"version": 1, "meta": {"host": "pi"}, "scan": [{"algorithm": "linear"}]}
    save_table(table, path)
    assert load_table(path) == table
    assert [p.name for p in path.parent.iterdir()] == ["t.json"]


# --------------------------------------------------------------------------- argument checks

a = np.zeros(6, np.float64)


@pytest.mark.parametrize("call,error,word", [
    (lambda c: coll.bcast(c, a, root=3), ValueError, "root 3"),
    (lambda c: coll.bcast(c, a, root=-1), ValueError, "root -1"),
    (lambda c: coll.bcast(c, [1, 2]), TypeError, "list"),
    (lambda c: coll.bcast(c, a, algorithm="tree"), ValueError, "'tree'"),
    (lambda c: coll.reduce(c, a, np.zeros(5)), ValueError, "5 items"),
    (lambda c: coll.reduce(c, a, None), ValueError, "None on root"),
    (lambda c: coll.reduce(c, a, np.zeros(6, np.float32)), TypeError, "float32"),
    (lambda c: coll.allreduce(c, a, a.copy(), np.bitwise_and), TypeError, "bitwise_and"),
    (lambda c: coll.allreduce(c, a, a.copy(), np.copysign, algorithm="ring"), ValueError, "commutative"),
    (lambda c: coll.allreduce(c, a, a.copy(), "XOR"), TypeError, "'XOR'"),
    (lambda c: coll.scatter(c, np.zeros(5), np.zeros(2)), ValueError, "5 items"),
    (lambda c: coll.gather(c, a, np.zeros(6)), ValueError, "6 items, expected 18"),
    (lambda c: coll.allgather(c, a, np.zeros(6, np.int64)), TypeError, "int64"),
    (lambda c: coll.alltoall(c, np.zeros(7), np.zeros(7)), ValueError, "multiple of 3"),
    (lambda c: coll.reduce_scatter_block(c, a, np.zeros(3)), ValueError, "expected 9"),
    (lambda c: coll.scan(c, a, np.zeros(5)), ValueError, "5 items"),
    (lambda c: coll.exscan(c, a, a.copy(), algorithm="ring"), ValueError, "'ring'"),
    (lambda c: coll.barrier(c, algorithm="butterfly"), ValueError, "'butterfly'"),
    (lambda c: coll.scatterv(c, a, [1, 2], np.zeros(1)), ValueError, r"counts \[1, 2\]"),
    (lambda c: coll.scatterv(c, a, [1, 2, -3], np.zeros(1)), ValueError, "non-negative"),
    (lambda c: coll.scatterv(c, a, [2, 2, 3], np.zeros(2)), ValueError, "overrun"),
    (lambda c: coll.gatherv(c, a, np.zeros(5), [6, 0, 0]), ValueError, "overrun"),
    (lambda c: coll.gatherv(c, a, np.zeros(9), [1, 2, 3]), ValueError, "6 items, expected 1"),
])
def test_bad_arguments_fail_before_any_message(call, error, word):
    with pytest.raises(error, match=word):
        call(FakeComm())


def test_read_only_receive_buffer_is_refused():
    frozen = np.zeros(6)
    frozen.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        coll.allreduce(FakeComm(), a, frozen)
