"""A teacher's view of graded records: collapsed failures, per-student summary, JSON, CSV, HTML/Markdown."""

from __future__ import annotations

import csv
import html
import io
import json
import re
from dataclasses import asdict
from typing import Any

from .check import Record, format_record

__all__ = ["collapse", "summary", "summary_json", "summary_csv", "summary_report"]

_NUMBERS = re.compile(r"\[[^\]]*\]|-?\d+(\.\d+)?(e[-+]?\d+)?j?")
_DETAILS = re.compile(r" \(# items\)| \(first difference at index #\)| \(and # more ranks\)")


def _size(item: tuple[int, Record]) -> tuple:
    """Smallest case first: fewest ranks, fewest elements, then the order the cases ran in."""
    return (item[1].ranks, item[1].length, item[0])


def collapse(records: list[Record]) -> list[tuple[Record, int]]:
    """One (smallest failing case, how many) per file, function, status and cause, in first-seen order.

    The cause is the message with its numbers and arrays taken out, so 'rank 2 got [1 2]
    expected [1 3]' at 7 elements and at 100000 elements are one cause.
    """
    groups: dict[tuple, list[tuple[int, Record]]] = {}
    for position, rec in enumerate(records):
        if rec.status == "PASS":
            continue
        key = (rec.file, rec.function, rec.status, _DETAILS.sub("", _NUMBERS.sub("#", rec.message)))
        groups.setdefault(key, []).append((position, rec))
    return [(min(found, key=_size)[1], len(found)) for found in groups.values()]


def collapsed_lines(records: list[Record], with_file: bool) -> list[str]:
    """The failure lines to print: one per cause, with the count of cases like it."""
    out = []
    for rec, count in collapse(records):
        more = f" (and {count - 1} more cases like it)" if count > 1 else ""
        out.append(format_record(rec, with_file=with_file) + more)
    return out


def student_names(files: list[str], names: dict[str, str] | None = None) -> dict[str, str]:
    """A name per file: from `names` (file path or file name -> name, the --names map), else the
    folder when every file has its own (class/alice/x.py -> alice), else the file's stem."""
    import os

    names = names or {}
    folders = [os.path.basename(os.path.dirname(os.path.abspath(f))) for f in files]
    by_folder = len(set(folders)) == len(set(files)) > 1
    out = {}
    for path, folder in zip(files, folders):
        given = names.get(path, names.get(os.path.basename(path)))
        out[path] = given or (folder if by_folder else os.path.splitext(os.path.basename(path))[0])
    return out


def summary(records: list[Record], files: list[str], names: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """Per student (file): name, passed, total, score in %, counts per status, integrity notes,
    first failure (smallest case of the first cause)."""
    out = []
    who = student_names(list(dict.fromkeys(files)), names)
    for path in dict.fromkeys(files):
        mine = [r for r in records if r.file == path]
        passed = sum(r.status == "PASS" for r in mine)
        causes = collapse(mine)
        first = format_record(causes[0][0]) if causes else ""
        counts: dict[str, int] = {}
        for rec in mine:
            counts[rec.status] = counts.get(rec.status, 0) + 1
        integrity = "; ".join(dict.fromkeys(note for rec in mine for note in rec.integrity.split("; ") if note))
        out.append({"student": who[path], "file": path, "exercise": mine[0].exercise if mine else "",
                    "passed": passed, "total": len(mine),
                    "score": round(100.0 * passed / len(mine), 1) if mine else 0.0,
                    "statuses": counts, "integrity": integrity, "first_failure": first})
    return out


def summary_json(records: list[Record], files: list[str], names: dict[str, str] | None = None) -> str:
    """The --json file: {"students": [summary...], "records": [one per case]}."""
    return json.dumps({"students": summary(records, files, names), "records": [asdict(r) for r in records]},
                      indent=1) + "\n"


def summary_csv(records: list[Record], files: list[str], names: dict[str, str] | None = None) -> str:
    """The --csv file: one row per student, with a count per status and what the sandbox saw."""
    from .check import STATUSES

    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["student", "file", "exercise", "passed", "total", "score", *STATUSES, "integrity",
                     "first_failure"])
    for item in summary(records, files, names):
        writer.writerow([item["student"], item["file"], item["exercise"], item["passed"], item["total"],
                         item["score"], *(item["statuses"].get(s, 0) for s in STATUSES), item["integrity"],
                         item["first_failure"]])
    return buf.getvalue()


def summary_report(records: list[Record], files: list[str], markdown: bool) -> str:
    """A page to hand back: a table of students, then each student's causes of failure."""
    rows = summary(records, files)
    if markdown:
        lines = ["# Grades", "", "| file | exercise | passed | total | score |", "|---|---|---|---|---|"]
        lines += [f"| {r['file']} | {r['exercise']} | {r['passed']} | {r['total']} | {r['score']} |" for r in rows]
        for r in rows:
            lines += ["", f"## {r['file']}", ""]
            causes = collapsed_lines([rec for rec in records if rec.file == r["file"]], False)
            lines += [f"- `{line}`" for line in causes] or ["All cases passed."]
        return "\n".join(lines) + "\n"
    esc = html.escape
    body = ["<!doctype html><meta charset='utf-8'><title>Grades</title><h1>Grades</h1>",
            "<table border='1'><tr><th>file</th><th>exercise</th><th>passed</th><th>total</th><th>score</th></tr>"]
    body += [f"<tr><td>{esc(r['file'])}</td><td>{esc(r['exercise'])}</td><td>{r['passed']}</td>"
             f"<td>{r['total']}</td><td>{r['score']}</td></tr>" for r in rows]
    body.append("</table>")
    for r in rows:
        causes = collapsed_lines([rec for rec in records if rec.file == r["file"]], False)
        items = "".join(f"<li><code>{esc(line)}</code></li>" for line in causes) or "<li>All cases passed.</li>"
        body.append(f"<h2>{esc(r['file'])}</h2><ul>{items}</ul>")
    return "\n".join(body) + "\n"
