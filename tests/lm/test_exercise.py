"""The masked reverse-KL exercise: kdlab's loss passes it, and each common mistake gets its own message."""

import torch
import torch.nn.functional as F

from kdlab.exercises import run_check
from kdlab.lm.losses import masked_reverse_kl


def _message(fn) -> str:
    result = run_check("masked_reverse_kl", fn)
    assert not result.passed and result.attempted, result.text
    return result.message


def _kl(s, t, forward=False):
    log_q, log_p = F.log_softmax(s.float(), -1), F.log_softmax(t.float(), -1)
    a, b = (log_p, log_q) if forward else (log_q, log_p)
    return (a.exp() * (a - b)).sum(-1)


def test_kdlabs_own_loss_passes_on_the_notebook_and_fresh_inputs():
    for seed in (0, 7):
        assert run_check("masked_reverse_kl", masked_reverse_kl, seed).passed


def test_the_mistakes_are_named():
    m = lambda mask: mask.float()  # noqa: E731
    assert "forward KL" in _message(lambda s, t, mask: (_kl(s, t, True) * m(mask)).sum() / m(mask).sum())
    assert "padding positions are counted" in _message(lambda s, t, mask: _kl(s, t).mean())
    assert "B·S" in _message(lambda s, t, mask: (_kl(s, t) * m(mask)).sum() / mask.numel())
    assert "averaged each row" in _message(
        lambda s, t, mask: ((_kl(s, t) * m(mask)).sum(1) / m(mask).sum(1)).mean())
    assert "summed over the tokens" in _message(lambda s, t, mask: (_kl(s, t) * m(mask)).sum())
    assert "no gradient" in _message(
        lambda s, t, mask: torch.tensor(float((_kl(s, t) * m(mask)).sum() / m(mask).sum())))


def test_log_of_softmax_in_half_precision_is_caught():
    def naive(s, t, mask):
        q, p = torch.softmax(s, -1), torch.softmax(t, -1)  # stays fp16 for fp16 inputs; log(0) = -inf
        per = (q * (q.log() - p.log())).sum(-1)
        return (per * mask).sum() / mask.sum()

    message = _message(naive)
    assert "NaN or infinity" in message or "not finite" in message or "got" in message
