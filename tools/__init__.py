"""Project tooling, not part of the installed package: run from the repository root.

    .venv/bin/python -m tools.bench_results   # regenerate docs/results/ (bench_summary writes SUMMARY.md)
    make demo                                 # runs tools/demo.py under pimpi run
"""
