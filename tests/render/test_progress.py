"""Progress output: a redrawn bar on a terminal, occasional plain lines otherwise."""

from __future__ import annotations

import io

from pimpi.render.progress import Progress, format_eta


def test_plain_lines_are_throttled_but_the_last_is_shown() -> None:
    stream = io.StringIO()
    progress = Progress(10, label="x", stream=stream, interval=3600, tty=False)
    progress(0, 10)
    for done in range(1, 11):
        progress(done, 10)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2 and lines[0].startswith("x: 1/10") and lines[-1].startswith("x: 10/10")
    assert "\r" not in stream.getvalue() and "ETA" in lines[0]


def test_bar_redraws_one_line() -> None:
    stream = io.StringIO()
    progress = Progress(4, label="y", stream=stream, tty=True, width=8)
    progress(4, 4)
    progress.close()
    text = stream.getvalue()
    assert text.startswith("\r\x1b[K[########] y: 4/4") and text.endswith("\n")


def test_pimpi_tty_overrides_the_stream(monkeypatch) -> None:
    monkeypatch.setenv("PIMPI_TTY", "1")
    assert Progress(1, stream=io.StringIO()).tty
    monkeypatch.setenv("PIMPI_TTY", "0")
    assert not Progress(1, stream=io.StringIO()).tty


def test_format_eta() -> None:
    assert [format_eta(s) for s in (5, 125, 7300, float("inf"))] == ["5s", "2m05s", "2h01m", "?"]
