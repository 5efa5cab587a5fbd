"""Regenerate docs/results/: this machine's benchmark results (JSON + plot) and a summary.

    .venv/bin/python -m tools.bench_results                 # everything, about 10 minutes
    .venv/bin/python -m tools.bench_results --quick         # tiny sizes: checks the pipeline
    .venv/bin/python -m tools.bench_results --no-vcluster   # skip the virtual-cluster check

Each step is one ordinary `pimpi` command (printed before it runs), so any result can be
reproduced alone. The virtual-cluster step needs root; it starts its own cluster and
always takes it down again.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from tools import bench_summary as summary_mod

__all__ = ["main", "plan"]

VCLUSTER = "bench"  # vcluster names are at most 6 characters


def _settings(quick: bool) -> dict[str, Any]:
    if quick:
        return {"pp_sizes": "1,1K,64K,256K", "coll_sizes": "4,1K,64K,1M", "coll_ops": "allreduce,bcast",
                "repeats": "1", "frames": "4", "many_frames": "8", "width": "32", "height": "24",
                "vc_sizes": "64K,1M"}
    return {"pp_sizes": "1:4M", "coll_sizes": "4:4M", "coll_ops": "allreduce,reduce,bcast,allgather",
            "repeats": "3", "frames": "16", "many_frames": "64", "width": "640", "height": "480",
            "vc_sizes": "64K:4M"}


def plan(out: Path, quick: bool = False) -> list[tuple[str, list[str]]]:
    """(result file, pimpi argv) for every local step, in order."""
    s = _settings(quick)
    render = ["--workload", "mandelbrot", "--frames", s["frames"], "--width", s["width"], "--height", s["height"]]
    steps = [
        ("pingpong.json", ["run", "-n", "2", "--timeout", "600", "--", "bench", "pingpong",
                           "--sizes", s["pp_sizes"], "--repeats", s["repeats"]]),
    ]
    for n in (2, 4):
        steps.append((f"collectives-{n}.json", [
            "run", "-n", str(n), "--timeout", "1200", "--", "bench", "collectives", "--ops", s["coll_ops"],
            "--sizes", s["coll_sizes"], "--repeats", s["repeats"]]))
    steps.append(("scaling.json", ["bench", "scaling", *render, "--ranks", "1,2,4", "--repeats", s["repeats"],
                                   "--plot", str(out / "scaling.png")]))
    many = ["--workload", "mandelbrot", "--frames", s["many_frames"], "--width", s["width"], "--height", s["height"]]
    for profile in ("pi3", "pi4", "pi5"):
        steps.append((f"predict-{profile}.json", ["bench", "predict", "--profile", profile,
                                                  "--nodes", "4,8,16", *many]))
    # The honesty check on this machine: 2 ranks (4 would share 2 cores), 64 KiB and up
    # (below that pimpi's per-message Python overhead, not the network, decides).
    steps.append(("predict-local.json", [
        "bench", "predict", "--profile", str(out / "pingpong.json"), "--nodes", "1,2,4", "--cores-per-node", "1",
        "--network", "shared", "--ops", "allreduce,bcast", "--sizes", s["vc_sizes"], *render]))
    steps.append(("compare-local.json", ["bench", "compare", str(out / "predict-local.json"),
                                         str(out / "collectives-2.json"), str(out / "scaling.json")]))
    return steps


def _pimpi(args: list[str], json_path: Path | None = None, via: list[str] | None = None) -> None:
    """Run one pimpi command (optionally inside a vcluster node); stop on failure."""
    cmd = [*(via or []), sys.executable, "-m", "pimpi", *args]
    if json_path is not None:
        cmd += ["--json", str(json_path)]
    print("+ pimpi " + " ".join(args + (["--json", str(json_path)] if json_path else [])), flush=True)
    done = subprocess.run(cmd, timeout=3600, check=False)
    if done.returncode != 0:
        raise SystemExit(f"results: step failed (exit {done.returncode}): {' '.join(cmd)}")


def _vcluster_steps(out: Path, quick: bool) -> bool:
    """The honesty check on a 4-node virtual cluster (shaped to pi4 when the kernel can).

    False (and a printed reason) when no virtual cluster can be started here.
    """
    s = _settings(quick)
    pimpi = [sys.executable, "-m", "pimpi"]
    for stale in out.glob("vcluster-*.json"):
        stale.unlink()
    profile = "pi4"
    up = subprocess.run([*pimpi, "vcluster", "up", "--nodes", "4", "--profile", "pi4", "--name", VCLUSTER],
                        timeout=300, check=False, capture_output=True, text=True)
    if up.returncode != 0:
        print(f"results: vcluster with pi4 shaping failed ({up.stderr.strip().splitlines()[-1:]});"
              " using the unshaped 'lan' profile", flush=True)
        subprocess.run([*pimpi, "vcluster", "down", "--name", VCLUSTER], timeout=120, check=False)
        profile = "lan"
        up = subprocess.run([*pimpi, "vcluster", "up", "--nodes", "4", "--profile", "lan", "--name", VCLUSTER],
                            timeout=300, check=False, capture_output=True, text=True)
        if up.returncode != 0:
            print(f"results: no virtual cluster: {up.stderr.strip().splitlines()[-1:]}", flush=True)
            return False
    try:
        hostfile = out / "vcluster.hosts"
        text = subprocess.run([*pimpi, "vcluster", "hostfile", "--name", VCLUSTER], timeout=60, check=True,
                              capture_output=True, text=True).stdout
        hostfile.write_text(text)
        # Every virtual node sees all of this machine's cores, so Open MPI would bind each
        # node's first rank to core 0 (all of them on one core): no binding here.
        via = [*pimpi, "vcluster", "exec", "--name", VCLUSTER, f"{VCLUSTER}1", "--",
               "env", "PRTE_MCA_hwloc_default_binding_policy=none"]
        run = lambda n: ["run", "-n", str(n), "--hostfile", str(hostfile), "--timeout", "1200", "--"]  # noqa: E731
        render = ["--workload", "mandelbrot", "--frames", s["frames"], "--width", s["width"], "--height", s["height"]]
        cores = str(len(os.sched_getaffinity(0)))
        _pimpi([*run(2), "bench", "pingpong", "--sizes", s["pp_sizes"], "--repeats", s["repeats"]],
               out / "vcluster-pingpong.json", via)
        _pimpi([*run(4), "bench", "collectives", "--ops", "allreduce,bcast", "--sizes", s["vc_sizes"],
                "--repeats", s["repeats"]], out / "vcluster-collectives.json", via)
        _pimpi(["bench", "scaling", *render, "--ranks", "1,2,4", "--repeats", s["repeats"], "--hostfile",
                str(hostfile), "--slots", cores], out / "vcluster-scaling.json", via)
        network = "shared" if profile == "lan" else "switched"
        measured = out / "vcluster-pingpong.json"
        # Predicted from the measured ping-pong, and (when shaped) from the profile's own
        # figures; --local-speed 1: the virtual nodes' cores are this machine's, as pi4's 1.0.
        for name, source, extra in (("vcluster-predict.json", str(measured), []),
                                    ("vcluster-predict-profile.json", profile, ["--local-speed", "1"])):
            if source == "lan":
                continue
            _pimpi(["bench", "predict", "--profile", source, "--nodes", "1,2,4", "--cores-per-node", "1",
                    "--network", network, "--ops", "allreduce,bcast", "--sizes", s["vc_sizes"], *render, *extra],
                   out / name)
            _pimpi(["bench", "compare", str(out / name), str(out / "vcluster-collectives.json"),
                    str(out / "vcluster-scaling.json")], out / name.replace("predict", "compare"))
    finally:
        subprocess.run([*pimpi, "vcluster", "down", "--name", VCLUSTER], timeout=120, check=False)
        (out / "vcluster.hosts").unlink(missing_ok=True)
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(Path(__file__).resolve().parents[2] / "docs" / "results"))
    parser.add_argument("--quick", action="store_true", help="tiny sizes (checks that every step works)")
    parser.add_argument("--no-vcluster", action="store_true", help="skip the virtual-cluster honesty check")
    args = parser.parse_args(argv)
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    for name, step in plan(out, args.quick):
        _pimpi(step, out / name)
    want_vcluster = not args.no_vcluster and os.geteuid() == 0 and shutil.which("ip")
    if not (want_vcluster and _vcluster_steps(out, args.quick)):
        print("results: virtual-cluster check skipped (needs root and iproute2, or --no-vcluster given)")
        for stale in out.glob("vcluster-*.json"):  # they would not match the results beside them
            stale.unlink()
    path = summary_mod.write_summary(out)
    print(f"results: summary written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
