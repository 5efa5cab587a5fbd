"""Thumbnails of every image in a folder (Pillow), one image per task.

Written for one machine. On the cluster, change one line:
    from concurrent.futures import ProcessPoolExecutor   ->   from pimpi.futures import ProcessPoolExecutor
and start it with:  pimpi run -n 5 --hostfile hostfile -- -m pimpi.futures thumbnails.py photos thumbs
The images travel to the workers as bytes and the thumbnails come back, so the nodes need no
shared folder.
"""

import argparse
import hashlib
import io
from pathlib import Path

from concurrent.futures import ProcessPoolExecutor
from PIL import Image

SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}


def thumbnail(name, data, size):
    """(name, original width x height, PNG bytes of a thumbnail at most size x size)."""
    with Image.open(io.BytesIO(data)) as image:
        original = image.size
        image = image.convert("RGB")
        image.thumbnail((size, size), Image.LANCZOS)
        out = io.BytesIO()
        image.save(out, format="PNG", optimize=True)
    return name, original, out.getvalue()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path)
    parser.add_argument("target", type=Path)
    parser.add_argument("--size", type=int, default=128)
    args = parser.parse_args()
    files = sorted(p for p in args.source.iterdir() if p.suffix.lower() in SUFFIXES)
    args.target.mkdir(parents=True, exist_ok=True)
    with ProcessPoolExecutor() as executor:
        jobs = executor.map(thumbnail, [p.name for p in files], (p.read_bytes() for p in files),
                            [args.size] * len(files))
        for name, (width, height), png in jobs:
            (args.target / (Path(name).stem + ".png")).write_bytes(png)
            print(f"{name} {width}x{height} {hashlib.sha256(png).hexdigest()[:16]}")


if __name__ == "__main__":
    main()
