"""Plain-text tables for people (the JSON holds the full numbers)."""

from __future__ import annotations

from typing import Any, Sequence

__all__ = ["table", "fmt_bytes", "fmt_seconds", "fmt_num"]


def fmt_bytes(nbytes: float) -> str:
    """65536 -> '64K'."""
    for unit, scale in (("G", 1 << 30), ("M", 1 << 20), ("K", 1 << 10)):
        if nbytes >= scale and nbytes % scale == 0:
            return f"{int(nbytes // scale)}{unit}"
    return f"{int(nbytes)}" if float(nbytes).is_integer() else f"{nbytes:.3g}"


def fmt_seconds(seconds: float | None) -> str:
    """Seconds in the unit that reads best: µs, ms or s."""
    if seconds is None:
        return "-"
    if seconds < 1e-3:
        return f"{seconds * 1e6:.1f}us"
    if seconds < 1.0:
        return f"{seconds * 1e3:.2f}ms"
    return f"{seconds:.3f}s"


def fmt_num(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]], title: str = "") -> str:
    """Right-aligned columns with a header line, like OSU's output."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = [f"# {title}"] if title else []
    for n, row in enumerate(cells):
        line = "  ".join(c.rjust(w) for c, w in zip(row, widths))
        lines.append(("# " if n == 0 else "  ") + line)
    return "\n".join(lines) + "\n"
