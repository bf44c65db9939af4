"""Memory of one forward pass: the weights plus the peak of what torch allocates while the call runs.

On CUDA the peak comes from ``torch.cuda.max_memory_allocated`` (minus what was allocated before the call); on the
CPU from ``torch.profiler``'s allocation events. The method used is returned with the number, so a table can say
how each figure was measured.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import os
import sys
from typing import Callable

import torch
from torch import nn
from torch.profiler import ProfilerActivity, profile

from kdlab.measurement.quantize import state_dict_bytes

MB = 2**20


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


def cpu_peak_bytes(run: Callable[[], object]) -> int:
    """Peak of (allocated − freed) CPU bytes seen by ``torch.profiler`` while ``run()`` executes."""
    with _quiet_fd2(), profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        run()
    events = prof.profiler.kineto_results.events()
    allocations = sorted((e.start_ns(), e.nbytes()) for e in events if e.name() == "[memory]")
    return max(itertools.accumulate(n for _, n in allocations), default=0)


def cuda_peak_bytes(run: Callable[[], object], device: torch.device) -> int:
    """Bytes allocated on ``device`` at the peak of ``run()``, above what was allocated before it started
    (``torch.cuda.max_memory_allocated`` after a reset; the device is synchronised before and after)."""
    torch.cuda.synchronize(device)
    before = torch.cuda.memory_allocated(device)
    torch.cuda.reset_peak_memory_stats(device)
    run()
    torch.cuda.synchronize(device)
    return torch.cuda.max_memory_allocated(device) - before


def peak_memory(module: nn.Module | None, run: Callable[[], object], device: torch.device) -> tuple[float, str]:
    """(peak MB, method) of one forward ``run()`` of ``module``: weights (state_dict bytes) + peak memory
    allocated during the call. ``module=None`` (onnxruntime) is not measured: its allocator is invisible to torch."""
    if module is None:
        return math.nan, "not measured: onnxruntime allocates outside torch"
    weights = state_dict_bytes(module)
    with torch.inference_mode():
        if device.type == "cuda":
            return (weights + cuda_peak_bytes(run, device)) / MB, "weights + CUDA max_memory_allocated during forward"
        try:
            extra = cpu_peak_bytes(run)
        except Exception as exc:  # the profiler's event API is not a stable interface
            return math.nan, f"not measured: torch.profiler failed ({type(exc).__name__})"
    return (weights + extra) / MB, "weights + torch.profiler peak allocation during forward"
