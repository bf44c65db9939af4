"""Inference benchmark: latency, memory and size per model and precision (the cost of a training step is in
``kdlab.measurement.train_step``; timing tools in ``kdlab.measurement.timing``, memory in ``kdlab.measurement.memory``).

What is measured, and how:

* **Latency** of one forward pass of a ``[batch, seq]`` batch of random token ids (attention mask all ones),
  under ``torch.inference_mode()``. Warm-up runs first, then ``repeats`` timed runs; the inputs rotate among
  4 pre-built batches so no run reuses the previous one's input. CPU: ``time.perf_counter`` around the call;
  CUDA: ``torch.cuda.synchronize()`` before and after the timed region. Reported: P50/P95/P99 and mean in ms,
  and samples/s = batch / mean latency.
* **Interleaving**: ``benchmark_models`` times every (model, precision) of one batch size round-robin
  (A B C A B C ...), warm-up included, so drift of the machine (another process, clock changes) hits all alike.
* **Peak memory** (``peak_mem_MB``) = bytes of the model's weights (its state_dict) + the peak of memory
  allocated by torch during one forward of that batch: on CUDA from ``torch.cuda.max_memory_allocated`` (minus
  what was allocated before the call), on the CPU from ``torch.profiler``'s allocation events. The
  ``memory_method`` column says which. onnxruntime's allocator is invisible to both: its rows say so, no number.
* **Disk size**: safetensors written by ``save_pretrained`` (fp32, fp16), ``torch.save`` of the quantized
  state_dict (int8), the exported .onnx file with its external data (onnx).
* **fp32 matmul**: the ``fp32_matmul`` column says whether CUDA fp32 rows ran true IEEE fp32 (``ieee``) or were
  allowed TensorFloat-32 (``tf32``, set by ``torch.backends.cuda.matmul.allow_tf32`` or
  ``torch.set_float32_matmul_precision``): the two differ ~3× on an H100.
* **Speedup**: ``speedup_vs_teacher`` = the reference model's (the teacher's, by default the first model) fp32
  P50 at the same batch size / the row's P50; ``speedup_same_precision`` uses the teacher at the row's own
  precision.

Precisions: ``fp32``; ``fp16`` (CUDA only, ``.half()``); ``int8`` (CPU only,
``kdlab.measurement.quantize.quantize_int8``);
``onnx`` (CPU only: ``torch.onnx.export`` + onnxruntime, needs ``onnx``, ``onnxscript``, ``onnxruntime``;
outputs checked against torch within ``ONNX_TOLERANCE``). A combination that cannot run gives a row whose
``status`` is ``skipped: <reason>``, never a silent fp32 run.
"""

from __future__ import annotations

import copy
import gc
import math
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import torch
from torch import nn
from transformers import BertConfig, BertForSequenceClassification
from transformers.utils import logging as hf_logging

from kdlab.errors import KDLabError
from kdlab.measurement.memory import MB, peak_memory
from kdlab.measurement.onnx_export import ONNX_TOLERANCE, export_onnx, onnx_missing
from kdlab.measurement.quantize import quantize_int8, saved_size_bytes
from kdlab.measurement.timing import (
    device_name,
    latency_stats,
    random_batches,
    resolve_device,
    rotating,
    round_robin,
    sync_for,
    torch_threads,
)
from kdlab.models.student import count_parameters, init_student_from_teacher

PRECISIONS = ("fp32", "fp16", "int8", "onnx")
COLUMNS = [
    "model", "layers", "precision", "device", "threads", "batch", "seq", "p50_ms", "p95_ms", "p99_ms", "mean_ms",
    "samples_per_s", "peak_mem_MB", "memory_method", "params", "disk_MB", "max_abs_diff", "speedup_vs_teacher",
    "speedup_same_precision", "fp32_matmul", "status",
]
TIMING_KEYS = ("p50_ms", "p95_ms", "p99_ms", "mean_ms", "samples_per_s")


# --- checks -------------------------------------------------------------------------------------------------
def check_timing_args(models: dict, batch_sizes, seq_len: int, precisions, device, warmup: int, repeats: int,
                      num_threads: int | None) -> torch.device:
    """Raise KDLabError for input no benchmark can use, before anything runs. Returns the torch.device."""
    if not models:
        raise KDLabError("no models to benchmark: pass a dict {name: model}.")
    for batch in batch_sizes:
        if not isinstance(batch, (int, np.integer)) or batch < 1:
            raise KDLabError(f"batch size {batch!r} must be an integer >= 1.")
    if not isinstance(seq_len, (int, np.integer)) or seq_len < 1:
        raise KDLabError(f"seq_len {seq_len!r} must be an integer >= 1.")
    for name, model in models.items():
        limit = getattr(getattr(model, "config", None), "max_position_embeddings", None)
        if limit is not None and seq_len > limit:
            raise KDLabError(f"seq_len={seq_len} is longer than {name}'s max_position_embeddings={limit}.")
    unknown = [p for p in precisions if p not in PRECISIONS]
    if unknown or not precisions:
        raise KDLabError(f"unknown precision(s) {unknown or precisions}: choose from {', '.join(PRECISIONS)}.")
    if warmup < 0 or repeats < 1:
        raise KDLabError(f"warmup={warmup}, repeats={repeats}: need warmup >= 0 and repeats >= 1.")
    if num_threads is not None and num_threads < 1:
        raise KDLabError(f"num_threads={num_threads} must be >= 1 (or None for torch's default).")
    return resolve_device(device)

# --- engines: one model at one precision, ready to run -------------------------------------------------------
@dataclass
class Engine:
    """A model prepared for one precision. ``run(batch)`` → logits ``[B, C]`` (a tensor on the CPU or device)."""

    precision: str
    run: Callable[[dict], torch.Tensor] | None = None
    module: nn.Module | None = None  # the torch module that runs (None for onnx)
    status: str = "ok"
    disk_bytes: Callable[[], int] | None = None  # measured only when asked (writes files)
    cleanup: Callable[[], None] = field(default=lambda: None)


def _logits_runner(module: nn.Module) -> Callable[[dict], torch.Tensor]:
    def run(batch: dict) -> torch.Tensor:
        return module(**batch).logits

    return run


def _safetensors_bytes(module: nn.Module) -> int:
    """Size of the weights ``save_pretrained`` writes (safetensors), in bytes."""
    bars_were_on = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # save_pretrained shows a "Writing model shards" bar
    try:
        with tempfile.TemporaryDirectory() as tmp:
            module.save_pretrained(tmp)
            return sum(p.stat().st_size for p in Path(tmp).glob("*.safetensors"))
    finally:
        if bars_were_on:
            hf_logging.enable_progress_bar()


def _on_device(model: nn.Module, device: torch.device, dtype: torch.dtype = torch.float32) -> nn.Module:
    """The model itself when it already lives on ``device`` in ``dtype``, else a copy moved and cast there: the
    caller's model keeps its device and dtype (an fp16 teacher on CUDA is not turned into fp32 in place)."""
    param = next(model.parameters())
    same_device = param.device == device or (device.type == "cuda" and param.device.type == "cuda"
                                             and device.index is None)
    same_dtype = all(p.dtype == dtype for p in model.parameters() if p.is_floating_point())
    if same_device and same_dtype:
        return model.eval()
    return copy.deepcopy(model).to(device=device, dtype=dtype).eval()

def _onnx_engine(model: nn.Module, seq_len: int, num_threads: int | None) -> Engine:
    tmp = tempfile.TemporaryDirectory()
    path = Path(tmp.name) / "model.onnx"
    cpu_model = model if next(model.parameters()).device.type == "cpu" else copy.deepcopy(model).cpu()
    try:
        session = export_onnx(cpu_model.float().eval(), path, seq_len, num_threads)
    except Exception:
        tmp.cleanup()
        raise
    size = sum(p.stat().st_size for p in Path(tmp.name).iterdir())

    def run(batch: dict) -> torch.Tensor:
        feeds = {k: v.cpu().numpy() for k, v in batch.items()}
        return torch.from_numpy(session.run(["logits"], feeds)[0])

    return Engine("onnx", run=run, disk_bytes=lambda: size, cleanup=tmp.cleanup)

def prepare_engine(model: nn.Module, precision: str, device: torch.device, seq_len: int,
                   num_threads: int | None = None) -> Engine:
    """Get ``model`` ready to time at ``precision`` on ``device``, or an Engine whose status says why not."""
    if precision == "fp32":
        module = _on_device(model, device, torch.float32)
        return Engine("fp32", run=_logits_runner(module), module=module, disk_bytes=lambda: _safetensors_bytes(module))
    if precision == "fp16":
        if device.type != "cuda":
            return Engine("fp16", status="skipped: fp16 is timed on CUDA only (no fast fp16 matmul on this CPU)")
        module = _on_device(model, device, torch.float16)
        return Engine("fp16", run=_logits_runner(module), module=module, disk_bytes=lambda: _safetensors_bytes(module))
    if precision == "int8":
        if device.type != "cpu":
            return Engine("int8", status="skipped: dynamic int8 quantization runs on the CPU only")
        module = quantize_int8(model)
        return Engine("int8", run=_logits_runner(module), module=module, disk_bytes=lambda: saved_size_bytes(module))
    if precision == "onnx":
        if device.type != "cpu":
            return Engine("onnx", status="skipped: onnx rows use onnxruntime's CPU provider; run with device='cpu'")
        missing = onnx_missing()
        if missing:
            return Engine("onnx", status=f"skipped: onnx {missing}")
        try:
            return _onnx_engine(model, seq_len, num_threads)
        except Exception as exc:  # an exporter failure must not cost the other rows
            return Engine("onnx", status=f"skipped: onnx export failed ({type(exc).__name__}: {str(exc)[:200]})")
    raise KDLabError(f"unknown precision {precision!r}: choose from {', '.join(PRECISIONS)}.")

# --- the benchmark --------------------------------------------------------------------------------------------
def _layers(model: nn.Module) -> int | None:
    return getattr(getattr(model, "config", None), "num_hidden_layers", None)


def fp32_matmul_mode(device: torch.device) -> str:
    """How fp32 matrix products run on ``device``: ``"tf32"`` when CUDA may use TensorFloat-32 (10-bit mantissa,
    several times faster on Ampere and later), ``"ieee"`` for true fp32; ``"ieee"`` on the CPU."""
    if device.type != "cuda":
        return "ieee"
    return "tf32" if _cuda_tf32_allowed() else "ieee"


def _cuda_tf32_allowed() -> bool:
    return bool(torch.backends.cuda.matmul.allow_tf32) or torch.get_float32_matmul_precision() != "highest"


def _empty_row(**values) -> dict:
    row = dict.fromkeys(COLUMNS, math.nan)
    row.update(memory_method="", status="ok")
    row.update(values)
    return row


def _max_abs_diff(engine: Engine, reference: nn.Module, batch: dict) -> float:
    """max |engine logits − fp32 torch logits| on ``batch`` (0 for the fp32 engine itself)."""
    if engine.precision == "fp32":
        return 0.0
    with torch.inference_mode():
        ref = reference(**batch).logits.float().cpu()
        out = engine.run(batch).float().cpu()
    return float((out - ref).abs().max())


def _rows_for_batch(models: dict, engines: dict, batch_size: int, seq_len: int, device: torch.device,
                    threads: int, warmup: int, repeats: int, vocab_size: int | None, inputs=None) -> list[dict]:
    """Rows of one batch size: check outputs, measure memory, then time every ready engine round-robin."""
    rows, steps = [], []
    dev_name = device_name(device)
    # Real-sentence inputs are drawn once per batch size: every model is timed on the same sentences.
    shared = None if inputs is None else [{k: v.to(device) for k, v in b.items()} for b in inputs(batch_size)]
    for (name, precision), engine in engines.items():
        model = models[name]
        row = _empty_row(model=name, layers=_layers(model), precision=precision, device=dev_name, threads=threads,
                         batch=batch_size, seq=seq_len, params=count_parameters(model), status=engine.status,
                         fp32_matmul=fp32_matmul_mode(device) if precision == "fp32" else "")
        rows.append(row)
        if engine.status != "ok":
            continue
        vocab = vocab_size or model.config.vocab_size
        if inputs is None:
            batches = random_batches(batch_size, seq_len, vocab, device)
        else:
            batches = shared
            row["seq"] = float(np.mean([b["input_ids"].shape[1] for b in batches]))  # mean padded length
        reference = engines[(name, "fp32")].module if (name, "fp32") in engines else _on_device(model, device)
        row["max_abs_diff"] = _max_abs_diff(engine, reference, batches[0])
        if precision == "onnx" and not row["max_abs_diff"] <= ONNX_TOLERANCE:
            row["status"] = f"skipped: onnx logits differ from torch by {row['max_abs_diff']:.2e} > {ONNX_TOLERANCE}"
            continue
        row["peak_mem_MB"], row["memory_method"] = peak_memory(engine.module, lambda: engine.run(batches[0]), device)
        steps.append((row, rotating(engine.run, batches)))
    with torch.inference_mode():
        times = round_robin([step for _, step in steps], warmup, repeats, sync=sync_for(device))
    for (row, _), ms in zip(steps, times):
        row.update(latency_stats(ms, batch_size))
    return rows


def add_speedups(rows: list[dict], reference: str) -> None:
    """Fill ``speedup_vs_teacher`` (reference fp32 P50 / row P50, same batch) and ``speedup_same_precision``."""
    p50 = {(r["model"], r["precision"], r["batch"]): r["p50_ms"] for r in rows if r["status"] == "ok"}
    for r in rows:
        if r["status"] != "ok":
            continue
        ref32 = p50.get((reference, "fp32", r["batch"]))
        same = p50.get((reference, r["precision"], r["batch"]))
        r["speedup_vs_teacher"] = ref32 / r["p50_ms"] if ref32 else math.nan
        r["speedup_same_precision"] = same / r["p50_ms"] if same else math.nan


def benchmark_models(
    models: dict[str, nn.Module],
    batch_sizes=(1, 32),
    seq_len: int = 128,
    precisions=("fp32",),
    device: str = "cpu",
    warmup: int = 5,
    repeats: int = 50,
    num_threads: int | None = None,
    reference: str | None = None,
    vocab_size: int | None = None,
    measure_disk: bool = True,
    inputs=None,
):
    """Latency, memory and size of every model at every precision and batch size → a pandas DataFrame.

    One row per (model, precision, batch), columns ``COLUMNS``. All (model, precision) pairs of one batch size
    are timed round-robin, ``warmup`` rounds then ``repeats`` timed rounds. ``reference`` names the teacher
    for the speedup columns (default: the first model). ``num_threads`` is set for the run and restored after;
    the ``threads`` column reports it. ``measure_disk=False`` skips writing the weights to measure ``disk_MB``.
    ``inputs(batch_size) -> [batch, ...]`` replaces the random ``seq_len`` batches (``real_length_inputs``: real
    sentences, dynamic padding; the ``seq`` column then holds the mean padded length).
    """
    precisions = list(precisions)
    batch_sizes = list(batch_sizes)
    dev = check_timing_args(models, batch_sizes, seq_len, precisions, device, warmup, repeats, num_threads)
    reference = reference or next(iter(models))
    if reference not in models:
        raise KDLabError(f"reference model {reference!r} is not one of {list(models)}.")
    rows: list[dict] = []
    with torch_threads(num_threads) as threads:
        engines = {(name, p): prepare_engine(m, p, dev, seq_len, threads) for name, m in models.items() for p in precisions}
        try:
            disk = {key: (e.disk_bytes() / MB if measure_disk and e.disk_bytes else math.nan) for key, e in engines.items()}
            for batch_size in batch_sizes:
                batch_rows = _rows_for_batch(models, engines, batch_size, seq_len, dev, threads, warmup, repeats,
                                             vocab_size, inputs)
                for row in batch_rows:
                    row["disk_MB"] = disk[(row["model"], row["precision"])]
                rows.extend(batch_rows)
                gc.collect()
        finally:
            for engine in engines.values():
                engine.cleanup()
    add_speedups(rows, reference)
    return pd.DataFrame(rows, columns=COLUMNS)


def real_length_inputs(tokenizer, sentences: list[str], max_length: int = 128, count: int = 4, seed: int = 0):
    """``inputs`` for ``benchmark_models``: ``count`` batches of real sentences drawn at random (seeded), each
    padded to its own longest sentence as the lab's evaluation pads them — SST-2 sentences are short, so this is
    the latency a deployed model sees, unlike random ids padded to 128."""
    rng = np.random.default_rng(seed)

    def make(batch_size: int) -> list[dict]:
        batches = []
        for _ in range(count):
            picks = rng.choice(len(sentences), size=batch_size, replace=batch_size > len(sentences))
            chosen = [sentences[i] for i in picks]
            enc = tokenizer(chosen, truncation=True, max_length=max_length, padding=True, return_tensors="pt")
            batches.append({"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]})
        return batches

    return make


def time_forward(model: nn.Module, batch_size: int, seq_len: int, device: str = "cpu", precision: str = "fp32",
                 warmup: int = 5, repeats: int = 50, num_threads: int | None = None,
                 vocab_size: int | None = None) -> dict:
    """Latency of one model at one precision and batch size: a row dict with P50/P95/P99/mean ms, samples/s,
    peak memory (``memory_method`` says how), ``max_abs_diff`` vs fp32 logits, and ``status``
    (``ok`` or ``skipped: reason``). Disk size is not measured here (``disk_MB`` is NaN)."""
    table = benchmark_models({"model": model}, [batch_size], seq_len, [precision], device, warmup, repeats,
                             num_threads, vocab_size=vocab_size, measure_disk=False)
    return table.iloc[0].to_dict()

# --- models -------------------------------------------------------------------------------------------------
def bert_base_models(layers=(12, 6, 4), num_labels: int = 2, seed: int = 0, **sizes) -> dict[str, nn.Module]:
    """``{"teacher": 12L, "student-6L": ..., "student-4L": ...}``: BertForSequenceClassification at BERT-base
    dimensions (hidden 768, 12 heads, FFN 3072, vocab 30522, 512 positions) with random weights — speed does
    not depend on the values. The first entry of ``layers`` is the teacher; the students are cut from it with
    ``kdlab.models.student.init_student_from_teacher`` (alternate layers). ``sizes`` overrides BertConfig fields
    (e.g. ``hidden_size=32`` for tests)."""
    teacher_layers, *student_layers = layers
    torch.manual_seed(seed)
    config = BertConfig(num_hidden_layers=teacher_layers, num_labels=num_labels, **sizes)
    teacher = BertForSequenceClassification(config).eval()
    models = {"teacher": teacher}
    for n in student_layers:
        models[f"student-{n}L"] = init_student_from_teacher(teacher, n)
    return models


def tiny_models(layers=(4, 2, 1), **sizes) -> dict[str, nn.Module]:
    """Like ``bert_base_models`` but tiny (hidden 32, 4 heads, FFN 64, vocab 1000, 128 positions): for tests
    and ``--quick`` runs, where only the code path matters."""
    tiny = dict(hidden_size=32, num_attention_heads=4, intermediate_size=64, vocab_size=1000,
                max_position_embeddings=128)
    return bert_base_models(layers, **{**tiny, **sizes})
