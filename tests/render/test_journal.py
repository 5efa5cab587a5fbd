"""The resume journal: verified entries, torn last lines, signature changes, --force."""

from __future__ import annotations

from pathlib import Path

from pimpi.journal import JOURNAL_NAME, Journal


def _write(path: Path, data: bytes) -> None:
    path.write_bytes(data)


def test_record_then_done_verifies_checksum(tmp_path: Path) -> None:
    journal = Journal.open(tmp_path, {"scene": "x"})
    assert journal.fresh
    _write(tmp_path / "a.png", b"aaa")
    journal.record("a", ["a.png"])
    again = Journal.open(tmp_path, {"scene": "x"})
    assert not again.fresh
    assert again.done("a")
    assert not again.done("b")
    _write(tmp_path / "a.png", b"changed")
    assert not again.done("a"), "a changed file must not count as done"
    (tmp_path / "a.png").unlink()
    assert not again.done("a"), "a missing file must not count as done"


def test_torn_last_line_is_ignored_and_appends_still_parse(tmp_path: Path) -> None:
    journal = Journal.open(tmp_path, "job")
    for key in ("a", "b"):
        _write(tmp_path / f"{key}.png", key.encode())
        journal.record(key, [f"{key}.png"])
    path = tmp_path / JOURNAL_NAME
    text = path.read_bytes()
    path.write_bytes(text[:-7])  # tear the last record
    again = Journal.open(tmp_path, "job")
    assert again.done("a") and not again.done("b")
    _write(tmp_path / "c.png", b"c")
    again.record("c", ["c.png"])
    third = Journal.open(tmp_path, "job")
    assert third.done("a") and third.done("c") and not third.done("b")


def test_new_signature_or_force_starts_over(tmp_path: Path) -> None:
    journal = Journal.open(tmp_path, {"size": [4, 4]})
    _write(tmp_path / "a.png", b"a")
    journal.record("a", ["a.png"])
    other = Journal.open(tmp_path, {"size": [8, 8]})
    assert other.fresh and not other.done("a")
    back = Journal.open(tmp_path, {"size": [8, 8]})
    assert not back.done("a"), "the old job's entries must be gone"
    back.record("a", ["a.png"])
    forced = Journal.open(tmp_path, {"size": [8, 8]}, force=True)
    assert forced.fresh and not forced.done("a")


def test_garbage_journal_is_a_fresh_start(tmp_path: Path) -> None:
    (tmp_path / JOURNAL_NAME).write_bytes(b"\x00\x01 not json\n{\"key\": 1}\n")
    journal = Journal.open(tmp_path, "job")
    assert journal.fresh and journal.keys() == []
