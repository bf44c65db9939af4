"""Measuring instruments: inference latency, memory and size per model and precision; cost of a training step.

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
* **Disk size**: safetensors written by ``save_pretrained`` (fp32, fp16), ``torch.save`` of the quantised
  state_dict (int8), the exported .onnx file with its external data (onnx).
* **Speedup**: ``speedup_vs_teacher`` = the reference model's (the teacher's, by default the first model) fp32
  P50 at the same batch size / the row's P50; ``speedup_same_precision`` uses the teacher at the row's own
  precision.

Precisions: ``fp32``; ``fp16`` (CUDA only, ``.half()``); ``int8`` (CPU only, ``kdlab.quantize.quantize_int8``);
``onnx`` (CPU only: ``torch.onnx.export`` + onnxruntime, needs ``onnx``, ``onnxscript``, ``onnxruntime``;
outputs checked against torch within ``ONNX_TOLERANCE``). A combination that cannot run gives a row whose
``status`` is ``skipped: <reason>``, never a silent fp32 run.
"""

from __future__ import annotations

import contextlib
import copy
import datetime
import gc
import itertools
import logging
import math
import os
import platform
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from kdlab.capture import QKVCapture, num_heads
from kdlab.errors import KDLabError
from kdlab.losses import DistillationLoss, kd_loss, value_relation_loss
from kdlab.quantize import quantize_int8, saved_size_bytes, state_dict_bytes
from kdlab.student import count_parameters, init_student_from_teacher

PRECISIONS = ("fp32", "fp16", "int8", "onnx")
ONNX_TOLERANCE = 1e-4  # max |logit difference| allowed between onnxruntime and torch fp32
NUM_INPUT_BATCHES = 4  # pre-built random batches the timed runs rotate through
COLUMNS = [
    "model", "layers", "precision", "device", "threads", "batch", "seq", "p50_ms", "p95_ms", "p99_ms", "mean_ms",
    "samples_per_s", "peak_mem_MB", "memory_method", "params", "disk_MB", "max_abs_diff", "speedup_vs_teacher",
    "speedup_same_precision", "status",
]
TIMING_KEYS = ("p50_ms", "p95_ms", "p99_ms", "mean_ms", "samples_per_s")
MB = 2**20


# --- machine ------------------------------------------------------------------------------------------------
def cpu_name() -> str:
    """The CPU model from /proc/cpuinfo (Linux), else what ``platform`` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def cpu_cores() -> int:
    """Cores this process may run on (the affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def device_name(device: str | torch.device = "cpu") -> str:
    """The GPU's name for a CUDA device, the CPU model otherwise."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return cpu_name()


def machine_summary(device: str | torch.device = "cpu", threads: int | None = None) -> dict:
    """What a benchmark ran on: device name, cores, torch threads, 1-minute load average, versions, date."""
    import transformers

    info = {
        "date": datetime.datetime.now().strftime("%Y-%m-%d %H:%M"),
        "device": device_name(device),
        "cpu": cpu_name(),
        "cores": cpu_cores(),
        "threads": threads or torch.get_num_threads(),
        "load_avg_1min": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "python": platform.python_version(),
    }
    try:
        import onnxruntime

        info["onnxruntime"] = onnxruntime.__version__
    except ImportError:
        info["onnxruntime"] = None
    return info


@contextlib.contextmanager
def torch_threads(num_threads: int | None):
    """Within the block torch uses ``num_threads`` intra-op threads (None: leave as is); restored afterwards.

    Yields the thread count in force.
    """
    before = torch.get_num_threads()
    if num_threads is not None:
        torch.set_num_threads(num_threads)
    try:
        yield torch.get_num_threads()
    finally:
        torch.set_num_threads(before)


# --- checks -------------------------------------------------------------------------------------------------
def resolve_device(device: str | torch.device) -> torch.device:
    """``'cpu'``, ``'cuda'`` or ``'cuda:N'`` as a torch.device; KDLabError for anything else or a missing GPU."""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise KDLabError(f"unknown device {device!r}: use 'cpu' or 'cuda'.") from exc
    if dev.type not in ("cpu", "cuda"):
        raise KDLabError(f"unknown device {device!r}: kdlab benchmarks run on 'cpu' or 'cuda'.")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise KDLabError(f"device {device!r} was asked for but no CUDA GPU is visible (torch.cuda.is_available() "
                         "is False): use device='cpu'.")
    return dev


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


# --- inputs and statistics --------------------------------------------------------------------------------
def random_batches(batch_size: int, seq_len: int, vocab_size: int, device="cpu", count: int = NUM_INPUT_BATCHES,
                   seed: int = 0) -> list[dict[str, torch.Tensor]]:
    """``count`` batches ``{"input_ids": [B, S] int64 in 0..vocab-1, "attention_mask": [B, S] ones}``."""
    gen = torch.Generator().manual_seed(seed)
    batches = []
    for _ in range(count):
        ids = torch.randint(0, vocab_size, (batch_size, seq_len), generator=gen)
        batches.append({"input_ids": ids.to(device), "attention_mask": torch.ones_like(ids).to(device)})
    return batches


def latency_stats(times_ms: list[float], batch_size: int) -> dict:
    """P50/P95/P99/mean in ms (linear-interpolated percentiles, so P50 <= P95 <= P99) and samples/s."""
    t = np.asarray(times_ms, dtype=float)
    p50, p95, p99 = np.percentile(t, [50, 95, 99])
    mean = float(t.mean())
    return {"p50_ms": float(p50), "p95_ms": float(p95), "p99_ms": float(p99), "mean_ms": mean,
            "samples_per_s": batch_size * 1000.0 / mean if mean > 0 else math.inf}


def round_robin(steps: list[Callable[[], object]], warmup: int, repeats: int, sync: Callable[[], None] = lambda: None,
                clock: Callable[[], float] = time.perf_counter) -> list[list[float]]:
    """Run ``warmup + repeats`` rounds; each round calls every step once, in order (A B C A B C ...).

    Each call is timed alone: ``sync(); t0 = clock(); step(); sync(); t1 = clock()``. Warm-up rounds are not
    recorded. Returns one list of ``repeats`` times in milliseconds per step.
    """
    times: list[list[float]] = [[] for _ in steps]
    for rnd in range(warmup + repeats):
        for i, step in enumerate(steps):
            sync()
            start = clock()
            step()
            sync()
            end = clock()
            if rnd >= warmup:
                times[i].append((end - start) * 1000.0)
    return times


def _sync_for(device: torch.device) -> Callable[[], None]:
    return torch.cuda.synchronize if device.type == "cuda" else (lambda: None)


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
    from transformers.utils import logging as hf_logging

    bars_were_on = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # save_pretrained shows a "Writing model shards" bar
    try:
        with tempfile.TemporaryDirectory() as tmp:
            module.save_pretrained(tmp)
            return sum(p.stat().st_size for p in Path(tmp).glob("*.safetensors"))
    finally:
        if bars_were_on:
            hf_logging.enable_progress_bar()


def _on_device(model: nn.Module, device: torch.device) -> nn.Module:
    """The model itself when it already lives on ``device``, else a copy moved there (the caller's stays put)."""
    param = next(model.parameters())
    if param.device == device or (device.type == "cuda" and param.device.type == "cuda" and device.index is None):
        return model.eval()
    return copy.deepcopy(model).to(device).eval()


def onnx_missing() -> str | None:
    """None when onnx export + onnxruntime can run here, else which packages are missing."""
    import importlib.util

    missing = [m for m in ("onnx", "onnxscript", "onnxruntime") if importlib.util.find_spec(m) is None]
    return f"needs {', '.join(missing)} (pip install onnx onnxscript onnxruntime)" if missing else None


class _LogitsOnly(nn.Module):
    """``(input_ids [B, S], attention_mask [B, S]) → logits [B, C]``: the signature exported to ONNX."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, input_ids, attention_mask):
        return self.model(input_ids=input_ids, attention_mask=attention_mask).logits


def export_onnx(model: nn.Module, path: str | Path, seq_len: int, num_threads: int | None = None):
    """Export ``model`` (CPU, fp32) to ``path`` with a dynamic batch dimension and open it in onnxruntime.

    Exported with ``torch.onnx.export(dynamo=True)`` at batch 2 (a batch of 1 would be specialised) and the
    given ``seq_len``. Returns the ``onnxruntime.InferenceSession`` (CPU, ``num_threads`` intra-op threads).
    """
    import warnings

    import onnxruntime as ort

    path = Path(path)
    example = random_batches(2, seq_len, model.config.vocab_size, count=1)[0]
    batch = torch.export.Dim("batch")
    # The exporter reports progress and harmless notes (missing torchvision ops, constant folding) on
    # stdout/stderr; a real failure still raises.
    with warnings.catch_warnings(), open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink), \
            contextlib.redirect_stderr(sink):
        warnings.simplefilter("ignore")
        onnx_logger = logging.getLogger("torch.onnx")
        level = onnx_logger.level
        onnx_logger.setLevel(logging.ERROR)
        try:
            torch.onnx.export(
                _LogitsOnly(model).eval(), (example["input_ids"], example["attention_mask"]), str(path),
                input_names=["input_ids", "attention_mask"], output_names=["logits"],
                dynamic_shapes={"input_ids": {0: batch}, "attention_mask": {0: batch}}, dynamo=True, verbose=False,
            )
        finally:
            onnx_logger.setLevel(level)
    options = ort.SessionOptions()
    options.log_severity_level = 3
    if num_threads:
        options.intra_op_num_threads = num_threads
        options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


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
        module = _on_device(model, device).float()
        return Engine("fp32", run=_logits_runner(module), module=module, disk_bytes=lambda: _safetensors_bytes(module))
    if precision == "fp16":
        if device.type != "cuda":
            return Engine("fp16", status="skipped: fp16 is timed on CUDA only (no fast fp16 matmul on this CPU)")
        module = copy.deepcopy(model).to(device).half().eval()
        return Engine("fp16", run=_logits_runner(module), module=module, disk_bytes=lambda: _safetensors_bytes(module))
    if precision == "int8":
        if device.type != "cpu":
            return Engine("int8", status="skipped: dynamic int8 quantisation runs on the CPU only")
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


# --- memory ---------------------------------------------------------------------------------------------------
@contextlib.contextmanager
def _quiet_fd2():
    """Send file descriptor 2 to /dev/null inside the block: kineto prints profiler_start/stop lines there."""
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def _cpu_forward_peak_bytes(run: Callable[[], object]) -> int:
    """Peak of (allocated − freed) CPU bytes seen by ``torch.profiler`` while ``run()`` executes."""
    from torch.profiler import ProfilerActivity, profile

    with _quiet_fd2(), profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        run()
    events = prof.profiler.kineto_results.events()
    allocations = sorted((e.start_ns(), e.nbytes()) for e in events if e.name() == "[memory]")
    return max(itertools.accumulate(n for _, n in allocations), default=0)


def peak_memory(engine: Engine, batch: dict, device: torch.device) -> tuple[float, str]:
    """(peak MB, method) of one forward: weights (state_dict bytes) + peak memory allocated during the call."""
    if engine.module is None:
        return math.nan, "not measured: onnxruntime allocates outside torch"
    weights = state_dict_bytes(engine.module)
    with torch.inference_mode():
        if device.type == "cuda":
            torch.cuda.synchronize(device)
            before = torch.cuda.memory_allocated(device)
            torch.cuda.reset_peak_memory_stats(device)
            engine.run(batch)
            torch.cuda.synchronize(device)
            extra = torch.cuda.max_memory_allocated(device) - before
            return (weights + extra) / MB, "weights + CUDA max_memory_allocated during forward"
        try:
            extra = _cpu_forward_peak_bytes(lambda: engine.run(batch))
        except Exception as exc:  # the profiler's event API is not a stable interface
            return math.nan, f"not measured: torch.profiler failed ({type(exc).__name__})"
    return (weights + extra) / MB, "weights + torch.profiler peak allocation during forward"


# --- the benchmark --------------------------------------------------------------------------------------------
def _layers(model: nn.Module) -> int | None:
    return getattr(getattr(model, "config", None), "num_hidden_layers", None)


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
                    threads: int, warmup: int, repeats: int, vocab_size: int | None) -> list[dict]:
    """Rows of one batch size: check outputs, measure memory, then time every ready engine round-robin."""
    rows, steps = [], []
    dev_name = device_name(device)
    for (name, precision), engine in engines.items():
        model = models[name]
        row = _empty_row(model=name, layers=_layers(model), precision=precision, device=dev_name, threads=threads,
                         batch=batch_size, seq=seq_len, params=count_parameters(model), status=engine.status)
        rows.append(row)
        if engine.status != "ok":
            continue
        vocab = vocab_size or model.config.vocab_size
        batches = random_batches(batch_size, seq_len, vocab, device)
        reference = engines[(name, "fp32")].module if (name, "fp32") in engines else _on_device(model, device)
        row["max_abs_diff"] = _max_abs_diff(engine, reference, batches[0])
        if precision == "onnx" and not row["max_abs_diff"] <= ONNX_TOLERANCE:
            row["status"] = f"skipped: onnx logits differ from torch by {row['max_abs_diff']:.2e} > {ONNX_TOLERANCE}"
            continue
        row["peak_mem_MB"], row["memory_method"] = peak_memory(engine, batches[0], device)
        steps.append((row, _rotating(engine.run, batches)))
    with torch.inference_mode():
        times = round_robin([step for _, step in steps], warmup, repeats, sync=_sync_for(device))
    for (row, _), ms in zip(steps, times):
        row.update(latency_stats(ms, batch_size))
    return rows


def _rotating(run: Callable[[dict], object], batches: list[dict]) -> Callable[[], object]:
    """A no-argument step calling ``run`` on the next batch each time (batches used in turn)."""
    cycle = itertools.cycle(batches)
    return lambda: run(next(cycle))


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
):
    """Latency, memory and size of every model at every precision and batch size → a pandas DataFrame.

    One row per (model, precision, batch), columns ``COLUMNS``. All (model, precision) pairs of one batch size
    are timed round-robin, ``warmup`` rounds then ``repeats`` timed rounds. ``reference`` names the teacher
    for the speedup columns (default: the first model). ``num_threads`` is set for the run and restored after;
    the ``threads`` column reports it. ``measure_disk=False`` skips writing the weights to measure ``disk_MB``.
    """
    import pandas as pd

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
                                             vocab_size)
                for row in batch_rows:
                    row["disk_MB"] = disk[(row["model"], row["precision"])]
                rows.extend(batch_rows)
                gc.collect()
        finally:
            for engine in engines.values():
                engine.cleanup()
    add_speedups(rows, reference)
    return pd.DataFrame(rows, columns=COLUMNS)


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
    ``kdlab.student.init_student_from_teacher`` (alternate layers). ``sizes`` overrides BertConfig fields
    (e.g. ``hidden_size=32`` for tests)."""
    from transformers import BertConfig, BertForSequenceClassification

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


# --- training steps -----------------------------------------------------------------------------------------
TRAIN_STEPS = {
    "a": "student CE step",
    "b": "teacher forward (no grad)",
    "c": "Hinton step (CE + KD)",
    "d": "MiniLM step (hooked Q/K/V, sdpa)",
    "e": "MiniLM step, naive (eager, output_attentions)",
}


def training_batches(batch_size: int, seq_len: int, vocab_size: int, num_labels: int, device="cpu",
                     count: int = NUM_INPUT_BATCHES, seed: int = 0) -> list[dict[str, torch.Tensor]]:
    """Random ``{"input_ids" [B, S], "attention_mask" [B, S], "labels" [B]}`` batches with padding: each row has
    a random real length in ``[S/2, S]`` (the first row is full), like a dynamically padded batch."""
    gen = torch.Generator().manual_seed(seed)
    batches = []
    for _ in range(count):
        ids = torch.randint(0, vocab_size, (batch_size, seq_len), generator=gen)
        lengths = torch.randint(max(1, seq_len // 2), seq_len + 1, (batch_size,), generator=gen)
        lengths[0] = seq_len
        mask = (torch.arange(seq_len)[None, :] < lengths[:, None]).long()
        labels = torch.randint(0, num_labels, (batch_size,), generator=gen)
        batches.append({k: v.to(device) for k, v in
                        {"input_ids": ids * mask, "attention_mask": mask, "labels": labels}.items()})
    return batches


def attention_kl_from_probs(a_s: torch.Tensor, a_t: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """MiniLM attention transfer from attention *probabilities* (as returned with ``output_attentions=True``).

        L = mean_batch mean_{heads, real queries} Σ_{real keys} A_t (log A_t − log A_s)

    a_s, a_t: ``[B, H, S, S]``; attention_mask ``[B, S]``. Equals ``losses.attention_distribution_loss`` on the
    Q/K that produced the maps (without dropout), computed the naive way.
    """
    mask = attention_mask.bool()
    key_mask = mask[:, None, None, :]
    a_s, a_t = a_s.float(), a_t.detach().float()
    kl = (a_t * (a_t.clamp_min(1e-30).log() - a_s.clamp_min(1e-30).log())).masked_fill(~key_mask, 0.0).sum(-1)
    q = mask[:, None, :].float()  # [B, 1, S]
    per_example = (kl * q).sum(dim=(1, 2)) / (q.sum(dim=(1, 2)) * kl.shape[1]).clamp(min=1.0)
    return per_example.mean()


@dataclass
class TrainStepResult:
    table: object  # DataFrame: step, what, p50_ms, p95_ms, p99_ms, mean_ms (one row per step a..e)
    ratios: dict  # name -> ratio of P50s
    settings: dict  # batch, seq, threads, device, layers, repeats, warmup


def _train_steps(teacher, student, s_eager, t_eager, optimizers, loss: DistillationLoss) -> dict:
    """The five step functions ``step(batch)`` (see ``TRAIN_STEPS``)."""
    hinton = DistillationLoss.for_variant("hinton", loss.temperature, loss.alpha, loss.beta)
    ce_only = DistillationLoss.for_variant("ce")
    opt, opt_eager = optimizers

    def features(batch):
        return {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}

    def update(optimizer, value):
        optimizer.zero_grad(set_to_none=True)
        value.backward()
        optimizer.step()

    def ce_step(batch):
        update(opt, ce_only(student(**features(batch)).logits, batch["labels"])["loss"])

    def teacher_forward(batch):
        with torch.no_grad():
            return teacher(**features(batch)).logits

    def hinton_step(batch):
        logits = student(**features(batch)).logits
        update(opt, hinton(logits, batch["labels"], teacher_forward(batch))["loss"])

    def minilm_step(batch):
        with QKVCapture(student) as cap:
            logits = student(**features(batch)).logits
            s_qkv = cap.qkv()
        with torch.no_grad(), QKVCapture(teacher) as cap:
            t_logits = teacher(**features(batch)).logits
            t_qkv = cap.qkv()
        update(opt, loss(logits, batch["labels"], t_logits, s_qkv, t_qkv, batch["attention_mask"])["loss"])

    def naive_step(batch):
        mask = batch["attention_mask"]
        with QKVCapture(s_eager) as cap:
            out = s_eager(**features(batch), output_attentions=True)
            v_s = cap.qkv()[2]
        with torch.no_grad(), QKVCapture(t_eager) as cap:
            t_out = t_eager(**features(batch), output_attentions=True)
            v_t = cap.qkv()[2]
        total = (loss.alpha * F.cross_entropy(out.logits.float(), batch["labels"])
                 + loss.beta * kd_loss(out.logits, t_out.logits, loss.temperature)
                 + loss.gamma * attention_kl_from_probs(out.attentions[-1], t_out.attentions[-1], mask)
                 + loss.delta * value_relation_loss(v_s, v_t, mask))
        update(opt_eager, total)

    return {"a": ce_step, "b": teacher_forward, "c": hinton_step, "d": minilm_step, "e": naive_step}


def train_step_benchmark(teacher: nn.Module, student: nn.Module, batch_size: int = 8, seq_len: int = 128,
                         warmup: int = 2, repeats: int = 10, device: str = "cpu", num_threads: int | None = None,
                         loss: DistillationLoss | None = None, learning_rate: float = 1e-5) -> TrainStepResult:
    """Time per optimisation step of five ways to train (or feed) the student, side by side, round-robin:

    (a) student CE step; (b) teacher forward under ``no_grad``; (c) Hinton step: student forward, teacher
    forward, α·CE + β·KD, backward, AdamW step; (d) MiniLM step (the real path, as in ``kdlab.distill``): as (c)
    plus Q/K/V of the last layer of both models captured by ``QKVCapture`` hooks under sdpa attention, and
    ``DistillationLoss`` (α·CE + β·KD + γ·attention + δ·value relations); (e) MiniLM step computed naively:
    both models run with eager attention and ``output_attentions=True`` (every layer's ``[B, H, S, S]``
    attention probabilities are materialised and returned), the attention term is computed from the last
    layer's returned maps (``attention_kl_from_probs``), the value relation from hooked V (the models do not
    return V). Same loss weights as (d).

    Each step works on copies (the caller's models are not trained or moved); batches are random with padding
    (``training_batches``). ``ratios``: d/(a+b), d/e, c/(a+b), d/c of the P50s.
    """
    import pandas as pd

    models = {"teacher": teacher, "student": student}
    dev = check_timing_args(models, [batch_size], seq_len, ["fp32"], device, warmup, repeats, num_threads)
    if teacher.config.vocab_size != student.config.vocab_size:
        raise KDLabError("teacher and student vocabularies differ: they must read the same token ids.")
    if num_heads(teacher) != num_heads(student):
        raise KDLabError(f"MiniLM steps need equal head counts (teacher {num_heads(teacher)}, student "
                         f"{num_heads(student)}).")
    loss = loss or DistillationLoss.for_variant("minilm")
    with torch_threads(num_threads) as threads:
        t = copy.deepcopy(teacher).to(dev).float().eval().requires_grad_(False)
        s = copy.deepcopy(student).to(dev).float().train()
        t_eager, s_eager = copy.deepcopy(t), copy.deepcopy(s)
        t_eager.set_attn_implementation("eager")
        s_eager.set_attn_implementation("eager")
        optimizers = (torch.optim.AdamW(s.parameters(), lr=learning_rate),
                      torch.optim.AdamW(s_eager.parameters(), lr=learning_rate))
        steps = _train_steps(t, s, s_eager, t_eager, optimizers, loss)
        batches = training_batches(batch_size, seq_len, teacher.config.vocab_size, teacher.config.num_labels, dev)
        times = round_robin([_rotating(fn, batches) for fn in steps.values()], warmup, repeats, sync=_sync_for(dev))
    rows = [{"step": key, "what": TRAIN_STEPS[key], **latency_stats(ms, batch_size)}
            for key, ms in zip(steps, times)]
    table = pd.DataFrame(rows)
    p50 = dict(zip(table["step"], table["p50_ms"]))
    ratios = {
        "minilm / (ce + teacher)": p50["d"] / (p50["a"] + p50["b"]),
        "minilm / naive minilm": p50["d"] / p50["e"],
        "hinton / (ce + teacher)": p50["c"] / (p50["a"] + p50["b"]),
        "minilm / hinton": p50["d"] / p50["c"],
    }
    settings = {"batch": batch_size, "seq": seq_len, "threads": threads, "device": device_name(dev),
                "teacher_layers": _layers(teacher), "student_layers": _layers(student), "warmup": warmup,
                "repeats": repeats}
    return TrainStepResult(table, ratios, settings)


# --- padding ------------------------------------------------------------------------------------------------
def _batches_of(lengths: list[int], batch_size: int) -> list[list[int]]:
    return [lengths[i:i + batch_size] for i in range(0, len(lengths), batch_size)]


def length_grouped_order(lengths: list[int], batch_size: int, seed: int = 0) -> list[int]:
    """Lengths reordered as transformers' ``group_by_length`` sampler does: shuffle, cut into mega-batches of
    50 batches, sort each mega-batch by length (longest first)."""
    rng = np.random.default_rng(seed)
    shuffled = [lengths[i] for i in rng.permutation(len(lengths))]
    mega = 50 * batch_size
    return [n for i in range(0, len(shuffled), mega) for n in sorted(shuffled[i:i + mega], reverse=True)]


def padding_table(lengths: list[int], batch_size: int, max_length: int = 128, seed: int = 0):
    """Token slots per batch when padding to ``max_length`` vs dynamic padding → DataFrame.

    ``lengths``: token count of each sentence (with [CLS]/[SEP]); each is truncated to ``max_length``. Rows:
    fixed padding to ``max_length``; dynamic padding (to the longest in the batch) in random order; dynamic
    padding with length-grouped batches (``group_by_length``, what ``kdlab.distill`` trains with). Columns:
    strategy, batches, real_per_batch, padded_per_batch (token slots computed), pad_fraction (share of slots
    that are padding), slots_vs_real (padded / real).
    """
    import pandas as pd

    if batch_size < 1 or max_length < 1 or not lengths:
        raise KDLabError("padding_table needs sentences, batch_size >= 1 and max_length >= 1.")
    lengths = [min(int(n), max_length) for n in lengths]
    rng = np.random.default_rng(seed)
    random_order = [lengths[i] for i in rng.permutation(len(lengths))]
    strategies = {
        f"fixed to {max_length}": (_batches_of(random_order, batch_size), True),
        "dynamic, random order": (_batches_of(random_order, batch_size), False),
        "dynamic, length-grouped": (_batches_of(length_grouped_order(lengths, batch_size, seed), batch_size), False),
    }
    rows = []
    real = sum(lengths)
    for name, (batches, fixed) in strategies.items():
        slots = sum(len(b) * (max_length if fixed else max(b)) for b in batches)
        rows.append({"strategy": name, "batches": len(batches), "real_per_batch": real / len(batches),
                     "padded_per_batch": slots / len(batches), "pad_fraction": 1 - real / slots,
                     "slots_vs_real": slots / real})
    return pd.DataFrame(rows)


# --- reporting ----------------------------------------------------------------------------------------------
def _cell(value) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return ""
        return f"{value:.3g}" if abs(value) < 10 else f"{value:,.1f}"
    return str(value).replace("|", "\\|")


def markdown_table(table, columns: list[str] | None = None) -> str:
    """A DataFrame as a GitHub markdown table (NaN as empty cells, floats to 3 significant digits)."""
    columns = columns or list(table.columns)
    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    for _, row in table.iterrows():
        lines.append("| " + " | ".join(_cell(row[c]) for c in columns) + " |")
    return "\n".join(lines)


def append_markdown(path: str | Path, title: str, lines: list[str]) -> Path:
    """Append ``## title`` and ``lines`` to the markdown file at ``path`` (created if missing)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    start = "" if not path.exists() or path.stat().st_size == 0 else "\n"
    if not path.exists():
        start = "# Benchmarks\n\nMeasured with `benchmarks/*.py`; each section says how and on what.\n\n"
    with path.open("a", encoding="utf-8") as fh:
        fh.write(start + f"## {title}\n\n" + "\n".join(lines).rstrip() + "\n")
    return path


def report_header(command: str, device: str | torch.device, threads: int, notes: list[str] = ()) -> list[str]:
    """Markdown bullet lines saying how and on what a benchmark ran (command, machine, threads, versions)."""
    m = machine_summary(device, threads)
    load = m["load_avg_1min"]
    busy = load is not None and load > 0.5 * m["cores"]
    lines = [
        f"- command: `{command}`",
        f"- machine: {m['device']}" + (f" (CPU: {m['cpu']})" if m["device"] != m["cpu"] else "")
        + f", {m['cores']} cores; torch threads: {m['threads']}",
        f"- load average at start: {load}" + (" — other processes were busy: timings are disturbed" if busy else ""),
        f"- date: {m['date']}; torch {m['torch']}, transformers {m['transformers']}, "
        f"onnxruntime {m['onnxruntime'] or 'not installed'}, Python {m['python']}",
    ]
    return lines + [f"- {note}" for note in notes]
