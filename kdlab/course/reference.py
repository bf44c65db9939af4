"""Numbers measured once with several seeds, shipped with kdlab so that a one-seed run can be read against them.

``reference_results.json`` holds the summaries of ``benchmarks/quality.py`` runs on the ``cpu`` profile (five seeds
each; the same tables are in BENCHMARKS.md). ``export_reference`` rebuilds it from those runs' ``summary.json``.
"""

from __future__ import annotations

import json
from pathlib import Path

REFERENCE_FILE = Path(__file__).with_name("reference_results.json")
TIMING_FILE = Path(__file__).with_name("lab_timing.json")  # a timed reference run of the lab, per profile


def load_lab_timing() -> dict:
    """``{profile: {machine, date, step_seconds, notebook_seconds, teacher_finetune_seconds, total_seconds}}`` of
    the timed reference runs (``kdlab.lab.time_estimate``); empty when none was shipped."""
    if not TIMING_FILE.is_file():
        return {}
    return json.loads(TIMING_FILE.read_text(encoding="utf-8"))


def load_reference() -> dict:
    """``{tag: summary}`` as written by ``export_reference`` (empty when no reference was shipped)."""
    if not REFERENCE_FILE.is_file():
        return {}
    return json.loads(REFERENCE_FILE.read_text(encoding="utf-8"))


DEFAULT_TAG = "cpu"  # the `cpu` profile's own settings; "all-labelled": every student sentence labelled


def reference_spread(tag: str = DEFAULT_TAG):
    """The per-student mean ± sd over seeds measured for ``tag`` (a DataFrame; the setting is in ``setting``)."""
    import pandas as pd

    ref = load_reference().get(tag)
    if not ref:
        return pd.DataFrame([{"note": f"no reference measurement for {tag!r} shipped with this kdlab"}])
    table = pd.DataFrame(ref["summary"])[["variant", "seeds", "mean_%", "sd_%", "min_%", "max_%"]]
    table["setting"] = ref.get("setting", tag)
    return table.round(2)


def reference_comparisons(tag: str = DEFAULT_TAG):
    """The paired comparisons measured for ``tag`` (mean difference, seed-level t-test, bootstrap interval)."""
    import pandas as pd

    ref = load_reference().get(tag) or {}
    return pd.DataFrame(ref.get("comparisons", [])).round(3)


def lesson_table():
    """One row per shipped setting: its teacher, each student's mean ± sd over seeds, and MiniLM − CE with the
    bootstrap interval (points) — the numbers behind the lab's lesson on when distillation pays."""
    import pandas as pd

    rows = []
    for tag, ref in load_reference().items():
        row = {"setting": ref.get("setting", tag), "seeds": len(ref["seeds"]),
               "teacher_%": round(100 * ref["teacher_accuracy"], 1)}
        for s in ref["summary"]:
            row[f"{s['variant']}_%"] = f"{s['mean_%']:.1f} ± {s['sd_%']:.1f}"
        for c in ref["comparisons"]:
            if (c["a"], c["b"]) == ("minilm", "ce"):
                row["minilm − ce"] = f"{c['mean_diff']:+.1f} [{c['boot_low']:+.1f}, {c['boot_high']:+.1f}]"
        rows.append(row)
    if not rows:
        return pd.DataFrame([{"note": "no reference measurement shipped with this kdlab"}])
    return pd.DataFrame(rows)


def export_reference(summaries: dict[str, str | Path], settings: dict[str, str] | None = None) -> Path:
    """Write ``reference_results.json`` from ``{tag: path of a quality run's summary.json}``; ``settings`` gives
    each tag a one-line description."""
    out = {}
    for tag, path in summaries.items():
        summary = json.loads(Path(path).read_text(encoding="utf-8"))
        out[tag] = {"setting": (settings or {}).get(tag, tag), "seeds": summary["seeds"],
                    "config": summary.get("config"),
                    "teacher_accuracy": summary["teacher_accuracy"], "overrides": summary["overrides"],
                    "summary": summary["summary"], "comparisons": summary["comparisons"]}
    REFERENCE_FILE.write_text(json.dumps(out, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return REFERENCE_FILE


def timing_entry(results: dict, step_seconds: float, machine: str, date: str) -> dict:
    """One profile's entry of ``lab_timing.json`` from a finished ``kdlab run`` (its ``results.json``:
    ``wall_seconds`` per notebook and ``teacher_finetune.train_seconds``) and this machine's calibrated step time
    (``kdlab.measurement.calibration.step_seconds``, measured right after the run on the same machine)."""
    from kdlab.errors import KDLabError

    wall = results.get("wall_seconds")
    if not isinstance(wall, dict) or not any(name.endswith(".ipynb") for name in wall):
        raise KDLabError("results.json holds no notebook times: time a whole run with `python -m kdlab run "
                         "--profile <profile>` first (a run made in JupyterLab records none).")
    notebooks = {name: round(float(s), 1) for name, s in wall.items() if name.endswith(".ipynb")}
    finetune = (results.get("teacher_finetune") or {}).get("train_seconds") or 0.0
    return {"machine": machine, "date": date, "step_seconds": round(float(step_seconds), 4),
            "notebook_seconds": notebooks, "teacher_finetune_seconds": round(float(finetune), 1),
            "total_seconds": round(float(wall.get("total", sum(notebooks.values()))), 1)}


def export_lab_timing(profile: str, entry: dict, path: str | Path = TIMING_FILE) -> Path:
    """Write (or replace) ``profile``'s entry of ``lab_timing.json``, keeping the other profiles'."""
    from kdlab.artifacts import atomic_write_text

    path = Path(path)
    data = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    data[profile] = entry
    return atomic_write_text(path, json.dumps(data, indent=1) + "\n")
