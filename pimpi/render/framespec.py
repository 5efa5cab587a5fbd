"""Frame specs like `1-100,120,200-250:2`, and chunks of frames that a renderer can take as a range."""

from __future__ import annotations

import re

from pimpi.cliutil import MAX_FRAME_NUMBER, MAX_FRAMES

__all__ = ["parse_frames", "chunks", "format_frames"]

_PIECE = re.compile(r"^(\d+)(?:-(\d+)(?::(-?\d+))?)?$")


def parse_frames(spec: str) -> list[int]:
    """Frame numbers of `spec`, sorted ascending and without duplicates.

    Pieces are separated by commas: `N`, `A-B` (both ends included) or `A-B:S` (every S-th
    frame from A; B is included only when the step lands on it). Frames are >= 0.
    `parse_frames("1-3,10,20-26:3") == [1, 2, 3, 10, 20, 23, 26]`.
    Raises ValueError naming the bad piece: empty, reversed (`10-1`), step <= 0, garbage,
    a frame over MAX_FRAME_NUMBER, more than MAX_FRAMES frames in all (checked before any
    list is built, so `0-9999999999` costs nothing).
    """
    if not isinstance(spec, str):
        raise TypeError(f"frame spec must be a string, got {type(spec).__name__}")
    if not spec.strip():
        raise ValueError("empty frame spec")
    if len(spec) > 100_000:
        raise ValueError(f"frame spec {spec[:24]!r}... is far too long")
    frames: set[int] = set()
    count = 0
    for raw in spec.split(","):
        piece = raw.strip()
        if not piece:
            raise ValueError(f"empty piece in frame spec {spec!r}")
        match = _PIECE.match(piece)
        if match is None:
            raise ValueError(f"bad frame spec piece {piece!r}: expected N, A-B or A-B:STEP (N >= 0)")
        first, last, step = match.groups()
        if max(len(g or "") for g in (first, last, step)) > 9:
            raise ValueError(f"bad frame spec piece {piece!r}: frame numbers go up to {MAX_FRAME_NUMBER}")
        start = int(first)
        end = start if last is None else int(last)
        stride = 1 if step is None else int(step)
        if stride <= 0:
            raise ValueError(f"bad frame spec piece {piece!r}: step must be at least 1")
        if end < start:
            raise ValueError(f"bad frame spec piece {piece!r}: range goes backwards ({start} > {end})")
        if end > MAX_FRAME_NUMBER:
            raise ValueError(f"bad frame spec piece {piece!r}: frame {end} is over {MAX_FRAME_NUMBER}")
        count += (end - start) // stride + 1
        if count > MAX_FRAMES:
            raise ValueError(f"frame spec {spec!r} has more than {MAX_FRAMES} frames")
        frames.update(range(start, end + 1, stride))
    return sorted(frames)


def chunks(frames: list[int], size: int) -> list[list[int]]:
    """Split `frames` into chunks of at most `size` consecutive frame numbers.

    A chunk never spans a gap (so `start..end` of a chunk is exactly its frames, and a
    renderer given that range renders nothing extra); within a run of consecutive frames
    the chunks are `size` long and the last one ends at the run's last frame. Frames are
    taken in the order given after sorting and removing duplicates.
    """
    if isinstance(size, bool) or not isinstance(size, int):
        raise TypeError(f"chunk size must be an int, got {type(size).__name__}")
    if size < 1:
        raise ValueError(f"chunk size must be at least 1, got {size}")
    ordered = sorted(set(frames))
    if any(f < 0 for f in ordered):
        raise ValueError(f"negative frame number {ordered[0]}")
    result: list[list[int]] = []
    current: list[int] = []
    for frame in ordered:
        if current and (frame != current[-1] + 1 or len(current) == size):
            result.append(current)
            current = []
        current.append(frame)
    if current:
        result.append(current)
    return result


def format_frames(frames: list[int]) -> str:
    """The shortest spec for `frames` using runs: [1, 2, 3, 7] -> '1-3,7' (for reports)."""
    parts: list[str] = []
    ordered = sorted(set(frames))
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and ordered[j + 1] == ordered[j] + 1:
            j += 1
        parts.append(str(ordered[i]) if i == j else f"{ordered[i]}-{ordered[j]}")
        i = j + 1
    return ",".join(parts)
