"""A 4-class data set through the notebooks themselves, as a new user runs them (``KDLAB_DATA_DIR`` with text labels),
not only through the package calls: every cell of the four lab notebooks and the two optional ones must run.

The lab's notebooks are the same for every profile; this runs them on the `smoke` profile's tiny models (a few
minutes) with a local news-like set of four text-labelled classes, which is what broke 01's soft-vs-hard cell once.
"""

import os
from pathlib import Path

import nbformat
import pytest

from kdlab.config import NOTEBOOKS

ROOT = Path(__file__).resolve().parents[2]
OPTIONAL = ("advanced/05-Advanced.ipynb", "advanced/06-Compression.ipynb")
TOPICS = {"sports": ["match", "goal", "team", "season"], "business": ["market", "shares", "profit", "bank"],
          "science": ["study", "cells", "physics", "lab"], "world": ["election", "border", "treaty", "minister"]}


def _four_class_folder(folder: Path) -> Path:
    folder.mkdir()
    rows = []
    for i in range(240):
        topic = list(TOPICS)[i % 4]
        words = TOPICS[topic]
        rows.append(f"the {words[i % 4]} and the {words[(i + 1) % 4]} news\t{topic}")
    (folder / "train.tsv").write_text("sentence\tlabel\n" + "\n".join(rows) + "\n")
    (folder / "dev.tsv").write_text("sentence\tlabel\n" + "\n".join(rows[:48]) + "\n")
    return folder


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    from nbclient import NotebookClient

    tmp = tmp_path_factory.mktemp("four")
    data = _four_class_folder(tmp / "news")
    env = {"KDLAB_PROFILE": "smoke", "KDLAB_RUNS_DIR": str(tmp / "runs"), "KDLAB_DATA_DIR": str(data),
           "KDLAB_MAX_TRAIN_SAMPLES": "160", "KDLAB_TEACHER_TRAIN_SAMPLES": "240", "KDLAB_MAX_EVAL_SAMPLES": "48"}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    out = {}
    try:
        for name in (*NOTEBOOKS, *OPTIONAL):
            nb = nbformat.read(ROOT / name, as_version=4)
            NotebookClient(nb, timeout=900, kernel_name="python3",
                           resources={"metadata": {"path": str((ROOT / name).parent)}}).execute()
            out[name] = nb
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return out, tmp


def test_every_notebook_runs_with_four_text_labelled_classes(executed):
    notebooks, tmp = executed
    assert set(notebooks) == {*NOTEBOOKS, *OPTIONAL}  # NotebookClient raises at the first failing cell
    import json

    results = json.loads((tmp / "runs" / "smoke" / "results.json").read_text())
    assert results["teacher"]["n"] == 48 and set(results["students"]) >= {"ce", "hinton", "minilm"}


def test_the_soft_vs_hard_table_shows_the_four_class_names(executed):
    notebooks, _ = executed
    shown = "".join(out.get("data", {}).get("text/plain", "") for cell in notebooks["01-Setup.ipynb"].cells
                    for out in cell.get("outputs", []) if "hard label" in out.get("data", {}).get("text/plain", ""))
    assert all(topic in shown for topic in TOPICS)
