"""Rebuilding a results table from results.json with the function that first built it, to compare it with what a
saved notebook shows (``kdlab_grader.outputs``). One recipe per ``TABLE_MIME`` name in
``kdlab.course.reported.TABLE_RECIPES``."""

from __future__ import annotations

from kdlab import report, tables
from kdlab.course.reported import TABLE_RECIPES
from kdlab_grader import outputs


def rebuilt(recipe: str, results: dict):
    """The table (a DataFrame) or the report (Markdown text) that ``recipe`` makes from ``results``."""
    if recipe == "students":
        return tables.students_table(results)
    if recipe == "accuracy":
        return report.accuracy_table(results)
    if recipe == "benchmark":
        return tables.benchmark_table(results.get("benchmark") or [])
    if recipe == "benchmark_real_lengths":
        return tables.benchmark_table(results.get("benchmark_real_lengths") or [], real_lengths=True)
    if recipe == "report":
        return report.render_markdown(results)
    raise KeyError(recipe)


def problems(recipe, saved: dict, results: dict) -> list[str]:
    """What a saved table output shows that the table rebuilt from ``results`` does not (empty when nothing)."""
    if recipe not in TABLE_RECIPES:
        return [f"a table names an unknown recipe {recipe!r}"]
    try:
        expected = rebuilt(recipe, results)
    except (KeyError, TypeError, ValueError, ZeroDivisionError, AttributeError) as exc:
        return [f"the {recipe} table cannot be rebuilt from results.json ({type(exc).__name__}: {exc})"]
    if recipe == "report":
        return outputs.markdown_problems(saved.get("markdown") or saved.get("text", ""), expected)
    return outputs.table_problems(saved.get("html", ""), saved.get("text", ""), expected)
