"""render_frames under MPI: every schedule and tiling writes the bytes of a serial render."""

from __future__ import annotations

import json

import pytest

from pimpi.render.job import frame_name, render_frames
from pimpi.render.png import encode_png
from pimpi.render.scenes import render_frame
from pimpi.testing import assert_all_ranks

W, H, N = 48, 32, 5


@pytest.mark.mpi
@pytest.mark.parametrize("scene, schedule, tiles", [
    ("mandelbrot", "dynamic", (1, 1)),
    ("mandelbrot", "static", (1, 1)),
    ("julia", "block", (1, 1)),
    ("mandelbrot", "dynamic", (2, 3)),
    ("raytrace", "dynamic", (3, 1)),
])
def test_schedules_match_serial_bytes(comm, shared_tmp_path, scene, schedule, tiles) -> None:
    out = shared_tmp_path / f"{scene}-{schedule}-{tiles[0]}x{tiles[1]}"
    report = render_frames(comm, scene, N, W, H, schedule=schedule, out=out, tiles=tiles)
    ok, detail = report.rendered == list(range(N)) and not report.failed, f"rendered {report.rendered}"
    if ok and comm.rank == 0:
        for f in range(N):
            want = encode_png(render_frame(scene, f, N, W, H))
            if (out / frame_name(f, N)).read_bytes() != want:
                ok, detail = False, f"frame {f} differs from the serial render"
                break
    assert_all_ranks(comm, ok, detail)
    again = render_frames(comm, scene, N, W, H, schedule=schedule, out=out, tiles=tiles)
    assert_all_ranks(comm, again.rendered == [] and again.skipped == list(range(N)),
                     f"second run rendered {again.rendered}")


@pytest.mark.mpi
def test_without_out_nothing_is_written_and_stats_add_up(comm, shared_tmp_path) -> None:
    report = render_frames(comm, "julia", N, W, H, schedule="dynamic")
    stats = report.to_dict()
    json.dumps(stats)
    ok = stats["rendered"] == N and stats["ranks"] == comm.size and stats["imbalance"] >= 1.0
    ok = ok and sum(r["units"] for r in stats["per_rank"]) == N and report.files == []
    assert_all_ranks(comm, ok, f"stats {stats['rendered']} {stats['per_rank']}")
