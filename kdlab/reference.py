"""Numbers measured once with several seeds, shipped with kdlab so that a one-seed run can be read against them.

``reference_results.json`` holds the summaries of ``benchmarks/quality.py`` runs on the ``cpu`` profile (five seeds
each; the same tables are in BENCHMARKS.md). ``export_reference`` rebuilds it from those runs' ``summary.json``.
"""

from __future__ import annotations

import json
from pathlib import Path

REFERENCE_FILE = Path(__file__).with_name("reference_results.json")


def load_reference() -> dict:
    """``{tag: summary}`` as written by ``export_reference`` (empty when no reference was shipped)."""
    if not REFERENCE_FILE.is_file():
        return {}
    return json.loads(REFERENCE_FILE.read_text(encoding="utf-8"))


def reference_spread(tag: str = "defaults"):
    """The per-student mean ± sd over seeds measured for ``tag`` (a DataFrame; the setting is in ``setting``)."""
    import pandas as pd

    ref = load_reference().get(tag)
    if not ref:
        return pd.DataFrame([{"note": f"no reference measurement for {tag!r} shipped with this kdlab"}])
    table = pd.DataFrame(ref["summary"])[["variant", "seeds", "mean_%", "sd_%", "min_%", "max_%"]]
    table["setting"] = ref.get("setting", tag)
    return table.round(2)


def reference_comparisons(tag: str = "defaults"):
    """The paired comparisons measured for ``tag`` (mean difference, seed-level t-test, bootstrap interval)."""
    import pandas as pd

    ref = load_reference().get(tag) or {}
    return pd.DataFrame(ref.get("comparisons", [])).round(3)


def export_reference(summaries: dict[str, str | Path], settings: dict[str, str] | None = None) -> Path:
    """Write ``reference_results.json`` from ``{tag: path of a quality run's summary.json}``; ``settings`` gives
    each tag a one-line description."""
    out = {}
    for tag, path in summaries.items():
        summary = json.loads(Path(path).read_text(encoding="utf-8"))
        out[tag] = {"setting": (settings or {}).get(tag, tag), "seeds": summary["seeds"],
                    "teacher_accuracy": summary["teacher_accuracy"], "overrides": summary["overrides"],
                    "summary": summary["summary"], "comparisons": summary["comparisons"]}
    REFERENCE_FILE.write_text(json.dumps(out, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return REFERENCE_FILE
