"""A deterministic PNG writer (8-bit RGB, zlib): the same pixels always give the same bytes."""

from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

import numpy as np

from pimpi.fileio import atomic_write

__all__ = ["encode_png", "write_png"]

_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_LEVEL = 6


def _chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def encode_png(pixels: np.ndarray) -> bytes:
    """PNG bytes of an (height, width, 3) uint8 array.

    Every row uses the 'Up' filter (difference to the row above, computed in NumPy), which
    compresses smooth renders well and keeps the encoding a pure function of the pixels.
    """
    img = np.asarray(pixels)
    if img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"pixels must have shape (height, width, 3), got {img.shape}")
    if img.dtype != np.uint8:
        raise TypeError(f"pixels must be uint8, got {img.dtype}")
    height, width = img.shape[:2]
    if height < 1 or width < 1:
        raise ValueError(f"image must not be empty, got {width}x{height}")
    rows = img.reshape(height, width * 3)
    up = np.empty_like(rows)
    up[0] = rows[0]
    np.subtract(rows[1:], rows[:-1], out=up[1:])  # uint8 arithmetic wraps mod 256
    raw = np.empty((height, width * 3 + 1), dtype=np.uint8)
    raw[:, 0] = 2  # filter type Up
    raw[:, 1:] = up
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"".join((
        _SIGNATURE,
        _chunk(b"IHDR", header),
        _chunk(b"IDAT", zlib.compress(raw.tobytes(), _LEVEL)),
        _chunk(b"IEND", b""),
    ))


def write_png(path: str | os.PathLike, pixels: np.ndarray) -> Path:
    """Write a PNG atomically: a temporary name in the same folder, then rename."""
    return atomic_write(path, encode_png(pixels))
