"""What grading writes: ``gradebook.csv`` (one row per student, the first row the points possible, a
``containment`` column naming how the exercises ran), ``gradebook_long.csv`` (one row per item),
``feedback/<file>.md`` (``feedback_names``), ``reflections.md`` (every answer, grouped by question) and
``containment.txt`` (what the child's containment gave).

Every CSV cell holding text is neutralised as OWASP recommends against CSV injection (``safe_cell``): text that
starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return gets a leading ``'``, so a spreadsheet shows it
as text and never evaluates it (a student's folder named ``=HYPERLINK(...)``). Numbers stay numbers.
"""

from __future__ import annotations

import csv
import hashlib
import re
import unicodedata
from pathlib import Path

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")  # OWASP "CSV Injection"


def safe_cell(value):
    """``value`` as a CSV cell a spreadsheet cannot evaluate: text starting with one of ``FORMULA_STARTS`` gets a
    ``'`` prefix; numbers (int, float, bool) are left as they are."""
    if isinstance(value, (int, float)) or value is None:
        return value
    text = str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def _safe_row(row: list) -> list:
    return [safe_cell(v) for v in row]


def feedback_names(students: list[str]) -> dict[str, str]:
    """``{student: file stem}`` for the feedback files: letters, digits, ``.``, ``_`` and ``-`` only (NFKC, other
    characters become ``_``), never starting with a dot, at most 80 characters, and distinct even after
    case-folding: stems that would collide get a short hash of the full name (``twin-3f2a9c1d``)."""
    def stem(name: str) -> str:
        text = re.sub(r"[^A-Za-z0-9._-]+", "_", unicodedata.normalize("NFKC", name)).strip("._") or "student"
        return text[:80]

    stems = {s: stem(s) for s in students}
    counts: dict[str, int] = {}
    for value in stems.values():
        counts[value.casefold()] = counts.get(value.casefold(), 0) + 1
    names = {s: v if counts[v.casefold()] == 1 else f"{v}-{hashlib.sha256(s.encode()).hexdigest()[:8]}"
             for s, v in stems.items()}
    taken: set[str] = set()
    for s, v in names.items():  # a hashed stem equal to another student's own: numbered, never overwritten
        k, candidate = 1, v
        while candidate.casefold() in taken:
            k, candidate = k + 1, f"{v}-{k + 1}"
        names[s] = candidate
        taken.add(candidate.casefold())
    return names


def write_outputs(grades: list, out_dir: Path, protections: str) -> None:
    """Everything above, into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "feedback").mkdir(exist_ok=True)
    names = feedback_names([g.student for g in grades])
    for grade in grades:
        (out_dir / "feedback" / f"{names[grade.student]}.md").write_text(feedback(grade, protections),
                                                                          encoding="utf-8")
    write_gradebooks(grades, out_dir)
    (out_dir / "reflections.md").write_text(reflections_file(grades), encoding="utf-8")
    (out_dir / "containment.txt").write_text(protections + "\n", encoding="utf-8")


def write_gradebooks(grades: list, out_dir: Path) -> None:
    """``gradebook.csv`` (a row per student, the first one the points possible) and ``gradebook_long.csv``."""
    columns = list(dict.fromkeys(f"{i.notebook}:{i.item}" for g in grades for i in g.items if i.max_points > 0))
    possible = {}
    for g in grades:
        for i in g.items:
            if i.max_points > 0:
                possible[f"{i.notebook}:{i.item}"] = i.max_points
    with open(out_dir / "gradebook.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(_safe_row(["student", "status", "total", "max", "percent", *columns, "penalties", "containment",
                         "seconds", "flags"]))
        writer.writerow(["points-possible", "", sum(possible.values()), sum(possible.values()), 100,
                         *[possible[c] for c in columns], "", "", "", ""])
        for g in grades:
            by = {f"{i.notebook}:{i.item}": i.points for i in g.items if i.max_points > 0}
            penalty = sum(i.points for i in g.items if i.max_points == 0)
            maximum = sum(possible.values())
            writer.writerow(_safe_row([g.student, g.status, round(g.total, 2), maximum,
                             round(100 * g.total / maximum, 1) if maximum else 0,
                             *[by.get(c, 0) for c in columns], penalty, g.containment, round(g.seconds, 1),
                             " | ".join(g.flags)]))
    with open(out_dir / "gradebook_long.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["student", "notebook", "item", "points", "max_points", "passed", "message"])
        for g in grades:
            for i in g.items:
                writer.writerow(_safe_row([i.student, i.notebook, i.item, i.points, i.max_points, i.passed,
                                           i.message]))


def feedback(grade, protections: str = "") -> str:
    """A student's feedback file: every item with its points and message, then the flags."""
    lines = [f"# Feedback — {grade.student}", "",
             f"Total: **{grade.total:g} / {grade.max_points:g}** (status: {grade.status})", ""]
    if protections:
        lines += [f"Exercises re-run contained ({protections}).", ""]
    current = None
    for i in grade.items:
        if i.notebook != current:
            current = i.notebook
            lines += ["", f"## {current}", ""]
        mark = "✓" if i.passed else ("−" if i.max_points == 0 else "✗")
        lines.append(f"- {mark} {i.item}: {i.points:g}/{i.max_points:g} — {i.message}")
    if grade.flags:
        lines += ["", "## To look at", ""] + [f"- {f}" for f in grade.flags]
    return "\n".join(lines) + "\n"


def reflections_file(grades: list) -> str:
    """Every reflection answer, grouped by question."""
    questions = sorted({q for g in grades for q in g.answers})
    lines = ["# Reflection answers", "", "Grouped by question; an empty answer says so.", ""]
    for q in questions:
        lines += [f"## {q}", ""]
        for g in grades:
            if q in g.answers:
                answer = g.answers[q] or "_(no answer)_"
                lines += [f"### {g.student}", "", answer, ""]
    return "\n".join(lines)
