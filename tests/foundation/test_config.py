"""Profiles, environment overrides, validation, save/load."""

import dataclasses
import json
from pathlib import Path

import pytest
import torch

from kdlab.config import KDConfig, LossSettings, TrainSettings, load_config
from kdlab.distillation.losses import DistillationLoss
from kdlab.distillation.trainer import training_arguments
from kdlab.errors import KDLabError
from kdlab.lm.config import load_lm_config

SAVED_BY_MAIN = Path(__file__).parent / "data"  # written by the code of main at 7e2dcb7, before the settings refactor


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
    assert load_config().profile == "class"  # the GPU default; `full` (the course text's setup) is opt-in


def test_the_class_profile_is_the_transfer_set_setting_on_bert_base():
    """Issue 32: on a GPU the default shows the lesson (a labelled subset + a transfer set), sized for a class period."""
    from kdlab.course.runtimes import expected_minutes

    cfg, full = load_config("class"), load_config("full")
    assert (cfg.teacher, cfg.student_layers) == (full.teacher, full.student_layers) == (
        "textattack/bert-base-uncased-SST-2", 6)
    assert cfg.labelled_train_samples < cfg.max_train_samples
    minutes, source = expected_minutes(cfg)
    assert minutes["02-Distill.ipynb"][1] <= 10 and sum(hi for _, hi in minutes.values()) <= 25 and "T4" in source
    assert expected_minutes(full)[0]["02-Distill.ipynb"][0] > 10


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


def test_configs_saved_by_earlier_code_load_unchanged():
    """config.json files and each variant's loss settings as saved by main before the refactor (tests/foundation/
    data): they load to the same values in the same order, and give the same loss, so saved runs are reused."""
    saved = json.loads((SAVED_BY_MAIN / "saved_by_main_2026-12-06.json").read_text())
    for name, record in saved.items():
        cfg = KDConfig(**record["config"]).validate()
        assert list(cfg.to_dict().items()) == list(record["config"].items()), name
        for variant, settings in record["loss"].items():
            assert DistillationLoss.from_config(cfg, variant).settings() == settings, (name, variant)


def test_a_saved_config_file_loads(tmp_path):
    record = json.loads((SAVED_BY_MAIN / "saved_by_main_2026-12-06.json").read_text())["cpu"]["config"]
    path = tmp_path / "config.json"
    path.write_text(json.dumps(record, indent=2))
    assert KDConfig.load(path).to_dict() == record


def test_training_arguments_match_those_of_earlier_code(tmp_path):
    saved = json.loads((SAVED_BY_MAIN / "training_arguments_by_main_2026-12-06.json").read_text())
    for profile, record in saved.items():
        cfg = load_config(profile, runs_dir="runs", **record["overrides"])
        args = training_arguments(cfg, tmp_path, learning_rate=1e-3, num_train_epochs=2.0, warmup_steps=3).to_dict()
        args = json.loads(json.dumps(args, default=str))
        for key in ("output_dir", "logging_dir"):
            args.pop(key, None)
        assert args == record["arguments"], profile


@pytest.mark.parametrize("variant", ["ce", "hinton", "minilm"])
def test_each_loss_setting_reaches_the_loss_of_the_variants_it_names(variant):
    """A loss setting is declared once (a LossSettings field): changing it in the config changes the loss of
    exactly the variants its metadata names."""
    base = load_config("smoke", relation_heads=2)
    changed = {"temperature": 2.0, "alpha": 0.7, "beta": 0.9, "gamma": 0.6, "delta": 0.5, "relation_style": "mse",
               "kd_style": "mse", "weight_schedule": "soft-to-hard", "temperature_schedule": "anneal",
               "final_temperature": 2.0, "relation_weight": 0.25, "relation_heads": 4, "relation_kinds": ["qk"],
               "relation_teacher_layer": 0, "relation_student_layer": 0, "hidden_weight": 0.5,
               "hidden_layer_map": [[1, 2]]}
    assert set(changed) == {f.name for f in dataclasses.fields(LossSettings)}
    before = DistillationLoss.from_config(base, variant)
    for f in dataclasses.fields(LossSettings):
        after = DistillationLoss.from_config(dataclasses.replace(base, **{f.name: changed[f.name]}), variant)
        assert (getattr(after, f.name) == changed[f.name]) == (variant in f.metadata["variants"]), f.name
        assert (after.settings() != before.settings()) == (variant in f.metadata["variants"]), f.name


def test_every_training_setting_with_a_trainer_name_reaches_the_training_arguments(tmp_path):
    cfg = load_config("smoke", runs_dir=str(tmp_path), eval_steps=3, save_steps=6, fp16=False)
    args = training_arguments(cfg, tmp_path)
    named = [f for f in dataclasses.fields(TrainSettings) if f.metadata["trainer"]]
    assert len(named) >= 10
    for f in named:
        assert getattr(args, f.metadata["trainer"]) == getattr(cfg, f.name), f.name


def test_overrides_from_the_environment_name_an_unknown_field(monkeypatch):
    monkeypatch.setenv("KDLAB_OVERRIDES", '{"warmup_step": 3}')
    with pytest.raises(KDLabError, match="KDLAB_OVERRIDES.*did you mean 'warmup_steps'"):
        load_config("smoke")
    monkeypatch.setenv("KDLAB_OVERRIDES", '{"warmup_steps": "3"}')
    with pytest.raises(KDLabError, match="warmup_steps='3'"):
        load_config("smoke")
    monkeypatch.setenv("KDLAB_OVERRIDES", '{"warmup_steps": 3, "layer_map": [0, 1]}')
    cfg = load_config("smoke")
    assert (cfg.warmup_steps, cfg.layer_map) == (3, [0, 1])


def test_the_language_model_settings_share_the_loader(monkeypatch):
    """LMConfig is read by the same loader: wrong types and unknown names are refused with the same messages."""
    monkeypatch.delenv("KDLAB_LM_OVERRIDES", raising=False)
    with pytest.raises(KDLabError, match="student_steps='8'.*must be int"):
        load_lm_config("smoke", student_steps="8")
    with pytest.raises(KDLabError, match="did you mean 'student_steps'"):
        load_lm_config("smoke", student_step=8)
    monkeypatch.setenv("KDLAB_LM_OVERRIDES", '{"top_k": 4}')
    monkeypatch.setenv("KDLAB_LM_TEACHER", "gpt2")
    cfg = load_lm_config("smoke")
    assert (cfg.top_k, cfg.teacher) == (4, "gpt2")


def test_a_data_folder_may_be_given_as_a_path(tmp_path):
    assert load_config("smoke", data=tmp_path).data == str(tmp_path.resolve())
    with pytest.raises(KDLabError, match="data=5 .*must be str"):
        load_config("smoke", data=5)
