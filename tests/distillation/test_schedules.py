"""Loss schedules (kdlab.distillation.schedules) and the logits-MSE KD term: the weights and T over training, the loss
that
uses them, and a smoke distillation whose logged terms follow the schedule."""

import pytest
import torch
import torch.nn.functional as F

from kdlab.config import load_config
from kdlab.distillation.losses import DistillationLoss, Outputs, kd_loss, logits_mse_loss
from kdlab.distillation.schedules import scheduled_temperature, scheduled_weights
from kdlab.distillation.training import distill
from kdlab.errors import KDLabError

W = {"ce": 0.1, "kd": 0.4, "attention": 0.3, "value": 0.2, "relation": 0.0, "hidden": 0.0}


def test_constant_schedule_keeps_the_weights():
    for p in (None, 0.0, 0.5, 1.0):
        assert scheduled_weights("constant", p, W) == W


def test_staged_runs_inner_terms_then_logits_terms():
    early, late = scheduled_weights("staged", 0.2, W), scheduled_weights("staged", 0.7, W)
    assert (early["ce"], early["kd"], early["attention"], early["value"]) == (0.0, 0.0, 0.3, 0.2)
    assert (late["ce"], late["kd"], late["attention"], late["value"]) == (0.1, 0.4, 0.0, 0.0)
    assert scheduled_weights("staged", 0.5, W)["attention"] == 0.0  # the second stage starts at the split
    hinton = {**W, "attention": 0.0, "value": 0.0}
    assert scheduled_weights("staged", 0.1, hinton) == hinton  # nothing to run first: unchanged


def test_soft_to_hard_moves_the_logits_weight_from_kd_to_ce():
    start, middle, end = (scheduled_weights("soft-to-hard", p, W) for p in (0.0, 0.5, 1.0))
    assert (start["ce"], start["kd"]) == (0.0, pytest.approx(0.5))
    assert (middle["ce"], middle["kd"]) == (pytest.approx(0.25), pytest.approx(0.25))
    assert (end["ce"], end["kd"]) == (pytest.approx(0.5), 0.0)
    assert all(x["attention"] == 0.3 and x["value"] == 0.2 for x in (start, middle, end))


def test_temperature_anneals_linearly_and_clips_progress():
    assert scheduled_temperature("constant", 0.9, 4.0) == 4.0
    assert scheduled_temperature("anneal", 0.0, 4.0, 1.0) == 4.0
    assert scheduled_temperature("anneal", 0.5, 4.0, 1.0) == pytest.approx(2.5)
    assert scheduled_temperature("anneal", 1.0, 4.0, 1.0) == pytest.approx(1.0)
    assert scheduled_temperature("anneal", 1.7, 4.0, 1.0) == pytest.approx(1.0)


def _inputs(seed=0, b=4, h=2, s=6, d=8, c=2):
    g = torch.Generator().manual_seed(seed)
    qkv = lambda: tuple(torch.randn(b, h, s, d, generator=g) for _ in range(3))  # noqa: E731
    mask = torch.ones(b, s, dtype=torch.long)
    mask[0, 4:] = 0
    return (torch.randn(b, c, generator=g, requires_grad=True), torch.tensor([0, 1, -100, 1]),
            torch.randn(b, c, generator=g), qkv(), qkv(), mask)


def test_staged_loss_computes_only_the_terms_of_its_stage():
    z_s, y, z_t, s_qkv, t_qkv, mask = _inputs()
    loss = DistillationLoss(weight_schedule="staged")
    with torch.no_grad():
        early = loss(Outputs(z_s, s_qkv), y, Outputs(z_t, t_qkv), mask, progress=0.1)
        late = loss(Outputs(z_s, s_qkv), y, Outputs(z_t, t_qkv), mask, progress=0.9)
    assert set(early) == {"attention", "value", "loss"} and set(late) == {"ce", "kd", "loss"}
    assert float(early["loss"]) == pytest.approx(float(0.3 * early["attention"] + 0.2 * early["value"]))
    assert float(late["loss"]) == pytest.approx(float(0.1 * late["ce"] + 0.4 * late["kd"]))
    constant = DistillationLoss()(Outputs(z_s, s_qkv), y, Outputs(z_t, t_qkv), mask, progress=0.1)
    assert set(constant) == {"ce", "kd", "attention", "value", "loss"}


def test_annealed_loss_uses_the_temperature_of_its_progress():
    z_s, y, z_t, *_ = _inputs()
    loss = DistillationLoss.for_variant("hinton", temperature_schedule="anneal", final_temperature=1.0)
    parts = loss(z_s, y, z_t, progress=0.5)
    assert float(parts["temperature"]) == pytest.approx(2.5)
    assert parts["kd"].item() == pytest.approx(kd_loss(z_s, z_t, 2.5).item())
    assert "temperature" not in DistillationLoss.for_variant("hinton")(z_s, y, z_t)


def test_logits_mse_is_tangs_term_and_needs_no_temperature():
    z_s, y, z_t, *_ = _inputs()
    assert float(logits_mse_loss(z_s, z_t)) == pytest.approx(float(((z_s - z_t) ** 2).mean()))
    loss = DistillationLoss.for_variant("hinton", temperature=7.0, kd_style="mse")
    parts = loss(z_s, y, z_t)
    assert float(parts["kd"]) == pytest.approx(float(F.mse_loss(z_s, z_t)))
    parts["loss"].backward()
    assert z_s.grad is not None and z_t.grad is None  # the teacher's logits are constants
    with pytest.raises(KDLabError, match="same labels"):
        logits_mse_loss(z_s, z_t[:, :1])


def test_ce_stays_the_plain_baseline_under_any_schedule(smoke_cfg):
    import dataclasses

    cfg = dataclasses.replace(smoke_cfg, weight_schedule="soft-to-hard", temperature_schedule="anneal",
                              kd_style="mse").validate()
    ce = DistillationLoss.from_config(cfg, "ce")
    assert (ce.weight_schedule, ce.temperature_schedule, ce.kd_style) == ("constant", "constant", "kl")
    assert DistillationLoss.from_config(cfg, "hinton").weight_schedule == "soft-to-hard"
    assert DistillationLoss.from_config(cfg, "minilm").kd_style == "mse"


@pytest.mark.parametrize("field, value, message", [
    ("weight_schedule", "warmup", "weight_schedule='warmup'"),
    ("temperature_schedule", "cosine", "temperature_schedule='cosine'"),
    ("final_temperature", 0.0, "final_temperature=0.0"),
    ("kd_style", "l1", "kd_style='l1'"),
])
def test_bad_schedule_settings_are_refused_before_training(field, value, message):
    with pytest.raises(KDLabError, match=message):
        load_config("smoke", **{field: value})


def test_staged_needs_a_logits_stage():
    with pytest.raises(KDLabError, match="alpha = beta = 0"):
        load_config("smoke", weight_schedule="staged", alpha=0.0, beta=0.0)
    with pytest.raises(KDLabError, match="alpha = beta = 0"):  # the loss built without a config refuses it too
        DistillationLoss(alpha=0.0, beta=0.0, weight_schedule="staged")
    DistillationLoss(alpha=0.0, beta=0.0, weight_schedule="constant")  # relations alone, unscheduled: allowed


def test_staged_distillation_logs_relations_first_then_logits(tmp_path, finetuned_teacher, tiny_tokenizer,
                                                              synthetic_data):
    cfg = load_config("smoke", runs_dir=str(tmp_path), weight_schedule="staged", temperature_schedule="anneal",
                      logging_steps=2, eval_steps=None)
    result = distill(cfg, finetuned_teacher, tiny_tokenizer, synthetic_data, "minilm")
    logs = [h for h in result.history if "loss" in h and "eval_loss" not in h]
    total = max(h["step"] for h in logs)
    first = [h for h in logs if h["step"] < 0.5 * total - 2]
    second = [h for h in logs if h["step"] > 0.5 * total + 2]
    assert first and second
    assert all("loss_attention" in h and "loss_kd" not in h for h in first)
    assert all("loss_kd" in h and "loss_attention" not in h for h in second)
    temperatures = [h["temperature"] for h in logs]
    assert temperatures[0] > temperatures[-1] and temperatures[-1] < 1.5
    assert result.metrics["accuracy"] > 0.5
