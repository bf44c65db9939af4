"""What a run keeps on Drive (issue 32): checkpoints on the runtime's own disk, and a byte budget computed from the
models' parameter counts that a whole GPU run stays within (the smoke run's real bytes check the model of it:
tests/course/test_colab_rehearsal.py)."""

import pytest

from kdlab.config import load_config
from kdlab.course.storage import BUDGET_BYTES, bert_params_by_layers, drive_bytes, saved_models
from kdlab.distillation.training import checkpoint_root


def test_bert_parameter_counts_are_bert_bases():
    counts = bert_params_by_layers([12, 6])
    assert counts[12] == pytest.approx(109.5e6, rel=0.01) and counts[6] == pytest.approx(67.0e6, rel=0.01)


@pytest.mark.parametrize("profile", ["class", "full"])
def test_a_whole_gpu_run_fits_the_drive_budget(profile):
    cfg = load_config(profile)
    params = bert_params_by_layers([12, cfg.student_layers, *cfg.extra_student_layers])
    models = saved_models(cfg, 12, teacher_saved=False)  # the Hub teacher is not copied to Drive
    assert drive_bytes(models, params) <= BUDGET_BYTES
    with_challenges = saved_models(cfg, 12, teacher_saved=False, challenges=True)
    assert drive_bytes(with_challenges, params) > BUDGET_BYTES  # said where the challenges are switched on


def test_checkpoints_follow_the_local_disk_setting(tmp_path, monkeypatch):
    cfg = load_config("smoke", runs_dir=str(tmp_path / "runs"))
    monkeypatch.delenv("KDLAB_CHECKPOINTS_DIR", raising=False)
    assert checkpoint_root(cfg) == tmp_path / "runs" / "smoke" / "checkpoints"
    monkeypatch.setenv("KDLAB_CHECKPOINTS_DIR", str(tmp_path / "local"))
    assert checkpoint_root(cfg) == tmp_path / "local" / "smoke"
