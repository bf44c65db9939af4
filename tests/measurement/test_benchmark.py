"""kdlab.measurement.benchmark / kdlab.measurement.quantize and the benchmark scripts, on tiny models (hidden 32, 4
heads).

No timing thresholds: these tests check what is measured and how rows are built, not how fast anything is.
"""

import copy
import importlib.util
import itertools
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from kdlab.distillation.capture import QKVCapture
from kdlab.distillation.losses import attention_distribution_loss
from kdlab.errors import KDLabError
from kdlab.measurement.benchmark import COLUMNS, add_speedups, benchmark_models, time_forward, tiny_models
from kdlab.measurement.padding import padding_table
from kdlab.measurement.quantize import is_int8_linear, quantize_int8, saved_size_bytes, state_dict_bytes
from kdlab.measurement.records import markdown_table
from kdlab.measurement.timing import latency_stats, round_robin
from kdlab.measurement.train_step import TRAIN_STEPS, attention_kl_from_probs, train_step_benchmark, training_batches

ROOT = Path(__file__).resolve().parents[2]
FAST = dict(warmup=1, repeats=3, num_threads=1)


@pytest.fixture(scope="module")
def models():
    return tiny_models((2, 1))  # {"teacher": 2 layers, "student-1L": 1 layer}


@pytest.fixture(scope="module")
def table(models):
    """fp32 + int8 rows of both tiny models at batches 1 and 2."""
    return benchmark_models(models, batch_sizes=[1, 2], seq_len=8, precisions=["fp32", "int8"], **FAST)


def call_log(models: dict) -> list[str]:
    """Record the name of every model forward, in call order."""
    log = []
    for name, model in models.items():
        model.register_forward_pre_hook(lambda *_, name=name: log.append(name))
    return log


def test_rows_have_every_column_and_ordered_percentiles(table):
    assert list(table.columns) == COLUMNS
    assert len(table) == 2 * 2 * 2  # models x precisions x batches
    assert (table["status"] == "ok").all()
    assert (table["p50_ms"] <= table["p95_ms"]).all() and (table["p95_ms"] <= table["p99_ms"]).all()
    assert (table["threads"] == 1).all() and (table["seq"] == 8).all()
    assert table["peak_mem_MB"].gt(0).all() and table["disk_MB"].gt(0).all()
    assert table["memory_method"].str.contains("profiler").all()
    np.testing.assert_allclose(table["samples_per_s"], table["batch"] * 1000 / table["mean_ms"])
    assert table.loc[table["precision"] == "fp32", "max_abs_diff"].eq(0).all()
    assert set(table["layers"]) == {2, 1}


def test_speedup_is_teacher_fp32_p50_over_row_p50(table):
    for _, row in table.iterrows():
        ref = table[(table["model"] == "teacher") & (table["precision"] == "fp32") & (table["batch"] == row["batch"])]
        same = table[(table["model"] == "teacher") & (table["precision"] == row["precision"])
                     & (table["batch"] == row["batch"])]
        assert row["speedup_vs_teacher"] == pytest.approx(ref["p50_ms"].item() / row["p50_ms"])
        assert row["speedup_same_precision"] == pytest.approx(same["p50_ms"].item() / row["p50_ms"])


def test_add_speedups_with_made_up_rows():
    rows = [dict(model=m, precision=p, batch=b, p50_ms=v, status="ok") for m, p, b, v in
            [("teacher", "fp32", 1, 10.0), ("s", "fp32", 1, 4.0), ("s", "int8", 1, 2.0), ("teacher", "fp32", 8, 80.0),
             ("s", "fp32", 8, 20.0)]]
    rows.append(dict(model="s", precision="fp16", batch=1, p50_ms=math.nan, status="skipped: no GPU"))
    add_speedups(rows, "teacher")
    assert [r.get("speedup_vs_teacher") for r in rows[:5]] == [1.0, 2.5, 5.0, 1.0, 4.0]
    assert math.isnan(rows[2]["speedup_same_precision"])  # no int8 teacher row
    assert "speedup_vs_teacher" not in rows[5]


def test_models_alternate_during_timing(models):
    copies = tiny_models((2, 1))
    log = call_log(copies)
    warmup, repeats = 2, 3
    benchmark_models(copies, batch_sizes=[1], seq_len=8, precisions=["fp32"], warmup=warmup, repeats=repeats,
                     num_threads=1, measure_disk=False)
    timed = log[-2 * (warmup + repeats):]  # memory/output checks run first, then the round-robin
    assert timed == ["teacher", "student-1L"] * (warmup + repeats)


def test_round_robin_order_and_fake_clock():
    calls, ticks = [], itertools.count()
    steps = [lambda: calls.append("a"), lambda: calls.append("b"), lambda: calls.append("c")]
    times = round_robin(steps, warmup=1, repeats=2, clock=lambda: next(ticks) * 0.001)
    assert calls == ["a", "b", "c"] * 3
    np.testing.assert_allclose(times, [[1.0, 1.0]] * 3)  # each call spans one 1 ms tick; warm-up dropped


def test_latency_stats():
    stats = latency_stats([1.0, 2.0, 3.0, 4.0, 100.0], batch_size=4)
    assert stats["p50_ms"] == 3.0 and stats["p50_ms"] <= stats["p95_ms"] <= stats["p99_ms"] <= 100.0
    assert stats["mean_ms"] == 22.0 and stats["samples_per_s"] == pytest.approx(4000 / 22)


@pytest.mark.parametrize("kwargs, message", [
    (dict(batch_size=0), "batch size"),
    (dict(batch_size=-2), "batch size"),
    (dict(seq_len=0), "seq_len"),
    (dict(seq_len=129), "max_position_embeddings"),
    (dict(precision="bf16"), "unknown precision"),
    (dict(device="tpu"), "unknown device"),
    (dict(repeats=0), "repeats"),
    (dict(num_threads=0), "num_threads"),
])
def test_bad_input_raises_before_anything_runs(kwargs, message):
    copies = tiny_models((1,))
    log = call_log(copies)
    args = {"model": copies["teacher"], "batch_size": 1, "seq_len": 8, **kwargs}
    with pytest.raises(KDLabError, match=message):
        time_forward(**args)
    assert log == []


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU message")
def test_cuda_without_gpu_raises(models):
    with pytest.raises(KDLabError, match="no CUDA GPU"):
        time_forward(models["teacher"], 1, 8, device="cuda")


def test_fp16_on_cpu_is_a_skipped_row_not_fp32(models):
    row = time_forward(models["teacher"], 1, 8, precision="fp16", **FAST)
    assert row["status"].startswith("skipped:") and "CUDA" in row["status"]
    assert math.isnan(row["p50_ms"]) and row["precision"] == "fp16"


def test_int8_replaces_linear_layers_and_keeps_predictions(models):
    model = models["teacher"]
    n_linear = sum(isinstance(m, nn.Linear) for m in model.modules())
    quantized = quantize_int8(model)
    assert sum(is_int8_linear(m) for m in quantized.modules()) == n_linear
    assert not any(type(m) is nn.Linear for m in quantized.modules())
    assert all(type(m) is nn.Linear for m in model.modules() if isinstance(m, nn.Linear))  # original untouched
    ids = torch.randint(0, model.config.vocab_size, (64, 12), generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        ref, out = model(input_ids=ids).logits, quantized(input_ids=ids).logits
    assert (ref.argmax(-1) == out.argmax(-1)).float().mean() >= 0.9
    assert (out - ref).abs().max() < 0.05
    assert state_dict_bytes(quantized) < state_dict_bytes(model)
    assert saved_size_bytes(quantized) > 0


def test_onnx_row_really_exports_and_matches_torch():
    """onnx, onnxscript and onnxruntime are test dependencies (setup.sh --dev): the export must really run."""
    row = time_forward(tiny_models((1,))["teacher"], 2, 8, precision="onnx", **FAST)
    assert row["status"] == "ok", row["status"]
    assert row["max_abs_diff"] <= 1e-4 and row["p50_ms"] > 0
    assert "onnxruntime" in row["memory_method"] and math.isnan(row["peak_mem_MB"])


def test_onnx_row_names_missing_packages(monkeypatch):
    monkeypatch.setattr("kdlab.measurement.benchmark.onnx_missing", lambda: "needs onnxruntime (pip install onnxruntime)")
    row = time_forward(tiny_models((1,))["teacher"], 2, 8, precision="onnx", **FAST)
    assert row["status"] == "skipped: onnx needs onnxruntime (pip install onnxruntime)"


def test_naive_attention_term_equals_hooked_one(models):
    teacher, student = (copy.deepcopy(models[k]) for k in ("teacher", "student-1L"))
    for m in (teacher, student):
        m.set_attn_implementation("eager")
    batch = training_batches(3, 10, teacher.config.vocab_size, 2)[1]
    features = {k: batch[k] for k in ("input_ids", "attention_mask")}
    with torch.no_grad(), QKVCapture(student) as s_cap, QKVCapture(teacher) as t_cap:
        s_out = student(**features, output_attentions=True)
        t_out = teacher(**features, output_attentions=True)
        hooked = attention_distribution_loss(*s_cap.qkv()[:2], *t_cap.qkv()[:2], batch["attention_mask"])
    naive = attention_kl_from_probs(s_out.attentions[-1], t_out.attentions[-1], batch["attention_mask"])
    assert naive.item() == pytest.approx(hooked.item(), rel=1e-3, abs=1e-7)


def test_train_step_benchmark_five_measurements(models):
    before = models["student-1L"].state_dict()["classifier.weight"].clone()
    result = train_step_benchmark(models["teacher"], models["student-1L"], batch_size=2, seq_len=8, warmup=1,
                                  repeats=2, num_threads=1)
    assert list(result.table["step"]) == list(TRAIN_STEPS) == ["a", "b", "c", "d", "e"]
    assert result.table["p50_ms"].gt(0).all()
    p50 = dict(zip(result.table["step"], result.table["p50_ms"]))
    assert result.ratios["minilm / (ce + teacher)"] == pytest.approx(p50["d"] / (p50["a"] + p50["b"]))
    assert result.ratios["minilm / naive minilm"] == pytest.approx(p50["d"] / p50["e"])
    assert result.settings["threads"] == 1
    for model in models.values():  # the caller's models are neither switched to eager nor trained
        assert model.config._attn_implementation != "eager"
    assert torch.equal(models["student-1L"].state_dict()["classifier.weight"], before)


def test_padding_table_counts():
    table = padding_table([2, 4, 6, 200], batch_size=2, max_length=10).set_index("strategy")
    real = 2 + 4 + 6 + 10  # 200 is truncated to 10
    assert table.loc["fixed to 10", "padded_per_batch"] == 20
    assert table.loc["dynamic, length-grouped", "padded_per_batch"] == (2 * 10 + 2 * 4) / 2  # [10, 6], [4, 2]
    assert table["real_per_batch"].eq(real / 2).all()
    assert table.loc["fixed to 10", "pad_fraction"] == pytest.approx(1 - real / 40)
    with pytest.raises(KDLabError):
        padding_table([], batch_size=2)


def test_markdown_table_blanks_nan():
    import pandas as pd

    text = markdown_table(pd.DataFrame({"a": [1.23456, math.nan], "b": ["x|y", "z"]}))
    assert text.splitlines()[0] == "| a | b |" and "| 1.23 | x\\|y |" in text and "|  | z |" in text


def load_script(name: str):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_inference_script_quick_appends_a_section(tmp_path):
    out = tmp_path / "BENCH.md"
    script = load_script("inference")
    argv = ["--quick", "--batch-sizes", "1", "--repeats", "1", "--warmup", "0", "--output", str(out)]
    table = script.main(argv + ["--precisions", "fp32,int8"])
    script.main(argv + ["--precisions", "fp32"])
    text = out.read_text()
    assert text.count("Inference latency (quick)") == 2  # appended, not overwritten
    assert "command: `python benchmarks/inference.py --quick" in text and "torch threads: 1" in text
    assert "| model | precision | batch | p50_ms" in text and "INT8 teacher on disk" in text
    assert set(table["model"]) == {"teacher", "student-6L", "student-4L"}


def test_train_step_script_quick_appends_a_section(tmp_path):
    out = tmp_path / "BENCH.md"
    script = load_script("train_step")
    result, padding = script.main(["--quick", "--repeats", "1", "--warmup", "0", "--layers", "2,1",
                                   "--data", str(tmp_path / "no-such-folder"), "--output", str(out)])
    text = out.read_text()
    assert "Training step (quick)" in text and "minilm / naive minilm" in text
    assert "synthetic sentences" in text and len(padding) == 3
    assert len(result.table) == 5


def test_real_sentence_inputs_are_the_same_for_every_model(tiny_tokenizer):
    """Each model of one batch size is timed on the same drawn sentences (not a fresh draw per model, which made
    latency ratios depend on which sentences each model happened to get)."""
    from kdlab.measurement.benchmark import real_length_inputs

    sentences = [" ".join(["good"] * n) for n in range(1, 40)]
    models = tiny_models((2, 1), vocab_size=len(tiny_tokenizer))
    table = benchmark_models(models, (1, 4), 64, ("fp32", "int8"), warmup=1, repeats=2, measure_disk=False,
                             inputs=real_length_inputs(tiny_tokenizer, sentences, 64, count=2, seed=3))
    for _, rows in table.groupby("batch"):
        assert rows["seq"].nunique() == 1
