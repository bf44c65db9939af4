"""The machine-readable provenance of what the notebooks show from a run, which ``python -m kdlab grade`` checks.

- A reported number: ``kdlab.display.report(key, value, text)`` shows ``text`` with a copy in MIME type
  ``RESULT_MIME``: the key in results.json, the value, and the text as shown. The grader compares the three.
- A results table or the run report: its output carries ``TABLE_MIME`` naming the recipe that built it from
  results.json (``students``, ``accuracy``, ``benchmark``, ``benchmark_real_lengths``, ``report``); the grader
  rebuilds it with the same recipe and compares every number shown.

A number edited by hand in a saved notebook no longer matches and is flagged.
"""

from __future__ import annotations

import math

RESULT_MIME = "application/vnd.kdlab.result+json"
TABLE_MIME = "application/vnd.kdlab.table+json"
TABLE_ATTR = "kdlab_table"  # DataFrame.attrs key naming the recipe of a results table
TABLE_RECIPES = ("students", "accuracy", "benchmark", "benchmark_real_lengths", "report")


class Reported:
    """A reported number: shown as ``text``, carried as ``{key, value, text}``."""

    def __init__(self, key: str, value: float, text: str):
        self.key, self.value, self.text = key, float(value), text

    def _repr_mimebundle_(self, include=None, exclude=None):
        return {"text/plain": self.text, RESULT_MIME: {"key": self.key, "value": self.value, "text": self.text}}

    def __repr__(self) -> str:
        return self.text


def lookup(results: dict, key: str):
    """The value at a dotted ``key`` of results.json (``students.minilm.accuracy``); None when absent."""
    node = results
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def same_number(a, b, rel: float = 1e-9) -> bool:
    try:
        a, b = float(a), float(b)
    except (TypeError, ValueError):
        return False
    return math.isclose(a, b, rel_tol=rel, abs_tol=1e-12)
