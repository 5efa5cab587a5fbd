"""Frame specs and chunks: the parsing users type, and ranges a renderer can take as given."""

from __future__ import annotations

import pytest

from pimpi.render.framespec import chunks, format_frames, parse_frames


def test_parse_example_from_render_farms():
    frames = parse_frames("1-100,120,200-250:2")
    assert frames[:3] == [1, 2, 3] and 100 in frames and 101 not in frames
    assert 120 in frames
    assert [f for f in frames if f >= 200] == list(range(200, 251, 2))
    assert len(frames) == 100 + 1 + 26


def test_parse_sorts_and_removes_duplicates():
    assert parse_frames(" 5, 1-3 ,2,5-6") == [1, 2, 3, 5, 6]


def test_parse_step_that_misses_the_end():
    assert parse_frames("20-26:4") == [20, 24]
    assert parse_frames("7-7:3") == [7]


@pytest.mark.parametrize(
    "spec, named",
    [
        ("", "empty frame spec"),
        ("   ", "empty frame spec"),
        ("1-3,,5", "empty piece"),
        ("10-1", "'10-1'"),
        ("1-10:0", "'1-10:0'"),
        ("1-10:-2", "'1-10:-2'"),
        ("abc", "'abc'"),
        ("1-5,x7", "'x7'"),
        ("-3", "'-3'"),
        ("1-", "'1-'"),
        ("3:2", "'3:2'"),
    ],
)
def test_parse_errors_name_the_bad_piece(spec, named):
    with pytest.raises(ValueError) as info:
        parse_frames(spec)
    assert named in str(info.value)


def test_reversed_range_says_backwards():
    with pytest.raises(ValueError, match="backwards"):
        parse_frames("1-2,10-1")


def test_chunks_last_chunk_ends_at_last_frame():
    got = chunks(list(range(1, 11)), 4)
    assert got == [[1, 2, 3, 4], [5, 6, 7, 8], [9, 10]]
    assert got[-1][-1] == 10


def test_chunks_break_at_gaps_so_ranges_are_real():
    frames = parse_frames("1-5,8,10-14:2,20-21")
    got = chunks(frames, 3)
    assert got == [[1, 2, 3], [4, 5], [8], [10], [12], [14], [20, 21]]
    for chunk in got:  # start..end covers exactly the chunk's frames
        assert chunk == list(range(chunk[0], chunk[-1] + 1))
    assert sum(got, []) == frames


def test_chunks_cover_every_frame_once():
    frames = parse_frames("0-96,100-137")
    for size in (1, 2, 7, 50, 1000):
        got = chunks(frames, size)
        assert sum(got, []) == frames
        assert max(len(c) for c in got) <= size


@pytest.mark.parametrize("size", [0, -1])
def test_chunks_refuse_bad_size(size):
    with pytest.raises(ValueError, match=str(size)):
        chunks([1, 2], size)


def test_chunks_refuse_non_int_size():
    with pytest.raises(TypeError):
        chunks([1, 2], 2.0)  # type: ignore[arg-type]


def test_format_frames_round_trips():
    frames = parse_frames("1-3,7,9-12,40")
    assert format_frames(frames) == "1-3,7,9-12,40"
    assert parse_frames(format_frames(frames)) == frames
