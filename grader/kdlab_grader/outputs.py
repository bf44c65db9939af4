"""Reading an executed notebook's outputs: whether it ran top to bottom, and whether every number it shows from the
run is the number the run computed.

Two kinds of output carry the run's numbers, and both are checked against the submitted ``results.json``:

- a reported number (``kdlab.display.report``, MIME ``RESULT_MIME``): its text, its attached value and results.json
  must agree;
- a results table or the run report (MIME ``TABLE_MIME``: the students table, the accuracy table, the latency tables,
  ``report.md``): the grader rebuilds it from results.json with the same kdlab function (``TABLE_RECIPES``) and every
  number shown — in the HTML and in the plain text — must be one of the rebuilt table's, in the same row. A row the
  rebuilt table lacks, a number it does not hold, or a table cell whose provenance was removed, is an edit.
"""

from __future__ import annotations

import html.parser
import math
import re

from kdlab.course.assignments import cell_source
from kdlab.course.reported import RESULT_MIME, TABLE_MIME, lookup, same_number

NUMBER = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?(?:e[-+]?\d+)?(?![\w])")
# Calls whose output is a results table: a code cell holding one must show the table's provenance (TABLE_MIME).
TABLE_PRODUCERS = ("lab.train_baselines(", "lab.students_table(", "lab.compare(", "lab.benchmark(",
                   "lab.benchmark_real_lengths(", "lab.write_report(",  # the notebooks' façade (kdlab.notebook)
                   "tables.students_table(", "tables.compare_models(", "tables.benchmark_table(", "show_report(")


def execution_problems(nb) -> list[str]:
    """Cells never run, execution out of order, error outputs (empty list when clean)."""
    problems = []
    code = [(i, c) for i, c in enumerate(nb["cells"]) if c.get("cell_type") == "code" and cell_source(c).strip()]
    missing = [i for i, c in code if c.get("execution_count") is None]
    if missing:
        problems.append(f"{len(missing)} code cell(s) never ran (first: cell {missing[0]})")
    previous = None
    for i, c in code:
        count = c.get("execution_count")
        if count is None:
            continue
        if previous is not None and count <= previous[1]:
            problems.append(f"executed out of order: cell {i} (run #{count}) comes after cell {previous[0]} "
                            f"(run #{previous[1]}); restart the kernel and run all cells top to bottom")
            break
        previous = (i, count)
    for i, c in enumerate(nb["cells"]):
        for out in c.get("outputs", []) or []:
            if out.get("output_type") == "error":
                problems.append(f"cell {i} ended in an error: {out.get('ename')}: {str(out.get('evalue'))[:160]}")
    return problems


def _joined(value) -> str:
    return "".join(value) if isinstance(value, list) else str(value or "")


def saved_payloads(cell, mime: str) -> list[dict]:
    """``{"payload", "text", "html", "markdown"}`` of each output of ``cell`` carrying ``mime``."""
    found = []
    for out in cell.get("outputs", []) or []:
        data = out.get("data") or {}
        if mime in data:
            found.append({"payload": data[mime], "text": _joined(data.get("text/plain")),
                          "html": _joined(data.get("text/html")), "markdown": _joined(data.get("text/markdown"))})
    return found


def reported_problems(nb, results: dict | None) -> list[tuple[str, str]]:
    """``(key, problem)`` for every reported number whose text, value and results.json disagree."""
    found = []
    for index, cell in enumerate(nb["cells"]):
        for item in saved_payloads(cell, RESULT_MIME):
            payload, shown = item["payload"] if isinstance(item["payload"], dict) else {}, item["text"]
            key = str(payload.get("key", ""))
            if shown.strip() != str(payload.get("text", "")).strip():
                found.append((key, f"cell {index} shows {shown.strip()[:80]!r} but the run reported "
                                   f"{payload.get('text')!r}"))
            elif results is not None:
                stored = lookup(results, key)
                if stored is not None and not same_number(stored, payload.get("value")):
                    found.append((key, f"cell {index}: {key} = {payload.get('value')} in the notebook but {stored} "
                                       "in results.json"))
    return found


# --- tables --------------------------------------------------------------------------------------------------------
class _Cells(html.parser.HTMLParser):
    """The rows of the first HTML table: a list of rows, each a list of cell texts (th and td)."""

    def __init__(self):
        super().__init__()
        self.rows, self._row, self._cell, self._depth = [], None, None, 0

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self._depth += 1
        elif tag == "tr" and self._depth == 1:
            self._row = []
        elif tag in ("td", "th") and self._row is not None:
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None and self._row is not None:
            self._row.append("".join(self._cell).strip())
            self._cell = None
        elif tag == "tr" and self._row is not None:
            self.rows.append(self._row)
            self._row = None
        elif tag == "table":
            self._depth -= 1

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def html_rows(text: str) -> list[list[str]]:
    parser = _Cells()
    parser.feed(text)
    return parser.rows


def _as_number(text: str) -> float | None:
    try:
        value = float(text.replace(",", ""))
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _shown_as(token: str, value) -> bool:
    """Whether ``token`` (a number as displayed) is ``value`` rounded to the token's decimals."""
    shown = _as_number(token)
    if shown is None or not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
        return False
    mantissa, _, exponent = token.lower().partition("e")
    decimals = len(mantissa.split(".", 1)[1]) if "." in mantissa else 0
    step = 10 ** (int(exponent or 0) - decimals)  # the last shown digit's place value
    return abs(shown - value) <= 0.5 * step + 1e-9 * max(1.0, abs(value))


def _row_key(cells: list) -> tuple:
    """The non-numeric cells of a row (labels such as the model, precision, CI text), which identify it."""
    return tuple(str(c).strip() for c in cells if _as_number(str(c).strip()) is None and str(c).strip() not in
                 ("", "NaN", "nan", "None", "<NA>", "True", "False"))


def frame_rows(frame) -> list[list]:
    """A DataFrame's rows as lists of cell values (strings stay strings, numbers stay numbers)."""
    return [[None if (isinstance(v, float) and math.isnan(v)) else v for v in row]
            for row in frame.astype(object).itertuples(index=False, name=None)]


def table_problems(shown_html: str, shown_text: str, expected) -> list[str]:
    """Where a displayed table (its HTML and its plain text) shows what the rebuilt ``expected`` DataFrame does not:
    empty when every shown row is one of the rebuilt rows, with the same numbers."""
    rows = [list(map(str, r)) for r in frame_rows(expected)]
    keyed = [(_row_key(row), original) for original, row in zip(frame_rows(expected), rows)]
    problems = []
    header = list(map(str, expected.columns))
    body = [r for r in html_rows(shown_html) if r and not (set(r) - {""} <= set(header) | {""})]
    for cells in body:
        cells = cells[1:] if len(cells) == len(header) + 1 else cells  # the index column
        key = _row_key(cells)
        candidates = [original for k, original in keyed
                      if len(k) == len(key) and all(_text_matches(a, b) for a, b in zip(key, k))]
        if not candidates:
            problems.append(f"row {' · '.join(key) or cells[:2]} is not in the table rebuilt from results.json")
            continue
        if not any(all(_cell_matches(c, e) for c, e in zip(cells, cand)) for cand in candidates):
            cand = candidates[0]
            bad = [f"{h} shows {c} (the run: {e})" for h, c, e in zip(header, cells, cand) if not _cell_matches(c, e)]
            problems.append(f"row {' · '.join(key)}: " + "; ".join(bad[:3]))
    numbers = [v for row in frame_rows(expected) for v in row if isinstance(v, (int, float))]
    texts = " ".join([*map(str, expected.columns), *[str(v) for row in rows for v in row], *map(str, range(len(rows)))])
    allowed_strings = set(NUMBER.findall(texts))
    for token in NUMBER.findall(shown_text):
        if token not in allowed_strings and not any(_shown_as(token, v) for v in numbers):
            problems.append(f"the plain text shows {token}, a number the table rebuilt from results.json does not hold")
    return list(dict.fromkeys(problems))


def _text_matches(shown: str, expected: str) -> bool:
    """A text cell as displayed: the same text, or pandas' cut of a long one (``display.max_colwidth``: the first
    characters, then "...")."""
    shown, expected = shown.strip(), str(expected).strip()
    if shown == expected:
        return True
    return len(shown) > 3 and shown.endswith("...") and len(expected) > len(shown) - 3 and \
        expected.startswith(shown[:-3])


def _cell_matches(shown: str, expected) -> bool:
    shown = shown.strip()
    if expected is None:
        return shown in ("", "NaN", "nan", "None", "<NA>")
    if isinstance(expected, bool):
        return shown == str(expected)
    if isinstance(expected, (int, float)):
        return _shown_as(shown, expected)
    return _text_matches(shown, expected)


def _table_lines(markdown: str) -> str:
    return "\n".join(line for line in markdown.splitlines() if line.lstrip().startswith("|"))


def markdown_problems(shown: str, expected: str) -> list[str]:
    """Numbers in a displayed report's tables (the run's measurements) that the report rebuilt from results.json
    does not hold. The prose (targets, the recommendation) is left out: its thresholds belong to the kdlab version,
    and the targets are graded from results.json anyway."""
    allowed = set(NUMBER.findall(_table_lines(expected)))
    extra = [t for t in NUMBER.findall(_table_lines(shown)) if t not in allowed]
    return [f"the report shows {t}, which the report rebuilt from results.json does not hold" for t in
            dict.fromkeys(extra)]


def tables_in(nb) -> list[tuple[int, dict | None]]:
    """``(cell index, saved table output or None)`` for each code cell that produces a results table."""
    found = []
    for index, cell in enumerate(nb["cells"]):
        if cell.get("cell_type") != "code" or not any(p in cell_source(cell) for p in TABLE_PRODUCERS):
            continue
        saved = saved_payloads(cell, TABLE_MIME)
        has_output = any((out.get("data") or {}) for out in cell.get("outputs", []) or [])
        if saved:
            found += [(index, item) for item in saved]
        elif has_output:
            found.append((index, None))
    return found
