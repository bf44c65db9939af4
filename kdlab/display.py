"""Showing the lab's key numbers so that grading can trust them.

``report(key, value, text)`` shows ``text`` and, in a notebook, attaches a machine-readable copy
(``kdlab.course.reported``: MIME type ``RESULT_MIME``, the key in results.json, the value, and the text as shown).
``python -m kdlab grade`` compares
the three: the visible text, the attached value, and the run's results.json; a number edited by hand in a saved
notebook no longer matches and is flagged.
"""

from __future__ import annotations

from kdlab.course.reported import Reported


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


