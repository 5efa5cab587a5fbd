"""`make demo`: a Mandelbrot zoom on every rank (video + Gantt chart), then the same on one rank.

    pimpi run -n 2 -- -m tools.demo --out demo

Phase 1 renders with dynamic scheduling on all ranks and writes demo/frames/,
demo/zoom.mp4 and demo/gantt.png. Phase 2 renders the same frames on rank 0 alone
(COMM_SELF, nothing written) so the speed-up is measured on the same machine, same run.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

__all__ = ["main"]


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="tools.demo", description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="demo", help="folder for frames/, zoom.mp4, gantt.png")
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--width", type=int, default=384)
    parser.add_argument("--height", type=int, default=216)
    parser.add_argument("--fps", type=float, default=24.0)
    parser.add_argument("--no-baseline", action="store_true", help="skip the one-rank run")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the demo on MPI.COMM_WORLD; rank 0 prints and writes."""
    from mpi4py import MPI

    from pimpi.render.job import frame_name, render_frames
    from pimpi.render.progress import Progress
    from pimpi.render.report import summary_lines, write_gantt, write_stats
    from pimpi.mpi import quiet_barrier

    args = _parse(argv)
    comm = MPI.COMM_WORLD
    out = Path(args.out)
    frames_dir = out / "frames"
    size = comm.size
    progress = Progress(args.frames, label=f"mandelbrot zoom on {size} ranks") if comm.rank == 0 else None
    report = render_frames(comm, "mandelbrot", args.frames, args.width, args.height,
                           schedule="dynamic", out=frames_dir, force=True, progress=progress)
    if progress is not None:
        progress.close()
    if comm.rank == 0:
        from pimpi.render.ffmpeg import frames_to_video

        print("\n".join(summary_lines(report)))
        write_stats(out / "stats.json", report)
        write_gantt(out / "gantt.png", report)
        frames_to_video([frames_dir / frame_name(f, args.frames) for f in range(args.frames)],
                        out / "zoom.mp4", fps=args.fps)
        print(f"wrote {out / 'zoom.mp4'}, {out / 'gantt.png'}, {out / 'stats.json'}")
    if args.no_baseline or size == 1:
        return 0
    single = None
    if comm.rank == 0:
        print(f"baseline: the same {args.frames} frames on 1 rank ...", flush=True)
        single = render_frames(MPI.COMM_SELF, "mandelbrot", args.frames, args.width, args.height,
                               schedule="dynamic", out=None)
    quiet_barrier(comm, what="the one-rank baseline")  # the other ranks wait without spinning
    if comm.rank == 0:
        speedup = report.frames_per_second / single.frames_per_second if single.frames_per_second else 0.0
        print(f"{'ranks':>5} {'frames/s':>9} {'Mpixel/s':>9} {'imbalance':>9}")
        print(f"{1:>5} {single.frames_per_second:>9.2f} {single.mpixels_per_second:>9.3f} {1.0:>9.3f}")
        print(f"{size:>5} {report.frames_per_second:>9.2f} {report.mpixels_per_second:>9.3f} "
              f"{report.imbalance:>9.3f}")
        print(f"speed-up on {size} ranks: {speedup:.2f}x (ideal {size}x; numba "
              f"{'on' if report.numba else 'off'})")
        rep = report.schedule_report
        share = sum(r.cpu for r in rep.ranks) / max(rep.wall * size, 1e-9)
        if share < 0.8:
            print(f"note: the ranks got only {100 * share:.0f}% of the CPU time they could use "
                  "(other programs were running, or fewer cores than ranks): the speed-up is understated")
    return 0


if __name__ == "__main__":
    sys.exit(main())
