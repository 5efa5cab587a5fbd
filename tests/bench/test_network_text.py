"""How `bench pingpong` and `bench pingmatrix` print a Hockney fit whose α came out at or below zero."""

from __future__ import annotations

from pimpi.bench import network


def _row(size: int, seconds: float) -> dict:
    return {"size": size, "latency_s": {"min": seconds, "median": seconds, "max": seconds}, "loops": 10,
            "bandwidth_Bps": size / seconds}


def test_a_fit_with_negative_latency_says_below_resolution():
    # only large sizes, the smallest measured a little fast: α fits negative
    rows = [_row(1 << 14, 10e-6), _row(1 << 16, 60e-6), _row(1 << 20, 1.05e-3)]
    fit = network._fit_rows(rows)
    assert fit["alpha_s"] < 0  # the fit itself stays honest in the JSON
    text = network._format_pingpong({"pair": [0, 1], "repeats": 1, "rows": rows, "hockney": fit,
                                     "hockney_large": None})
    line = next(l for l in text.splitlines() if l.startswith("Hockney fit"))
    assert "α = below resolution" in line and "-" not in line.split("α =")[1].split(",")[0]


def test_a_positive_latency_is_printed_as_measured():
    rows = [_row(8, 20e-6), _row(1 << 16, 80e-6), _row(1 << 20, 1.0e-3)]
    fit = network._fit_rows(rows)
    assert fit["alpha_s"] > 0
    assert "below resolution" not in network._hockney_line(fit)
