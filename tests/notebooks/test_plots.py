"""Every figure says its takeaway in one sentence written from its own numbers (kdlab.plots._caption): the sentences
are checked against numbers computed here, so a caption that disagreed with its figure would fail."""

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
import pytest
import torch

from kdlab import plots


@pytest.fixture(autouse=True)
def _close():
    yield
    matplotlib.pyplot.close("all")


def test_the_takeaway_is_drawn_under_the_figure_and_kept():
    fig = plots.token_length_histogram([10, 20, 30, 80], 64)
    assert fig.takeaway.startswith("75.0% of the sentences fit in max_length = 64")
    padding = 1 - np.mean([10, 20, 30, 64]) / 64
    assert f"{padding:.0%} of the tokens padding" in fig.takeaway
    assert any("Takeaway:" in t.get_text() for t in fig.texts)


def test_the_temperature_takeaway_says_the_ranking_never_changes():
    logits = [-2.0, -0.5, 1.5, 4.0, 2.5]
    names = ["very negative", "negative", "neutral", "positive", "very positive"]
    text = plots.multiclass_temperature_demo(logits, names).takeaway
    assert "the same at every T (top: positive)" in text
    small = {t: torch.softmax(torch.tensor(logits) / t, -1)[0].item() for t in (1, 4, 10)}
    assert f"very negative is {small[1]:.2f} at T = 1, {small[4]:.2f} at T = 4, {small[10]:.2f} at T = 10" in text


def test_the_gradient_takeaway_quotes_the_fall_without_t_squared():
    text = plots.kd_gradient_vs_temperature(temperatures=(1, 4)).takeaway
    assert "falls" in text and "1/T²" in text


def test_the_curves_takeaway_explains_a_student_that_stops_early():
    histories = {"ce": [{"step": 125, "loss_ce": 0.5}, {"step": 250, "eval_accuracy": 0.843}],
                 "minilm": [{"step": 500, "loss_kd": 0.2}, {"step": 1000, "eval_accuracy": 0.866}]}
    text = plots.training_curves(histories).takeaway
    assert "ce 84.3% after 250 steps, minilm 86.6% after 1000 steps" in text
    assert "ce stops earlier because it trains on fewer sentences" in text


def test_the_confusion_takeaway_names_the_commonest_error():
    matrices = {"teacher": np.array([[40, 10], [2, 48]]), "perfect": np.array([[5, 0], [0, 5]])}
    text = plots.confusion_matrices(matrices, ["negative", "positive"]).takeaway
    assert "teacher 12 errors, most often gold negative read as positive (10)" in text
    assert "perfect makes no error" in text


def test_the_latency_takeaway_names_the_fastest_student_per_batch():
    bench = pd.DataFrame([{"model": m, "precision": p, "batch": b, "seq": 128, "p50_ms": v, "p95_ms": v * 1.2,
                           "speedup_vs_teacher": s, "status": "ok"} for m, p, b, v, s in
                          [("teacher", "fp32", 1, 20.0, 1.0), ("student-3L", "fp32", 1, 10.0, 2.0),
                           ("student-3L", "int8", 1, 6.0, 3.33), ("teacher", "fp32", 32, 400.0, 1.0),
                           ("student-3L", "fp32", 32, 210.0, 1.9), ("student-2L (untrained)", "fp32", 1, 5.0, 4.0)]])
    text = plots.latency_bars(bench).takeaway
    assert "at batch 1 the fastest trained student is student-3L int8 (6.0 ms, 3.33× the fp32 teacher)" in text
    assert "at batch 32 the fastest trained student is student-3L fp32 (210.0 ms, 1.90×" in text
    assert "fastest trained student is student-2L" not in text  # timing only: never the one to pick (issue 33)


def test_the_sweep_takeaway_refuses_to_rank_inside_the_seed_noise():
    table = pd.DataFrame({"temperature": [2, 4, 8], "accuracy_%": [86.1, 86.9, 85.8], "low_%": [78.0] * 3,
                          "high_%": [88.5] * 3})
    assert "1.1 points apart, inside the 1–2 points one seed moves by" in plots.sweep_plot(table, "temperature").takeaway
    table["accuracy_%"] = [80.0, 86.9, 85.8]
    assert "more than one seed's" in plots.sweep_plot(table, "temperature").takeaway


def test_the_race_takeaway_tells_a_right_loss_from_a_wrong_one_and_names_no_winner_inside_the_noise():
    from kdlab.distillation.custom import race_verdict

    labels = np.arange(400) % 2

    class Run:
        def __init__(self, losses, right):
            self.history = [{"step": 10 * (i + 1), "loss": v} for i, v in enumerate(losses)]
            self.predictions = np.where(np.arange(400) < right, labels, 1 - labels)

    def race(kdlab, yours):
        r = {"kdlab": kdlab, "yours": yours}
        return plots.loss_race(r, race_verdict(r, labels))

    right = race(Run([0.9, 0.5], 320), Run([0.9000001, 0.52], 316))
    assert "your loss trains what kdlab's does" in right.takeaway and "no measurable difference" in right.takeaway
    wrong = race(Run([0.9, 0.5], 320), Run([0.06, 0.03], 280))
    assert "your loss is not kdlab's" in wrong.takeaway and "your objective differs" in wrong.takeaway
    hidden = Run([0.3577, 0.2], 318)  # a reversed kd_loss: the total barely moves, its own term does
    hidden.history[0].update(loss_kd=0.0119, loss_attention=0.6)
    theirs = Run([0.3576, 0.2], 320)
    theirs.history[0].update(loss_kd=0.0101, loss_attention=0.6)
    hidden = race(theirs, hidden).takeaway
    assert "your KD term differs" in hidden and "not kdlab's" in hidden and "no measurable difference" in hidden
    assert "kdlab's loss trains the better student: your loss 70.0%" in wrong.takeaway
    bars = wrong.axes[1]
    assert bars.get_ylim()[0] == 0 and [t.get_text() for t in bars.get_xticklabels()] == ["kdlab's loss", "your loss"]
    assert [t.get_text() for t in wrong.axes[0].get_legend().get_texts()] == ["kdlab's loss", "your loss"]
    assert len(bars.lines) + len(bars.collections) > 0  # the 95% intervals are drawn


def test_a_sweep_at_full_accuracy_plots_without_negative_bars():
    """Found by the Colab rehearsal's challenge cells: at 100% the interval's top is 100% minus rounding."""
    import pandas as pd

    from kdlab import plots

    table = pd.DataFrame({"name": ["a", "b"], "accuracy_%": [100.0, 99.2], "low_%": [97.1, 95.0],
                          "high_%": [100.0 - 1e-12, 99.9], "train_s": [1.0, 1.0], "reused": [False, False]})
    plots.sweep_plot(table, "name")


def test_the_latency_takeaway_calls_an_untrained_size_a_speed_bound_only():
    bench = pd.DataFrame([{"model": m, "precision": "fp32", "batch": 1, "seq": 128, "p50_ms": v, "p95_ms": v * 1.2,
                           "speedup_vs_teacher": 20.0 / v, "status": "ok"} for m, v in
                          [("teacher", 20.0), ("student-3L", 10.0), ("student-2L (untrained)", 7.0)]])
    text = plots.latency_bars(bench).takeaway
    assert "student-2L (untrained) (7.0 ms) is a speed bound only: untrained, it has no accuracy" in text


def _map_results():
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "course"))
    from test_deployment import _noisy

    results = _noisy(spread=0.6)
    n = len(results["dev_labels"])
    results["students"]["ce-random"] = {**results["students"]["minilm"], "accuracy": 0.57, "n": n}
    results["int8_students"]["ce-random"] = {**results["int8_students"]["minilm"], "accuracy": 0.56, "n": n}
    return results


def test_the_deployment_map_numbers_its_markers_without_overlap_and_frames_the_decision_region():
    from kdlab.course.deployment import verdict
    from kdlab.notebook.deployment_map import deployment_map

    results = _map_results()
    found = verdict(results)
    fig = deployment_map(found, results)
    ax = fig.axes[0]
    renderer = fig.canvas.get_renderer()
    boxes = [t.get_window_extent(renderer) for t in ax.number_labels]
    assert len(boxes) == len(found["rows"])
    assert not any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1:])
    low, high = ax.get_ylim()
    floor = 100 * found["floor"] * found["teacher_accuracy"]
    assert floor - 6 < low < floor and high - low < 12  # not from 55%: ce-random (57%) sits on the lower edge, keyed
    key = next(t.get_text() for t in fig.texts if "ce-random fp32" in t.get_text())
    assert "(below the frame)" in key


def test_the_deployment_map_takeaway_says_what_this_run_shows():
    from kdlab.course.deployment import RULE, verdict
    from kdlab.notebook.deployment_map import deployment_map

    results = _map_results()
    text = deployment_map(verdict(results), results).takeaway
    assert text.startswith("`minilm int8` is the model inside both limits")
    assert "inside the noise" in text and "`hinton fp32`" in text and RULE not in text


def test_the_attention_caption_quotes_the_printed_dev_numbers_and_their_reading(tiny_teacher, tiny_tokenizer):
    """Issue 33: 02 printed 1.3561 → 0.2469 while its caption said 0.353 → 0.033 (another measure, one sentence):
    given the dev KLs, the caption quotes exactly those, with the reading against uniform attention."""
    kl = {"before": 1.3561, "after": 0.2469, "uniform": 0.8, "sentences": 872}
    fig = plots.attention_maps({"teacher": tiny_teacher, "student": tiny_teacher}, tiny_tokenizer, "a fine film",
                               dev_kl=kl)
    assert "on 872 dev sentences" in fig.takeaway and "before 1.3561" in fig.takeaway
    assert "after 0.2469" in fig.takeaway and "uniform attention 0.8000" in fig.takeaway
    assert "confident and wrong" in fig.takeaway and "well below uniform" in fig.takeaway
