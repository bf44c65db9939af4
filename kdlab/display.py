"""Showing the lab's key numbers so that grading can trust them.

``report(key, value, text)`` shows ``text`` and, in a notebook, attaches a machine-readable copy (MIME type
``RESULT_MIME``: the key in results.json, the value, and the text as shown). ``python -m kdlab grade`` compares
the three: the visible text, the attached value, and the run's results.json; a number edited by hand in a saved
notebook no longer matches and is flagged.
"""

from __future__ import annotations

import math

RESULT_MIME = "application/vnd.kdlab.result+json"


class Reported:
    """A reported number: shown as ``text``, carried as ``{key, value, text}``."""

    def __init__(self, key: str, value: float, text: str):
        self.key, self.value, self.text = key, float(value), text

    def _repr_mimebundle_(self, include=None, exclude=None):
        return {"text/plain": self.text, RESULT_MIME: {"key": self.key, "value": self.value, "text": self.text}}

    def __repr__(self) -> str:
        return self.text


def report(key: str, value: float, text: str) -> None:
    """Show one key result (``key``: its dotted path in results.json, e.g. ``teacher.accuracy``)."""
    item = Reported(key, value, text)
    try:
        from IPython import get_ipython

        in_kernel = get_ipython() is not None and type(get_ipython()).__name__ != "TerminalInteractiveShell"
    except ImportError:
        in_kernel = False
    if in_kernel:
        from IPython.display import display

        display(item)
    else:
        print(text)


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
