"""Timing instruments shared by the benchmarks: what machine ran, pinned threads, random inputs, round-robin
timing with a device sync around each call, and latency statistics.

Every timed call is ``sync(); t0 = clock(); step(); sync(); t1 = clock()``; on CUDA ``sync`` waits for the device
being timed (``sync_for``), on the CPU it does nothing.
"""

from __future__ import annotations

import contextlib
import datetime
import itertools
import math
import os
import platform
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import transformers

from kdlab.errors import KDLabError

NUM_INPUT_BATCHES = 4  # pre-built random batches the timed runs rotate through


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


def sync_for(device: torch.device) -> Callable[[], None]:
    """Wait for the device being timed (not merely the current CUDA device); nothing to wait for on the CPU."""
    if device.type == "cuda":
        return lambda: torch.cuda.synchronize(device)
    return lambda: None



def rotating(run: Callable[[dict], object], batches: list[dict]) -> Callable[[], object]:
    """A no-argument step calling ``run`` on the next batch each time (batches used in turn)."""
    cycle = itertools.cycle(batches)
    return lambda: run(next(cycle))
