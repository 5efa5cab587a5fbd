"""Resume after `kill -9` of one rank: finished frames are kept (not rendered again), the rest
are rendered, and the result is byte-identical to an uninterrupted render."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

from pimpi.journal import JOURNAL_NAME, Journal
from pimpi.render.job import frame_name, job_signature
from pimpi.render.png import encode_png
from pimpi.render.scenes import render_frame
from tests.helpers import PIMPI, processes

SCENE, N, W, H, ITERS = "mandelbrot", 30, 160, 120, 512


def _job(out: Path, *extra: str) -> list[str]:
    return [*PIMPI, "run", "-n", "3", "--timeout", "240", "--",
            "render", "scene", SCENE, "--frames", str(N), "--width", str(W), "--height", str(H),
            "--max-iter", str(ITERS), "--out", str(out), "-q", *extra]


def _rank_pids(marker: str) -> list[int]:
    """Processes of the job: command lines that run pimpi under mpi4py with our folder."""
    return [pid for pid, words in processes(
        lambda words: "mpi4py" in words and marker in words and "mpirun" not in Path(words[0]).name)]


def _records(out: Path) -> int:
    try:
        return max(0, len((out / JOURNAL_NAME).read_bytes().splitlines()) - 1)
    except OSError:
        return 0


def test_kill_a_rank_then_resume(tmp_path: Path) -> None:
    out = tmp_path / "frames"
    job = subprocess.Popen(_job(out), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                           start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while _records(out) < 3 and job.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        pids = _rank_pids(str(out))
        assert job.poll() is None and pids, "the job ended before it could be killed"
        os.kill(max(pids), signal.SIGKILL)  # any rank: the youngest process
        job.wait(timeout=120)
    finally:
        if job.poll() is None:
            os.killpg(job.pid, signal.SIGKILL)
            job.wait(timeout=30)
    assert job.returncode != 0, "a job with a killed rank must not report success"

    journal = Journal.open(out, job_signature(SCENE, N, W, H, ITERS))
    kept = [f for f in range(N) if journal.done(f"f{f}")]
    assert 3 <= len(kept) < N, f"expected a partial render, kept {kept}"
    mtimes = {f: (out / frame_name(f, N)).stat().st_mtime_ns for f in kept}

    stats = tmp_path / "stats.json"
    rerun = subprocess.run(_job(out, "--stats", str(stats)), capture_output=True, text=True, timeout=240)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    data = json.loads(stats.read_text())
    assert data["skipped"] == len(kept) and data["rendered"] == N - len(kept)
    for f in kept:
        assert (out / frame_name(f, N)).stat().st_mtime_ns == mtimes[f], f"frame {f} was rendered again"
    for f in range(N):
        want = encode_png(render_frame(SCENE, f, N, W, H, max_iter=ITERS))
        assert (out / frame_name(f, N)).read_bytes() == want, f"frame {f} differs"
    assert not list(out.glob(".*.tmp*")), "temp files must not survive"
