"""The exercises' checks: the instructor solutions pass, a stub is 'not attempted', and common mistakes get the
specific message a student needs (not a bare assert)."""

import math

import pytest
import torch
import torch.nn.functional as F

from kdlab.course.assignments import load_solutions
from kdlab.exercises import EXERCISES, MIME, CheckResult, check_kd_loss, run_check


solutions = load_solutions()  # instructor/solutions.py: in the repository, not in the installed package


def _stub(*args, **kwargs):
    raise NotImplementedError()


@pytest.mark.parametrize("exercise", sorted(EXERCISES))
@pytest.mark.parametrize("seed", [0, 20261202])
def test_solutions_pass(exercise, seed):
    """On the notebook's fixed inputs (seed 0) and on a grader's fresh ones."""
    result = run_check(exercise, getattr(solutions, EXERCISES[exercise].function), seed)
    assert result.passed, result.text
    assert result.cases_passed == result.cases_total >= 4


@pytest.mark.parametrize("exercise", sorted(EXERCISES))
def test_stub_is_not_attempted(exercise):
    result = run_check(exercise, _stub)
    assert not result.passed and not result.attempted
    assert "not attempted" in result.message and "kdlab" in result.message


def _message(exercise, fn) -> str:
    result = run_check(exercise, fn)
    assert not result.passed and result.attempted
    return result.message


def test_kd_loss_mistakes_are_named():
    def no_t2(s, t, T):
        return F.kl_div(F.log_softmax(s / T, -1), F.softmax(t / T, -1), reduction="batchmean")

    def reversed_kl(s, t, T):
        return T * T * F.kl_div(F.log_softmax(t / T, -1), F.softmax(s / T, -1), reduction="batchmean")

    def mean_reduction(s, t, T):
        return T * T * (F.softmax(t / T, -1) * (F.log_softmax(t / T, -1) - F.log_softmax(s / T, -1))).mean()

    def summed(s, t, T):
        return T * T * F.kl_div(F.log_softmax(s / T, -1), F.softmax(t / T, -1), reduction="sum")

    def unsoftened(s, t, T):
        return T * T * F.kl_div(F.log_softmax(s, -1), F.softmax(t, -1), reduction="batchmean")

    def detached(s, t, T):
        return torch.tensor(float(solutions.kd_loss(s, t, T).detach()))

    assert "T² factor is missing" in _message("kd_loss", no_t2)
    assert "KL direction is reversed" in _message("kd_loss", reversed_kl)
    assert "batchmean" in _message("kd_loss", mean_reduction)
    assert "summed over the batch" in _message("kd_loss", summed)
    assert "not divided by T" in _message("kd_loss", unsoftened)
    assert "no gradient" in _message("kd_loss", detached)


def test_kd_loss_numerical_overflow_is_explained():
    def naive(s, t, T):
        p_s, p_t = torch.exp(s / T) / torch.exp(s / T).sum(-1, keepdim=True), torch.softmax(t / T, -1)
        return T * T * (p_t * (p_t.log() - p_s.log())).sum(-1).mean()

    message = _message("kd_loss", naive)
    assert "NaN or infinity" in message and "log_softmax" in message


def test_attention_mistakes_are_named():
    def unmasked_keys(q_s, k_s, q_t, k_t, mask):
        def log_att(q, k):
            return F.log_softmax(q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1]), -1)

        kl = (log_att(q_t, k_t).exp() * (log_att(q_t, k_t) - log_att(q_s, k_s))).sum(-1)
        real = mask[:, None, :].float()
        return ((kl * real).sum(-1) / real.sum(-1)).mean()

    def unscaled(q_s, k_s, q_t, k_t, mask):
        return solutions.attention_kl(q_s * math.sqrt(q_s.shape[-1]), k_s, q_t * math.sqrt(q_t.shape[-1]), k_t, mask)

    def reversed_kl(q_s, k_s, q_t, k_t, mask):
        return solutions.attention_kl(q_t, k_t, q_s, k_s, mask)

    assert "padding keys are not masked" in _message("attention_kl", unmasked_keys)
    assert "not scaled" in _message("attention_kl", unscaled)
    assert "KL direction is reversed" in _message("attention_kl", reversed_kl)


def test_a_reversed_kl_is_named_once_and_flagged_on_the_result():
    """One phrase (REVERSED_KL) for the mistake in every check that can find it, and a flag 02's race reads."""
    from kdlab.exercises.core import REVERSED_KL

    def reversed_kd(s, t, T):
        return T * T * F.kl_div(F.log_softmax(t / T, -1), F.softmax(s / T, -1), reduction="batchmean")

    def reversed_attention(q_s, k_s, q_t, k_t, mask):
        return solutions.attention_kl(q_t, k_t, q_s, k_s, mask)

    def no_t2(s, t, T):
        return F.kl_div(F.log_softmax(s / T, -1), F.softmax(t / T, -1), reduction="batchmean")

    for exercise, fn in (("kd_loss", reversed_kd), ("attention_kl", reversed_attention)):
        result = run_check(exercise, fn)
        assert result.kl_reversed and REVERSED_KL in result.message and result.payload()["kl_reversed"]
    assert not run_check("kd_loss", no_t2).kl_reversed
    assert not run_check("kd_loss", solutions.kd_loss).kl_reversed


def test_other_exercises_name_their_mistakes():
    assert "multiplied the logits by T" in _message("softmax_temperature", lambda z, T: torch.softmax(z * T, -1))
    assert "keeps the top layer" in _message("alternate_layer_map",
                                             lambda t, s: [(i + 1) * t // s - 1 for i in range(s)])
    assert "two-sided" in _message("mcnemar", lambda b, c: solutions.mcnemar_p(b, c) / 2)
    assert "never trained" in _message("deployment",
                                       lambda rows, acc, ms, ret: min(rows, key=lambda r: r["p50_ms"])["name"])


def test_an_error_in_student_code_is_reported_with_its_line():
    def broken(s, t, T):
        return s.no_such_method()

    message = _message("kd_loss", broken)
    assert "AttributeError" in message and "line" in message


def test_result_carries_a_machine_readable_payload():
    result = run_check("kd_loss", solutions.kd_loss)
    bundle = result._repr_mimebundle_()
    assert bundle["text/plain"].startswith("✓ [kd_loss]")
    payload = bundle[MIME]
    assert payload["exercise"] == "kd_loss" and payload["passed"] is True and payload["kdlab_version"]
    assert len(payload["source_sha"]) == 64
    assert isinstance(CheckResult(**{k: v for k, v in payload.items() if k != "kdlab_version"}), CheckResult)


def test_check_prints_outside_a_notebook(capsys):
    check_kd_loss(_stub)
    assert "not attempted" in capsys.readouterr().out
