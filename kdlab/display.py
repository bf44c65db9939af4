"""Showing the lab's numbers so that grading can trust them.

- ``report(key, value, text)`` shows ``text`` and, in a notebook, attaches a machine-readable copy
  (``kdlab.course.reported``: MIME type ``RESULT_MIME``, the key in results.json, the value, and the text as shown).
- ``mark_table(frame, recipe)`` names the recipe that built a results table from results.json (the students table,
  the accuracy table, the latency tables); ``install()`` (called by ``lab.setup``) makes every such DataFrame's
  notebook output carry ``TABLE_MIME`` with that name beside its usual text and HTML. ``Report`` does the same for
  the run report.

``python -m kdlab grade`` compares what is shown with results.json (``kdlab_grader.outputs``); a number edited by
hand in a saved notebook no longer matches and is flagged.
"""

from __future__ import annotations

from kdlab.course.reported import TABLE_ATTR, TABLE_MIME, Reported


def _shell():
    try:
        from IPython import get_ipython
    except ImportError:
        return None
    shell = get_ipython()
    return shell if shell is not None and type(shell).__name__ != "TerminalInteractiveShell" else None


def report(key: str, value: float, text: str) -> None:
    """Show one key result (``key``: its dotted path in results.json, e.g. ``teacher.accuracy``)."""
    item = Reported(key, value, text)
    if _shell() is not None:
        from IPython.display import display

        display(item)
    else:
        print(text)


def mark_table(frame, recipe: str):
    """``frame`` with the name of the recipe that rebuilds it from results.json (kept through ``round`` and
    column selection); returns it."""
    frame.attrs[TABLE_ATTR] = recipe
    return frame


def _table_bundle(frame, include=None, exclude=None):
    recipe = getattr(frame, "attrs", {}).get(TABLE_ATTR)
    return {TABLE_MIME: {"recipe": recipe}} if recipe else None


def install() -> None:
    """In a notebook: results tables (``mark_table``) show their provenance with their text and HTML."""
    shell = _shell()
    if shell is None:
        return
    import pandas as pd

    shell.display_formatter.mimebundle_formatter.for_type(pd.DataFrame, _table_bundle)


class Report:
    """The run report as Markdown, carrying its provenance (recipe ``report``: rebuilt from results.json)."""

    def __init__(self, markdown: str):
        self.markdown = markdown

    def _repr_mimebundle_(self, include=None, exclude=None):
        return {"text/markdown": self.markdown, "text/plain": self.markdown, TABLE_MIME: {"recipe": "report"}}
