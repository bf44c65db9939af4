"""Markdown records of benchmark runs: tables, and dated sections appended to ``BENCHMARKS.md`` that say how
and on what each run was made (command, machine, threads, load, versions)."""

from __future__ import annotations

import math
import re
from pathlib import Path

import torch

from kdlab.artifacts import atomic_write_text
from kdlab.measurement.timing import machine_summary


def _cell(value) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return ""
        return f"{value:.3g}" if abs(value) < 10 else f"{value:,.1f}"
    return str(value).replace("|", "\\|")


def markdown_table(table, columns: list[str] | None = None) -> str:
    """A DataFrame as a GitHub markdown table (NaN as empty cells, floats to 3 significant digits)."""
    columns = columns or list(table.columns)
    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    for _, row in table.iterrows():
        lines.append("| " + " | ".join(_cell(row[c]) for c in columns) + " |")
    return "\n".join(lines)


# BENCHMARKS.md ends with its superseded sections under this heading; new sections go just before it.
ARCHIVE_HEADING = "# Archive: superseded sections"


def append_markdown(path: str | Path, title: str, lines: list[str]) -> Path:
    """Add ``## title`` and ``lines`` to the markdown file at ``path`` (created if missing): at its end, or, when the
    file has an archive part (a line ``ARCHIVE_HEADING``, as BENCHMARKS.md has), at the end of the current sections
    just before it. The file is replaced atomically: an interrupted write leaves the old one whole."""
    path = Path(path)
    section = f"## {title}\n\n" + "\n".join(lines).rstrip() + "\n"
    if not path.exists():
        header = "# Benchmarks\n\nMeasured with `benchmarks/*.py`; each section says how and on what.\n\n"
        return atomic_write_text(path, header + section)
    old = path.read_text(encoding="utf-8")
    archive = re.search(rf"^{re.escape(ARCHIVE_HEADING)}[ \t]*$", old, flags=re.M)
    if archive is None:
        return atomic_write_text(path, old + ("\n" if old else "") + section)
    before, after = old[:archive.start()], old[archive.start():]
    return atomic_write_text(path, before.rstrip("\n") + "\n\n" + section + "\n" + after)


def report_header(command: str, device: str | torch.device, threads: int, notes: list[str] = ()) -> list[str]:
    """Markdown bullet lines saying how and on what a benchmark ran (command, machine, threads, versions)."""
    m = machine_summary(device, threads)
    load = m["load_avg_1min"]
    busy = load is not None and load > 0.5 * m["cores"]
    lines = [
        f"- command: `{command}`",
        f"- machine: {m['device']}" + (f" (CPU: {m['cpu']})" if m["device"] != m["cpu"] else "")
        + f", {m['cores']} cores; torch threads: {m['threads']}",
        f"- load average at start: {load}" + (" — other processes were busy: timings are disturbed" if busy else ""),
        f"- date: {m['date']}; torch {m['torch']}, transformers {m['transformers']}, "
        f"onnxruntime {m['onnxruntime'] or 'not installed'}, Python {m['python']}",
    ]
    return lines + [f"- {note}" for note in notes]
