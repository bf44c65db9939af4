"""02's loss race: the verdict (Wilson intervals, McNemar's paired test, no winner inside the noise), the note for
a reversed KL, and the logging cadence that keeps length-grouped curves free of a sawtooth."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from scipy.stats import binomtest

from kdlab.distillation.custom import race_verdict, reversed_kl_note
from kdlab.distillation.trainer import length_group_steps


def _race(labels, right_kdlab, right_yours):
    """Predictions right on exactly the given indices (binary labels)."""
    labels = np.asarray(labels)

    def predictions(right):
        p = 1 - labels
        p[list(right)] = labels[list(right)]
        return SimpleNamespace(predictions=p)

    return {"kdlab": predictions(right_kdlab), "yours": predictions(right_yours)}


def test_two_students_inside_the_noise_get_no_winner():
    labels = np.arange(800) % 2
    both = range(600)
    race = _race(labels, [*both, *range(600, 610)], [*both, *range(610, 616)])  # 610 vs 606 right
    v = race_verdict(race, labels)
    assert v["kdlab_only"] == 10 and v["yours_only"] == 6
    assert v["p_value"] == pytest.approx(binomtest(6, 16, 0.5).pvalue)
    assert v["winner"] is None and v["overlap"] and v["difference"] == pytest.approx(100 * (606 - 610) / 800)
    assert v["text"].startswith("no measurable difference")
    assert "kdlab's" in v["text"] and "better" not in v["text"]
    lo, hi = binomtest(610, 800).proportion_ci(method="wilson")
    assert (v["runs"]["kdlab"]["low"], v["runs"]["kdlab"]["high"]) == pytest.approx((lo, hi))


def test_a_paired_difference_names_the_winner_even_when_the_intervals_overlap():
    labels = np.arange(800) % 2
    race = _race(labels, range(620), [*range(600), *range(620, 622)])  # 620 vs 602: 20 vs 2 discordant
    v = race_verdict(race, labels)
    assert v["winner"] == "kdlab" and v["p_value"] < 0.05 and v["overlap"]
    assert v["text"].startswith("kdlab's loss trains the better student") and "intervals overlap, but" in v["text"]


def test_kdlabs_run_alone_has_intervals_and_no_verdict():
    labels = np.arange(10) % 2
    v = race_verdict({"kdlab": SimpleNamespace(predictions=labels.copy())}, labels)
    assert v["runs"]["kdlab"]["accuracy"] == 1.0 and "text" not in v


def test_the_reversed_kl_note_says_two_classes_cannot_show_mode_seeking_and_points_to_07():
    two = reversed_kl_note(2)
    assert "cannot show" in two and "several modes" in two and "07-LLM-Distillation" in two
    assert "cannot show" not in reversed_kl_note(5) and "07-LLM-Distillation" in reversed_kl_note(5)


@pytest.mark.parametrize("rows, batch, accumulation, steps", [(16000, 32, 1, 50), (3200, 32, 1, 25), (256, 32, 1, 2),
                                                              (100, 32, 1, 1), (3200, 16, 2, 25)])
def test_length_group_steps_is_transformers_mega_batch(rows, batch, accumulation, steps):
    assert length_group_steps(rows, batch, accumulation) == steps


def test_length_group_steps_matches_the_sampler_it_describes():
    """Independently: transformers' own grouping, read back from its output (each group sorted long to short)."""
    import torch
    from transformers.trainer_pt_utils import get_length_grouped_indices

    rows, batch = 3200, 32
    lengths = list(np.random.default_rng(0).permutation(rows))  # distinct lengths
    order = get_length_grouped_indices(lengths, batch, generator=torch.Generator().manual_seed(0))
    seq = [lengths[i] for i in order]
    starts = [0] + [i for i in range(1, rows) if seq[i] > seq[i - 1]]  # a rise starts a new group
    sizes = {b - a for a, b in zip(starts, starts[1:] + [rows])}
    # the sampler swaps the longest sentence to the front, which can add one short extra run
    assert length_group_steps(rows, batch) * batch == max(sizes)
