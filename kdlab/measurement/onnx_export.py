"""ONNX export of a sequence classifier and an onnxruntime session to run it (CPU).

``torch.onnx.export(dynamo=True)`` needs ``onnx`` and ``onnxscript``; running needs ``onnxruntime``
(``pip install onnx onnxscript onnxruntime``). ``onnx_missing()`` says which are absent, so callers can report a
skipped row instead of failing.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import warnings
from pathlib import Path

import torch
from torch import nn

from kdlab.measurement.timing import random_batches

ONNX_TOLERANCE = 1e-4  # max |logit difference| allowed between onnxruntime and torch fp32


def onnx_missing() -> str | None:
    """None when onnx export + onnxruntime can run here, else which packages are missing."""
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
