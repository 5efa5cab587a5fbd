"""Draw a trace: the terminal diagram, an SVG, and a PNG (with matplotlib)."""

from __future__ import annotations

import io
from xml.sax.saxutils import escape

from .rounds import Trace

__all__ = ["format_bytes", "format_trace", "trace_svg", "trace_png", "model_warning"]


def format_bytes(n: float) -> str:
    """1024 -> '1.0 KiB'; 12 -> '12 B'."""
    if n < 1024:
        return f"{int(n)} B"
    for unit in ("KiB", "MiB", "GiB"):
        n /= 1024.0
        if n < 1024 or unit == "GiB":
            return f"{n:.1f} {unit}"
    return f"{n:.1f} GiB"  # pragma: no cover


def model_warning(trace: Trace, prediction: tuple[int, int] | None) -> str | None:
    """A one-line warning when the traced critical path has more messages than the
    α–β model of the algorithm (cost()) counts: extra rounds, or another algorithm."""
    if prediction is None:
        return None
    traced = trace.critical_path[0]
    if traced <= prediction[0]:
        return None
    return (f"warning: the critical path has {traced} messages, more than the {prediction[0]} "
            "of the algorithm's model (extra rounds, or another algorithm?)")


def format_trace(trace: Trace, title: str, prediction: tuple[int, int] | None = None,
                 max_per_round: int = 16) -> str:
    """The round-by-round terminal diagram, then totals beside the α–β prediction."""
    lines = [title]
    width = len(f"r{trace.ranks - 1}")
    starts: dict[int, list[str]] = {}
    for name, first, _last in trace.phases():
        starts.setdefault(first, []).append(name)
    for rnd, msgs in trace.by_round().items():
        if rnd in starts:
            lines.append(f"-- {' + '.join(starts[rnd])} --")
        lines.append(f"round {rnd}: {len(msgs)} message{'s' if len(msgs) != 1 else ''}")
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
    warning = model_warning(trace, prediction)
    if warning is not None:
        lines.append(warning)
    return "\n".join(lines)


_PHASE_COLOURS = ("#1f5fa8", "#c0392b", "#1e8449", "#8e44ad", "#b9770e")


def _phase_levels(phases: list[tuple[str, int, int]]) -> list[int]:
    """A bracket row for each phase: 0, or the next row up when it shares rounds with a
    phase already on that row."""
    levels: list[int] = []
    for i, (_name, first, _last) in enumerate(phases):
        level = 0
        while any(levels[j] == level and phases[j][2] >= first for j in range(i)):
            level += 1
        levels.append(level)
    return levels


def _phase_colours(trace: Trace) -> dict[str, str]:
    names = list(dict.fromkeys(name for name, _a, _b in trace.phases()))
    return {name: _PHASE_COLOURS[i % len(_PHASE_COLOURS)] for i, name in enumerate(names)}


def trace_svg(trace: Trace, title: str = "", prediction: tuple[int, int] | None = None) -> str:
    """SVG: one horizontal lane per rank, one column per round. Every message of a round
    runs from the column's left edge (sent) to its right edge (received), so messages
    that travel at the same time are drawn side by side; named phases (reduce-scatter,
    allgather, ...) are bracketed above their rounds and colour their messages; a red line
    warns when the critical path is longer than `prediction` (the model's messages)."""
    colours = _phase_colours(trace)
    phases = trace.phases()
    levels = _phase_levels(phases)
    rows = max(levels, default=-1) + 1
    lane, col, left = 40, 120, 60
    top = 50 + 20 * rows
    rounds = max(trace.rounds, 1)
    warning = model_warning(trace, prediction)
    width = max(left + col * rounds + 40, left + 7 * len(title) + 20,
                left + 6 * len(warning or "") + 20)
    height = top + lane * max(trace.ranks - 1, 0) + (70 if warning else 50)
    parts = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11">',
        '<defs>' + "".join(
            f'<marker id="head{i}" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" '
            f'markerHeight="7" orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" '
            f'fill="{colour}"/></marker>' for i, colour in enumerate(_PHASE_COLOURS)) + '</defs>',
        f'<text x="{left}" y="20" font-size="13">{escape(title)}</text>',
    ]
    for (name, first, last), level in zip(phases, levels):
        x1, x2 = left + col * (first - 1) + 6, left + col * last - 6
        y = top - 26 - 20 * level
        colour = colours[name]
        parts.append(f'<path class="phase" d="M {x1} {y + 6} L {x1} {y} L {x2} {y} L {x2} {y + 6}" '
                     f'fill="none" stroke="{colour}"/>')
        parts.append(f'<text x="{(x1 + x2) / 2:.1f}" y="{y - 4}" text-anchor="middle" fill="{colour}">'
                     f'{escape(name)}</text>')
    for rnd in range(1, rounds + 1):
        x = left + col * (rnd - 1) + col // 2
        parts.append(f'<text x="{x}" y="{top - 12}" text-anchor="middle" fill="#666">round {rnd}</text>')
        if rnd > 1:
            xs = left + col * (rnd - 1)
            parts.append(f'<line x1="{xs}" y1="{top - 8}" x2="{xs}" y2="{top + lane * (trace.ranks - 1) + 8}" '
                         'stroke="#eee"/>')
    for rank in range(trace.ranks):
        y = top + lane * rank
        parts.append(f'<line x1="{left}" y1="{y}" x2="{width - 20}" y2="{y}" stroke="#bbb"/>')
        parts.append(f'<text x="10" y="{y + 4}">r{rank}</text>')
    for rnd, msgs in trace.by_round().items():
        x1, x2 = left + col * (rnd - 1) + 14, left + col * rnd - 14
        for msg in msgs:
            y1, y2 = top + lane * msg.src, top + lane * msg.dst
            colour = colours.get(msg.phase, _PHASE_COLOURS[0])
            head = _PHASE_COLOURS.index(colour)
            label = f"r{msg.src} -> r{msg.dst} {format_bytes(msg.nbytes)} (round {rnd}"
            label += f", {msg.phase})" if msg.phase else ")"
            parts.append(
                f'<line class="msg" x1="{x1}" y1="{y1}" x2="{x2}" y2="{y2}" stroke="{colour}" '
                f'stroke-width="1.5" marker-end="url(#head{head})"><title>{escape(label)}</title></line>'
            )
    if warning:
        parts.append(f'<text class="warning" x="{left}" y="{height - 16}" fill="#c0392b">'
                     f'{escape(warning)}</text>')
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def trace_png(trace: Trace, title: str = "", prediction: tuple[int, int] | None = None) -> bytes:
    """The same picture as `trace_svg` as PNG bytes, drawn with matplotlib (ImportError without it)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colours = _phase_colours(trace)
    phases = trace.phases()
    warning = model_warning(trace, prediction)
    rounds = max(trace.rounds, 1)
    rows = max(_phase_levels(phases), default=-1) + 1
    fig, ax = plt.subplots(figsize=(max(1.6 + 1.3 * rounds, 5.0 if warning else 0),
                                    1.0 + 0.45 * trace.ranks + 0.3 * rows))
    for rank in range(trace.ranks):
        ax.axhline(rank, color="#bbb", lw=0.8)
    for rnd in range(1, rounds):
        ax.axvline(rnd, color="#eee", lw=0.8)
    for rnd, msgs in trace.by_round().items():
        for msg in msgs:  # sent at the round's left edge, received at its right: side by side
            ax.annotate("", xy=(rnd - 0.1, msg.dst), xytext=(rnd - 0.9, msg.src),
                        arrowprops={"arrowstyle": "->", "lw": 1.2,
                                    "color": colours.get(msg.phase, _PHASE_COLOURS[0])})
    levels = _phase_levels(phases)
    for (name, first, last), level in zip(phases, levels):
        y = -0.75 - 0.55 * level
        ax.annotate("", xy=(last - 0.05, y), xytext=(first - 0.95, y), annotation_clip=False,
                    arrowprops={"arrowstyle": "|-|", "color": colours[name], "lw": 1.0,
                                "shrinkA": 0, "shrinkB": 0})
        ax.text((first - 1 + last) / 2, y - 0.1, name, ha="center", va="bottom", fontsize=8,
                color=colours[name], clip_on=False)
    ax.set_xlim(0, rounds)
    ax.set_ylim(trace.ranks - 0.5, -0.5)
    ax.set_yticks(range(trace.ranks), [f"r{r}" for r in range(trace.ranks)])
    ax.set_xticks([r - 0.5 for r in range(1, rounds + 1)], [f"round {r}" for r in range(1, rounds + 1)])
    ax.set_title(title, fontsize=10, pad=6 + 24 * rows)
    if warning:
        fig.text(0.01, 0.01, warning, color="#c0392b", fontsize=7)
    fig.tight_layout(rect=(0, 0.05 if warning else 0, 1, 1))
    out = io.BytesIO()
    try:
        fig.savefig(out, format="png", dpi=110)
    finally:
        plt.close(fig)
    return out.getvalue()
