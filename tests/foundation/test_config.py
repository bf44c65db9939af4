"""Profiles, environment overrides, validation, save/load."""

import json
from pathlib import Path

import pytest
import torch

from kdlab.config import KDConfig, load_config
from kdlab.errors import KDLabError


def test_full_profile_values():
    cfg = load_config("full")
    assert cfg.profile == "full"
    assert cfg.teacher == "textattack/bert-base-uncased-SST-2"
    assert cfg.data == "hub"
    assert (cfg.student_layers, cfg.max_length, cfg.max_train_samples, cfg.max_eval_samples) == (6, 128, None, None)
    assert (cfg.temperature, cfg.alpha, cfg.beta, cfg.gamma, cfg.delta) == (4.0, 0.1, 0.4, 0.3, 0.2)
    assert cfg.relation_style == "kl"
    assert (cfg.learning_rate, cfg.batch_size, cfg.num_epochs, cfg.fp16) == (2e-5, 32, 3.0, True)


def test_cpu_profile_values():
    cfg = load_config("cpu")
    assert cfg.profile == "cpu"
    assert cfg.teacher == "minilm-l6"
    assert cfg.data == "hub"
    assert (cfg.student_layers, cfg.extra_student_layers, cfg.max_length) == (3, [2], 64)
    assert (cfg.max_train_samples, cfg.teacher_train_samples, cfg.max_eval_samples) == (16000, 32000, None)
    assert cfg.labelled_train_samples == 4000  # the other 12k student sentences are an unlabelled transfer set
    assert (cfg.learning_rate, cfg.teacher_learning_rate, cfg.num_epochs, cfg.teacher_epochs) == (1e-4, 1e-4, 2.0, 1.0)
    assert (cfg.temperature, cfg.alpha, cfg.beta, cfg.gamma, cfg.delta) == (4.0, 0.1, 0.4, 0.3, 0.2)


def test_smoke_profile_values(tmp_path):
    cfg = load_config("smoke", runs_dir=str(tmp_path))
    assert (cfg.teacher, cfg.data, cfg.student_layers, cfg.max_length) == ("tiny-random", "synthetic", 2, 32)
    assert (cfg.max_train_samples, cfg.max_eval_samples, cfg.num_threads) == (512, 128, 2)
    assert cfg.run_dir() == tmp_path / "smoke"


def test_relative_runs_dir_is_the_labs_from_the_advanced_folder(tmp_path, monkeypatch):
    """advanced/05 and 06 read what 01-04 wrote: a relative runs_dir resolves from the folder holding 01-Setup."""
    (tmp_path / "01-Setup.ipynb").write_text("{}")
    (tmp_path / "advanced").mkdir()
    cfg = load_config("smoke", runs_dir="runs")
    monkeypatch.chdir(tmp_path)
    assert cfg.run_dir() == Path("runs") / "smoke"
    monkeypatch.chdir(tmp_path / "advanced")
    assert cfg.run_dir() == Path("..") / "runs" / "smoke"
    assert (tmp_path / "advanced" / cfg.run_dir()).resolve() == (tmp_path / "runs" / "smoke").resolve()
    assert load_config("smoke", runs_dir=str(tmp_path / "elsewhere")).run_dir() == tmp_path / "elsewhere" / "smoke"


def test_unknown_profile_raises():
    with pytest.raises(KDLabError, match="unknown profile"):
        load_config("gpu-huge")


def test_profile_from_environment(monkeypatch):
    monkeypatch.setenv("KDLAB_PROFILE", "smoke")
    assert load_config().profile == "smoke"
    assert load_config("cpu").profile == "cpu"  # an explicit profile wins


def test_default_profile_depends_on_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert load_config().profile == "cpu"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert load_config().profile == "full"


def test_data_dir_from_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("KDLAB_DATA_DIR", str(tmp_path / "sub" / ".." / "sst2"))
    cfg = load_config("cpu")
    assert cfg.data == str((tmp_path / "sst2").resolve())  # one absolute spelling per folder
    assert Path(cfg.data).is_absolute()


def test_teacher_and_runs_dir_from_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("KDLAB_TEACHER", "/models/my-teacher")
    monkeypatch.setenv("KDLAB_RUNS_DIR", str(tmp_path))
    cfg = load_config("full")
    assert cfg.teacher == "/models/my-teacher"
    assert cfg.run_dir() == tmp_path / "full"


def test_numeric_environment_overrides(monkeypatch):
    monkeypatch.setenv("KDLAB_MAX_TRAIN_SAMPLES", "100")
    monkeypatch.setenv("KDLAB_MAX_EVAL_SAMPLES", "all")
    monkeypatch.setenv("KDLAB_EPOCHS", "1.5")
    cfg = load_config("cpu")
    assert cfg.max_train_samples == 100 and isinstance(cfg.max_train_samples, int)
    assert cfg.labelled_train_samples == 25  # the profile's share: 4,000 of 16,000 sentences labelled
    assert cfg.max_eval_samples is None
    assert cfg.num_epochs == 1.5


def test_bad_numeric_environment_value_raises(monkeypatch):
    monkeypatch.setenv("KDLAB_MAX_TRAIN_SAMPLES", "lots")
    with pytest.raises(KDLabError, match="max_train_samples"):
        load_config("cpu")


def test_keyword_overrides_win_over_environment(monkeypatch):
    monkeypatch.setenv("KDLAB_TEACHER", "from-env")
    monkeypatch.setenv("KDLAB_EPOCHS", "7")
    cfg = load_config("cpu", teacher="from-kwarg", num_epochs=0.5, student_layers=2)
    assert (cfg.teacher, cfg.num_epochs, cfg.student_layers) == ("from-kwarg", 0.5, 2)


def test_empty_environment_value_is_ignored(monkeypatch):
    monkeypatch.setenv("KDLAB_TEACHER", "")
    assert load_config("cpu").teacher == "minilm-l6"


@pytest.mark.parametrize(
    "overrides",
    [
        dict(temperature=0.0),
        dict(temperature=-1.0),
        dict(alpha=-0.1),
        dict(gamma=-0.5),
        dict(alpha=0.0, beta=0.0, gamma=0.0, delta=0.0),
        dict(student_layers=0),
        dict(relation_style="cosine"),
        dict(max_train_samples=0),
        dict(max_eval_samples=0),
        dict(teacher_train_samples=-5),
        dict(teacher_finetune="maybe"),
        dict(batch_size=0),
        dict(learning_rate=0.0),
        dict(num_epochs=0),
        dict(warmup_steps=-1),
        dict(not_a_field=1),
    ],
)
def test_bad_values_raise(overrides):
    with pytest.raises(KDLabError):
        load_config("smoke", **overrides)


def test_save_load_round_trip(tmp_path):
    cfg = load_config("smoke", runs_dir=str(tmp_path), alpha=0.25, layer_map=[1, 3], save_steps=7)
    path = cfg.save(tmp_path / "nested" / "config.json")
    raw = json.loads(path.read_text())
    assert raw["alpha"] == 0.25 and raw["layer_map"] == [1, 3] and raw["profile"] == "smoke"
    loaded = KDConfig.load(path)
    assert loaded == cfg
    assert loaded.to_dict() == raw


def test_load_rejects_invalid_saved_config(tmp_path):
    path = tmp_path / "config.json"
    data = load_config("smoke", runs_dir=str(tmp_path)).to_dict()
    path.write_text(json.dumps({**data, "temperature": -3}))
    with pytest.raises(KDLabError):
        KDConfig.load(path)
    path.write_text(json.dumps({**data, "unknown_knob": 1}))
    with pytest.raises(KDLabError, match="unknown_knob"):
        KDConfig.load(path)
