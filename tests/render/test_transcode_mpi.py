"""`run_transcode` under mpirun: segments encoded on every rank, audio muxed once, output checked."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from pimpi.render import ffmpeg as ff
from pimpi.render.transcode import TranscodeJob, run_transcode, work_folder
from pimpi.testing import assert_all_ranks

_HERE = Path(__file__).parent


def _make_clip(path: Path) -> Path:
    spec = importlib.util.spec_from_file_location("_transcode_serial", _HERE / "test_transcode.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.make_clip(path)


@pytest.mark.mpi
def test_transcode_keeps_every_frame_and_the_audio(comm, shared_tmp_path):
    src, dst = shared_tmp_path / "in.mp4", shared_tmp_path / "out.mp4"
    if comm.rank == 0:
        _make_clip(src)
    comm.Barrier()
    job = TranscodeJob(src=src, dst=dst, segment_seconds=1.0, crf=30, preset="ultrafast")
    result = run_transcode(comm, job)
    problem = ""
    if comm.rank == 0:
        src_info, out_info = ff.probe(src), ff.probe(dst)
        if out_info["frames"] != src_info["frames"]:
            problem = f"frames {out_info['frames']} != {src_info['frames']}"
        elif abs(out_info["duration"] - src_info["duration"]) > 1 / 25:
            problem = f"duration {out_info['duration']} vs {src_info['duration']}"
        elif not out_info["has_audio"] or abs(out_info["audio_duration"] - src_info["audio_duration"]) > 1 / 25:
            problem = f"audio {out_info}"
        elif work_folder(dst).exists():
            problem = "work folder left behind"
    worked = sum(r.units for r in result.report.ranks)
    assert_all_ranks(comm, not problem and result.segments == 4 and worked == 4 and result.audio == "copied",
                     f"{problem} segments={result.segments} worked={worked} audio={result.audio}")
