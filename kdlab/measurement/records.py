"""Markdown records of benchmark runs: tables, and dated sections appended to ``BENCHMARKS.md`` that say how
and on what each run was made (command, machine, threads, load, versions)."""

from __future__ import annotations

import math
from pathlib import Path

import torch

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


def append_markdown(path: str | Path, title: str, lines: list[str]) -> Path:
    """Append ``## title`` and ``lines`` to the markdown file at ``path`` (created if missing)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    start = "" if not path.exists() or path.stat().st_size == 0 else "\n"
    if not path.exists():
        start = "# Benchmarks\n\nMeasured with `benchmarks/*.py`; each section says how and on what.\n\n"
    with path.open("a", encoding="utf-8") as fh:
        fh.write(start + f"## {title}\n\n" + "\n".join(lines).rstrip() + "\n")
    return path


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
