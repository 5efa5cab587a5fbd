"""Draw a trace: the terminal diagram, an SVG, and a PNG (with matplotlib)."""

from __future__ import annotations

import io
from xml.sax.saxutils import escape

from typing import Sequence

from .phases import Phase
from .rounds import Trace

__all__ = ["format_bytes", "format_trace", "trace_svg", "trace_png"]


def format_bytes(n: float) -> str:
    """1024 -> '1.0 KiB'; 12 -> '12 B'."""
    if n < 1024:
        return f"{int(n)} B"
    for unit in ("KiB", "MiB", "GiB"):
        n /= 1024.0
        if n < 1024 or unit == "GiB":
            return f"{n:.1f} {unit}"
    return f"{n:.1f} GiB"  # pragma: no cover


def _phase_of(rnd: int, phases: Sequence[Phase]) -> str:
    return next((name for name, first, last in phases if first <= rnd <= last), "")


def format_trace(trace: Trace, title: str, prediction: tuple[int, int] | None = None,
                 max_per_round: int = 16, phases: Sequence[Phase] = ()) -> str:
    """The round-by-round terminal diagram, then totals beside the α–β prediction."""
    lines = [title]
    width = len(f"r{trace.ranks - 1}")
    for rnd, msgs in trace.by_round().items():
        phase = _phase_of(rnd, phases)
        lines.append(f"round {rnd}: {len(msgs)} message{'s' if len(msgs) != 1 else ''}"
                     + (f"  ({phase})" if phase else ""))
        for msg in msgs[:max_per_round]:
            lines.append(f"  r{msg.src:<{width - 1}} -> r{msg.dst:<{width - 1}}  {format_bytes(msg.nbytes)}")
        if len(msgs) > max_per_round:
            lines.append(f"  ... {len(msgs) - max_per_round} more")
    path_msgs, path_bytes = trace.critical_path
    lines.append(f"messages: {len(trace.messages)}   bytes: {format_bytes(trace.total_bytes)}"
                 f"   rounds: {trace.rounds} (causal depth {trace.depth})")
    measured = f"critical path: {path_msgs} messages, {format_bytes(path_bytes)}"
    if prediction is not None:
        measured += f"   (alpha-beta model: {prediction[0]} messages, {format_bytes(prediction[1])})"
    lines.append(measured)
    if prediction is not None and path_msgs > prediction[0]:
        lines.append(f"warning: {path_msgs} messages on the critical path where the model has "
                     f"{prediction[0]}: extra rounds, or another algorithm than the one named")
    return "\n".join(lines)


def trace_svg(trace: Trace, title: str = "", phases: Sequence[Phase] = ()) -> str:
    """SVG: one horizontal lane per rank, one arrow per message, one column per round,
    and the algorithm's phases named under the rounds they span."""
    per_round = trace.by_round()
    lane, col, left, top = 40, 110, 60, 50
    rounds = max(trace.rounds, 1)
    width = max(left + col * rounds + 40, left + 7 * len(title) + 20)
    bottom = top + lane * max(trace.ranks - 1, 0) + 20
    height = bottom + (50 if phases else 30)
    parts = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11">',
        '<defs><marker id="head" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" '
        'fill="#1f5fa8"/></marker></defs>',
        f'<text x="{left}" y="20" font-size="13">{escape(title)}</text>',
    ]
    for rnd in range(1, rounds + 1):
        x = left + col * (rnd - 1) + col // 2
        parts.append(f'<text x="{x}" y="38" text-anchor="middle" fill="#666">round {rnd}</text>')
    for rank in range(trace.ranks):
        y = top + lane * rank
        parts.append(f'<line x1="{left}" y1="{y}" x2="{width - 20}" y2="{y}" stroke="#bbb"/>')
        parts.append(f'<text x="10" y="{y + 4}">r{rank}</text>')
    for rnd, msgs in per_round.items():
        # a round's messages travel at the same time: side by side, each spanning the column
        # (staggered arrows made concurrent ring messages look like one chain)
        x1, x2 = left + col * (rnd - 1) + 20, left + col * rnd - 20
        for msg in msgs:
            y1, y2 = top + lane * msg.src, top + lane * msg.dst
            label = f"r{msg.src} -> r{msg.dst} {format_bytes(msg.nbytes)} (round {rnd})"
            parts.append(
                f'<line class="msg" x1="{x1:.1f}" y1="{y1}" x2="{x2:.1f}" y2="{y2}" stroke="#1f5fa8" '
                f'stroke-width="1.5" marker-end="url(#head)"><title>{escape(label)}</title></line>'
            )
    for name, first, last in phases:
        x1, x2 = left + col * (first - 1) + 8, left + col * last - 8
        parts.append(f'<line class="phase" x1="{x1}" y1="{bottom}" x2="{x2}" y2="{bottom}" '
                     'stroke="#a05a00" stroke-width="2"/>')
        parts.append(f'<text x="{(x1 + x2) / 2:.0f}" y="{bottom + 16}" text-anchor="middle" '
                     f'fill="#a05a00">{escape(name)}</text>')
    parts.append("</svg>")
    return "\n".join(parts) + "\n"



def trace_png(trace: Trace, title: str = "", phases: Sequence[Phase] = ()) -> bytes:
    """The same picture as `trace_svg` as PNG bytes, drawn with matplotlib (ImportError without it)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rounds = max(trace.rounds, 1)
    fig, ax = plt.subplots(figsize=(1.2 + 1.1 * rounds, 0.8 + 0.45 * trace.ranks))
    for rank in range(trace.ranks):
        ax.axhline(rank, color="#bbb", lw=0.8)
    for rnd, msgs in trace.by_round().items():
        for msg in msgs:  # side by side, as in trace_svg
            ax.annotate("", xy=(rnd - 0.15, msg.dst), xytext=(rnd - 0.85, msg.src),
                        arrowprops={"arrowstyle": "->", "color": "#1f5fa8", "lw": 1.2})
    for name, first, last in phases:
        ax.plot([first - 0.95, last - 0.05], [trace.ranks - 0.6] * 2, color="#a05a00", lw=2)
        ax.text((first - 1 + last) / 2, trace.ranks - 0.1, name, ha="center", va="bottom",
                color="#a05a00", fontsize=9)
    ax.set_xlim(0, rounds)
    ax.set_ylim(trace.ranks + (0.1 if phases else -0.5), -0.5)
    ax.set_yticks(range(trace.ranks), [f"r{r}" for r in range(trace.ranks)])
    ax.set_xticks([r - 0.5 for r in range(1, rounds + 1)], [f"round {r}" for r in range(1, rounds + 1)])
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    out = io.BytesIO()
    try:
        fig.savefig(out, format="png", dpi=110)
    finally:
        plt.close(fig)
    return out.getvalue()

