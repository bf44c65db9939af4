"""Numbers measured once with several seeds, shipped with kdlab so that a one-seed run can be read against them.

``reference_results.json`` holds the summaries of ``benchmarks/quality.py`` runs on the ``cpu`` profile (five seeds
each; the same tables are in BENCHMARKS.md). ``export_reference`` rebuilds it from those runs' ``summary.json``.
``reference_controls.json`` holds, typed from BENCHMARKS.md and naming its sections (a test checks every number
against them): the ``unseen`` control (a transfer set the teacher never trained on, the lab's headline result) and
the ``notes`` — the multi-seed results 02, 05 and 06 quote, rendered by ``note(key)`` instead of typed into Markdown.
"""

from __future__ import annotations

import json
from pathlib import Path

REFERENCE_FILE = Path(__file__).with_name("reference_results.json")
# The controls and the other multi-seed results the notebooks' text quotes, each naming its BENCHMARKS.md section
CONTROLS_FILE = Path(__file__).with_name("reference_controls.json")
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


def load_controls() -> dict:
    """``{"unseen": {...}, "notes": {key: {notebook, title, sources, markdown}}}`` from ``reference_controls.json``:
    the transfer set the teacher never trained on (``transfer_sentences="unseen"``, BENCHMARKS.md "Issue 24's
    controls") and the multi-seed results 02, 05 and 06 quote, each with the BENCHMARKS.md sections it comes from."""
    if not CONTROLS_FILE.is_file():
        return {}
    return json.loads(CONTROLS_FILE.read_text(encoding="utf-8"))


def _diff(c: dict, low: str = "boot_low", high: str = "boot_high") -> str:
    return f"{c['mean_diff']:+.1f} [{c[low]:+.1f}, {c[high]:+.1f}]"


def _gain(comparisons: list[dict], a: str, low: str = "boot_low", high: str = "boot_high") -> str | None:
    found = next((c for c in comparisons if (c["a"], c["b"]) == (a, "ce")), None)
    return _diff(found, low, high) if found else None


ROLES = {"all-labelled": "no gain: every sentence labelled", DEFAULT_TAG: "upper bound: the teacher's own sentences"}


def lesson_table():
    """One row per shipped setting: its role in the lesson, its teacher, each student's mean ± sd over seeds, and
    MiniLM − CE / Hinton − CE in points with a 95% interval (a − b [low, high]; seed × sentence bootstrap for the
    shipped runs, paired t over seeds for the ``unseen`` control). The ``unseen`` row is **the result** (soft labels
    on sentences the teacher never saw); the default row (the teacher's own training sentences, labels hidden) is
    its upper bound."""
    import pandas as pd

    rows = []
    for tag, ref in load_reference().items():
        row = {"setting": ref.get("setting", tag), "role": ROLES.get(tag, ""), "seeds": len(ref["seeds"]),
               "teacher_%": round(100 * ref["teacher_accuracy"], 1)}
        for s in ref["summary"]:
            row[f"{s['variant']}_%"] = f"{s['mean_%']:.1f} ± {s['sd_%']:.1f}"
        row["minilm − ce"] = _gain(ref["comparisons"], "minilm")
        row["hinton − ce"] = _gain(ref["comparisons"], "hinton")
        rows.append(row)
    unseen = load_controls().get("unseen")
    if unseen and DEFAULT_TAG in load_reference():
        row = {"setting": unseen["setting"], "role": "the result: sentences the teacher never saw",
               "seeds": len(unseen["seeds"]), "teacher_%": round(100 * load_reference()[DEFAULT_TAG]["teacher_accuracy"], 1)}
        row.update({f"{s['variant']}_%": f"{s['mean_%']:.1f} ± {s['sd_%']:.1f}" for s in unseen["summary"]})
        row["minilm − ce"] = _gain(unseen["comparisons"], "minilm", "low", "high")
        row["hinton − ce"] = _gain(unseen["comparisons"], "hinton", "low", "high")
        rows.append(row)
    if not rows:
        return pd.DataFrame([{"note": "no reference measurement shipped with this kdlab"}])
    return pd.DataFrame(rows)


def control_table():
    """The ``unseen`` control's paired comparisons (a − b in points, seeds better, paired t p and 95% interval over
    seeds), against ``ce`` and against the same student on the teacher's own sentences."""
    import pandas as pd

    unseen = load_controls().get("unseen") or {}
    rows = [{"a": f"{c['a']}, unseen", "b": c["b"] if c["b"] == "ce" else f"{c['b']}, unseen", **_numbers(c)}
            for c in unseen.get("comparisons", [])]
    rows += [{"a": f"{c['variant']}, unseen", "b": f"{c['variant']}, teacher's sentences", **_numbers(c)}
             for c in unseen.get("versus_teacher_sentences", [])]
    return pd.DataFrame(rows)


def _numbers(c: dict) -> dict:
    return {"mean_diff": c["mean_diff"], "sd_diff": c["sd_diff"], "wins": c["wins"], "t_p": c["t_p"],
            "95% (t)": f"[{c['low']:+.2f}, {c['high']:+.2f}]"}


def headline(results: dict | None = None) -> str:
    """02's headline as Markdown, from the shipped numbers: the gain on sentences the teacher never saw is the
    result, the gain on the teacher's own training sentences (the lab's default transfer set) its upper bound;
    with ``results`` (this run's ``results.json``), this run's one-seed MiniLM − CE beside them."""
    ref, unseen = load_reference().get(DEFAULT_TAG), load_controls().get("unseen")
    if not ref or not unseen:
        return "_No reference measurement shipped with this kdlab._"
    seeds = len(unseen["seeds"])

    def wins(comparisons, a):
        return next(c.get("wins") for c in comparisons if (c["a"], c["b"]) == (a, "ce"))

    text = (f"**結果（the result）**：在教師 **沒看過** 的句子上（`cpu` profile、`transfer_sentences=\"unseen\"`、"
            f"{seeds} 個種子），"
            f"MiniLM − CE = {_gain(unseen['comparisons'], 'minilm', 'low', 'high')} 點、"
            f"Hinton − CE = {_gain(unseen['comparisons'], 'hinton', 'low', 'high')} 點"
            f"（{wins(unseen['comparisons'], 'minilm')}/{seeds} 與 {wins(unseen['comparisons'], 'hinton')}/{seeds} "
            f"個種子較好；{unseen['interval']}）。\n\n"
            f"**上限（upper bound）**：lab 預設的 transfer set 是教師 **自己的訓練句子**（標籤藏起來），教師的軟標籤帶著"
            f"它學過的標籤：MiniLM − CE = {_gain(ref['comparisons'], 'minilm')} 點、"
            f"Hinton − CE = {_gain(ref['comparisons'], 'hinton')} 點（{len(ref['seeds'])} 個種子，bootstrap 區間）。"
            f"兩者的差是記住的標籤回流，不是蒸餾本身的好處。\n\n"
            f"來源：BENCHMARKS.md「{unseen['source']}」；指令 `{unseen['command']}`。")
    students = (results or {}).get("students") or {}
    config = (results or {}).get("config") or {}
    own = config.get("transfer_sentences", "teacher") == "teacher"
    if {"minilm", "ce"} <= set(students) and own:
        mine = 100 * (students["minilm"]["accuracy"] - students["ce"]["accuracy"])
        text += (f"\n\n**你這次**（一個種子、教師自己的句子）：MiniLM − CE = {mine:+.1f} 點——和上限比，"
                 "不是和結果比。")
        if config.get("profile", DEFAULT_TAG) != DEFAULT_TAG:
            text += f"（你的 profile 是 `{config['profile']}`，教師與資料量都不同：只能比方向，不能比大小。）"
    return text


def note(key: str) -> str:
    """A named multi-seed result of ``reference_controls.json`` as Markdown: its title, its numbers, its sources."""
    found = load_controls().get("notes", {}).get(key)
    if not found:
        return f"_No reference result {key!r} shipped with this kdlab._"
    sources = "、".join(f"「{s}」" for s in found["sources"])
    return f"**參考結果：{found['title']}**\n\n{found['markdown']}\n\n來源：BENCHMARKS.md {sources}。"


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
