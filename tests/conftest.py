"""Shared fixtures for the kdlab test suite.

Everything runs offline, on the CPU, with tiny models and one torch thread (the CI machine has 2 cores that
other processes share; more threads only oversubscribe them).
"""

import os

# Before anything imports huggingface_hub / datasets: Hub calls must fail at once instead of retrying.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")

import importlib.util  # noqa: E402
import sys  # noqa: E402
from pathlib import Path as _Path  # noqa: E402

if importlib.util.find_spec("kdlab_grader") is None:  # the instructor's grader (grader/), when not pip-installed
    sys.path.insert(0, str(_Path(__file__).resolve().parents[1] / "grader"))
import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)

from kdlab.config import ENV_OVERRIDES, load_config  # noqa: E402
from kdlab.models.tiny import build_tiny_bert, build_tiny_tokenizer  # noqa: E402

TINY = dict(hidden_size=32, num_hidden_layers=4, num_attention_heads=4, intermediate_size=64)


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch, tmp_path):
    """No KDLAB_* setting of the calling shell leaks into a test; nothing is ever written under the repo."""
    for name in ("KDLAB_PROFILE", "KDLAB_OVERRIDES", *ENV_OVERRIDES):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("KDLAB_RUNS_DIR", str(tmp_path / "env-runs"))
    threads = torch.get_num_threads()
    torch.manual_seed(0)
    yield
    torch.set_num_threads(threads)  # lab.setup() pins threads; keep the suite at one


@pytest.fixture(scope="session")
def tiny_tokenizer():
    return build_tiny_tokenizer()


@pytest.fixture
def tiny_teacher(tiny_tokenizer):
    """A fresh random 4-layer, 32-wide, 4-head BERT classifier over the synthetic vocabulary."""
    torch.manual_seed(0)
    return build_tiny_bert(len(tiny_tokenizer), **TINY)


@pytest.fixture
def smoke_cfg(tmp_path):
    return load_config("smoke", runs_dir=str(tmp_path))


@pytest.fixture(scope="session")
def synthetic_data():
    from kdlab.data.synthetic import synthetic_sst2

    # Without negated sentences: a 32-wide teacher learns them in seconds, so the distillation tests have a
    # teacher that clearly knows the task.
    return synthetic_sst2(512, 128, seed=0, negation=0.0)


@pytest.fixture(scope="session")
def finetuned_teacher(tmp_path_factory, tiny_tokenizer, synthetic_data):
    """A tiny teacher fine-tuned once per session on the synthetic sentences (smoke settings).

    Tests that train against it must not modify it; ``teacher_state`` holds a copy of its weights to check that.
    """
    from kdlab.distillation.training import finetune_teacher

    cfg = load_config("smoke", runs_dir=str(tmp_path_factory.mktemp("teacher-runs")))
    torch.manual_seed(0)
    model = build_tiny_bert(len(tiny_tokenizer), **TINY)
    result = finetune_teacher(cfg, model, tiny_tokenizer, synthetic_data)
    assert result.metrics["accuracy"] > 0.9, result.metrics  # the smoke teacher must know the task
    return result.model.eval()


@pytest.fixture(scope="session")
def executed_lab(tmp_path_factory):
    """The four notebooks, answered by an honest student (``tests/grading/honest_solutions.py``: correct, written
    differently from the instructor's) with student id "alice", executed in order on the smoke profile (fresh
    kernel each, about a minute).
    Returns (folder of the executed notebooks, its results.json)."""
    from pathlib import Path

    import nbformat
    from nbclient import NotebookClient

    from kdlab.config import NOTEBOOKS
    from kdlab.course.assignments import write_solutions

    repo = Path(__file__).resolve().parents[1]
    reuse = os.environ.get("KDLAB_TEST_EXECUTED_LAB")  # developing the grader: a folder this fixture filled before
    if reuse and (Path(reuse) / "runs" / "smoke" / "results.json").is_file():
        return Path(reuse), Path(reuse) / "runs" / "smoke" / "results.json"
    root = Path(reuse) if reuse else tmp_path_factory.mktemp("lab")
    root.mkdir(parents=True, exist_ok=True)
    write_solutions(repo, root, NOTEBOOKS, repo / "tests" / "grading" / "honest_solutions.py")
    saved = {k: os.environ.get(k) for k in ("KDLAB_PROFILE", "KDLAB_RUNS_DIR", "KDLAB_STUDENT_ID")}
    os.environ.update(KDLAB_PROFILE="smoke", KDLAB_RUNS_DIR=str(root / "runs"), KDLAB_STUDENT_ID="alice")
    try:
        for name in NOTEBOOKS:
            nb = nbformat.read(root / name, as_version=4)
            NotebookClient(nb, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(root)}}).execute()
            nbformat.write(nb, root / name)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return root, root / "runs" / "smoke" / "results.json"
