"""Run every test: serial pytest, then the MPI tests under real mpirun at several sizes.

    python tests/harness.py [--sizes 1,2,3,4,5] [--timeout 900] [pytest args...]

Each MPI size runs `pimpi run -n N --timeout T -- -m pytest --with-mpi -m mpi`, so a rank
that raises aborts the job and a hung run is ended; given no test path, only the files that
hold `mpi` tests (collected once beforehand). The last line totals every run.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time

COUNT = re.compile(r"(\d+) (passed|failed|errors?|skipped|xfailed|xpassed|deselected)")


def _run(label: str, cmd: list[str]) -> tuple[int, dict[str, int], float]:
    print(f"\n===== {label}: {' '.join(cmd)}", flush=True)
    start = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    summary = ""
    assert proc.stdout is not None
    for line in proc.stdout:
        sys.stdout.write(line)
        if COUNT.search(line) and (" in " in line or line.startswith("=")):
            summary = line
    code = proc.wait()
    counts: dict[str, int] = {}
    for number, word in COUNT.findall(summary):
        word = "errors" if word.startswith("error") else word
        counts[word] = counts.get(word, 0) + int(number)
    return code, counts, time.monotonic() - start


def _mpi_files(py: str, pytest_args: list[str]) -> list[str]:
    """When no test path is given: `pytest_args` plus the files that hold `mpi` tests, found by
    pytest's own collection once, here. Otherwise every rank at every size imports and
    collects every test module (most of them serial) before it runs any. With paths given,
    or when that collection fails, the arguments are used as they are."""
    if any(not a.startswith("-") and os.path.exists(a.split("::")[0]) for a in pytest_args):
        return pytest_args
    try:
        found = subprocess.run([py, "-m", "pytest", "--collect-only", "-q", "-m", "mpi", "-p", "no:cacheprovider",
                                *pytest_args], capture_output=True, text=True, timeout=600)
    except subprocess.TimeoutExpired:
        return pytest_args
    files = sorted({line.split("::")[0] for line in found.stdout.splitlines() if "::" in line})
    return [*pytest_args, *files] if found.returncode == 0 and files else pytest_args


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1,2,3,4,5", help="MPI sizes, comma separated")
    parser.add_argument("--timeout", type=float, default=900, help="seconds per pytest run")
    parser.add_argument("--no-serial", action="store_true", help="skip the serial run")
    parser.add_argument("--serial-marks", default="not mpi and not long",
                        help="pytest -m expression of the serial run (`long` tests: make test-long)")
    args, pytest_args = parser.parse_known_args()
    if not sys.stdout.isatty():  # mpirun gives ranks a pty: no colour codes in CI logs
        pytest_args = ["--color=no", *pytest_args]
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    py = sys.executable
    runs: list[tuple[str, list[str]]] = []
    if not args.no_serial:
        runs.append(("serial", [py, "-m", "pytest", "-m", args.serial_marks, "--durations=30", *pytest_args]))
    mpi_args = _mpi_files(py, pytest_args) if sizes else pytest_args
    for size in sizes:
        runs.append((
            f"mpi n={size}",
            [py, "-m", "pimpi", "run", "-n", str(size), "--timeout", str(args.timeout), "--",
             "-m", "pytest", "--with-mpi", "-m", "mpi", "-q", "--durations=10", *mpi_args],
        ))
    totals: dict[str, int] = {}
    bad: list[str] = []
    for label, cmd in runs:
        code, counts, seconds = _run(label, cmd)
        for key, value in counts.items():
            totals[key] = totals.get(key, 0) + value
        ok = code in (0, 5) and not counts.get("failed") and not counts.get("errors")
        if code not in (0, 5) and not counts.get("failed") and not counts.get("errors"):
            totals["failed"] = totals.get("failed", 0) + 1  # crashed, hung or aborted run
        print(f"===== {label}: exit {code} in {seconds:.0f} s {counts}", flush=True)
        if not ok:
            bad.append(f"{label} (exit {code})")
    print()
    if bad:
        print("failed runs: " + ", ".join(bad))
    passed = totals.get("passed", 0)
    failed = totals.get("failed", 0) + totals.get("errors", 0)
    skipped = totals.get("skipped", 0)
    print(f"total: {passed} passed, {failed} failed, {skipped} skipped")
    return 1 if bad or passed == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
