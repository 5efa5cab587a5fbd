"""`run_cmd` under mpirun with real renderers (POV-Ray, ffmpeg): frames, retries, failures, resume, --collect."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from pimpi.journal import JOURNAL_NAME
from pimpi.jobstatus import STATUS_NAME
from pimpi.render.cmd import CmdJob, Template, check_output_file, parse_expect, run_cmd
from pimpi.testing import assert_all_ranks

DATA = Path(__file__).parent / "data"
HAVE_POVRAY = shutil.which("povray") is not None
HAVE_FFMPEG = shutil.which("ffmpeg") is not None


def _testsrc(seconds: float = 2.0, source: str | None = None) -> list[str]:
    """ffmpeg as the renderer: frames {start}..{end} of a test pattern (10 fps, 32x24)."""
    src = ["-f", "lavfi", "-i", f"testsrc=size=32x24:rate=10:duration={seconds:g}"] if source is None else ["-i", source]
    return ["ffmpeg", "-nostdin", "-loglevel", "error", *src, "-vf", r"select=between(n\,{start}\,{end})",
            "-fps_mode", "passthrough", "-start_number", "{start}", "{out}/frame_%04d.png"]


def _job(out: Path, argv: list[str], frames: list[int], chunk: int, **kw) -> CmdJob:
    return CmdJob(template=Template.parse(argv), expect=parse_expect(["frame_{frame:04d}.png"]),
                  out_dir=out, frames=frames, chunk_size=chunk, **kw)


def _frames_ok(out: Path, frames: list[int]) -> str:
    """'' when every frame is a complete 32x24 PNG under its final name, else what is wrong."""
    from PIL import Image

    for f in frames:
        path = out / f"frame_{f:04d}.png"
        why = check_output_file(path)
        if why:
            return f"{path.name}: {why}"
        with Image.open(path) as image:
            if image.size != (32, 24):
                return f"{path.name}: size {image.size}"
    leftovers = [p.name for p in out.iterdir() if p.name.startswith(".pimpi-chunk")]
    return f"staging folders left: {leftovers}" if leftovers else ""


@pytest.mark.mpi
@pytest.mark.skipif(not HAVE_POVRAY, reason="needs povray (apt install povray)")
def test_povray_renders_every_frame_and_resume_skips_them(comm, shared_tmp_path):
    scene = shared_tmp_path / "anim.pov"
    if comm.rank == 0:
        shutil.copy(DATA / "anim.pov", scene)
    comm.Barrier()
    out = shared_tmp_path / "frames"
    argv = ["povray", f"+I{scene}", "+O{out}/frame_.png", "+W32", "+H24", "+KFI1", "+KFF4",
            "+SF{start}", "+EF{end}", "-D", "-GA"]
    job = CmdJob(template=Template.parse(argv), expect=parse_expect(["frame_{frame}.png"]),
                 out_dir=out, frames=[1, 2, 3, 4], chunk_size=2)
    result = run_cmd(comm, job)
    problem = ""
    if comm.rank == 0:
        names = sorted(p.name for p in out.iterdir())
        if names != sorted([JOURNAL_NAME, STATUS_NAME] + [f"frame_{f}.png" for f in (1, 2, 3, 4)]):
            problem = f"files: {names}"
        for f in (1, 2, 3, 4):
            problem = problem or check_output_file(out / f"frame_{f}.png")
    assert_all_ranks(comm, not result.failed and len(result.done) == 2 and not problem,
                     f"failed={result.failed} done={result.done} {problem}")
    stamp = (out / "frame_3.png").stat().st_mtime_ns
    again = run_cmd(comm, job)
    assert_all_ranks(comm, again.skipped == 2 and again.report is None
                     and (out / "frame_3.png").stat().st_mtime_ns == stamp, f"rerun: {again}")


@pytest.mark.mpi
@pytest.mark.skipif(not HAVE_FFMPEG, reason="needs ffmpeg")
def test_frame_placeholder_runs_the_renderer_once_per_frame(comm, shared_tmp_path):
    out = shared_tmp_path / "per-frame"
    argv = ["ffmpeg", "-nostdin", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc=size=32x24:rate=10:duration=1",
            "-vf", r"select=eq(n\,{frame})", "-frames:v", "1", "-update", "1", "{out}/frame_{frame:04d}.png"]
    frames = [2, 3, 4, 7]
    result = run_cmd(comm, _job(out, argv, frames, chunk=3))
    problem = _frames_ok(out, frames) if comm.rank == 0 else ""
    assert_all_ranks(comm, not result.failed and result.chunks == 2 and not problem, f"{result.failed} {problem}")


@pytest.mark.mpi(min_size=2)
@pytest.mark.skipif(not HAVE_FFMPEG, reason="needs ffmpeg")
def test_chunks_failing_on_one_node_are_retried_on_another(comm, shared_tmp_path):
    # rank 0 plays a node whose copy of the input is missing: ffmpeg fails there
    out = shared_tmp_path / "retry"
    argv = _testsrc(source=str(shared_tmp_path / "missing.mp4")) if comm.rank == 0 else _testsrc()
    frames = list(range(16))
    result = run_cmd(comm, _job(out, argv, frames, chunk=2, retries=1))
    report = result.report
    attempts: dict[str, list] = {}
    for event in report.events:
        attempts.setdefault(event.key, []).append(event)
    retried_elsewhere = all(
        any(e.ok and e.rank != bad.rank for e in attempts[bad.key])
        for bad in report.events if not bad.ok)
    problem = _frames_ok(out, frames) if comm.rank == 0 else ""
    assert_all_ranks(
        comm,
        not result.failed and report.ranks[0].failures >= 1 and retried_elsewhere and not problem,
        f"failed={result.failed} rank0 failures={report.ranks[0].failures} {problem}")
    assert_all_ranks(comm, report.ranks[0].blocked == (report.ranks[0].failures >= 3), "blocklist")


@pytest.mark.mpi
@pytest.mark.skipif(not HAVE_FFMPEG, reason="needs ffmpeg")
def test_chunks_that_always_fail_are_reported(comm, shared_tmp_path):
    # the clip has frames 0..9: chunks reaching past it never produce their files
    out = shared_tmp_path / "past-end"
    result = run_cmd(comm, _job(out, _testsrc(seconds=1.0), list(range(14)), chunk=4, retries=1))
    problem = _frames_ok(out, list(range(8))) if comm.rank == 0 else ""
    beyond = sorted(p.name for p in out.glob("frame_*.png") if int(p.stem[6:]) >= 8)
    assert_all_ranks(
        comm,
        sorted(result.failed) == ["12-13", "8-11"] and "missing" in result.failed["8-11"]
        and result.frames_failed == list(range(8, 14)) and not problem and not beyond,
        f"failed={result.failed} {problem} beyond={beyond}")


@pytest.mark.mpi(min_size=2)
@pytest.mark.skipif(not HAVE_FFMPEG, reason="needs ffmpeg")
def test_collect_brings_frames_to_rank0_without_shared_storage(comm, shared_tmp_path):
    # each rank is given its own --out path, like nodes whose local disks are not shared
    base = shared_tmp_path / "collect"
    out = base / ("out" if comm.rank == 0 else f"out-rank{comm.rank}")
    frames = list(range(12))
    error = ""
    try:
        run_cmd(comm, _job(out, _testsrc(), frames, chunk=1))
    except ValueError as exc:
        error = str(exc)
    assert_all_ranks(comm, "--collect" in error and "not visible" in error, f"without --collect: {error!r}")
    result = run_cmd(comm, _job(out, _testsrc(), frames, chunk=1, collect=True))
    remote = sum(r.units for r in result.report.ranks if r.rank > 0)
    problem = ""
    if comm.rank == 0:
        problem = _frames_ok(out, frames)
        strays = sorted(p.name for p in base.iterdir() if p.name != "out")
        problem = problem or (f"other ranks wrote {strays}" if strays else "")
    assert_all_ranks(comm, not result.failed and not problem, f"{result.failed} {problem} remote={remote}")
