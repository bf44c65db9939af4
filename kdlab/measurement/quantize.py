"""INT8 weights for CPU inference: dynamic quantization of every ``nn.Linear`` (and ``nn.LSTM``).

All of kdlab's quantization goes through ``quantize_int8`` so the backend can change in one place.
It uses ``torch.ao.quantization.quantize_dynamic``: deprecated (torchao is its successor) but working in
torch 2.13; torchao's int8 config has no fast CPU kernel on AVX2-only machines (slower than fp32 there).
"""

from __future__ import annotations

import copy
import io
import warnings

import torch
from torch import nn
from torch.ao.nn.quantized.dynamic import Linear as DynamicQuantizedLinear
from torch.ao.quantization import quantize_dynamic


def quantize_int8(model: nn.Module) -> nn.Module:
    """A quantized copy of ``model`` (the original is untouched), in eval mode on the CPU.

    Every ``nn.Linear`` becomes a dynamically quantized Linear: weights stored as int8 (one scale per tensor),
    activations quantized per batch at run time, int8 matmul, fp32 output; an ``nn.LSTM`` (the BiLSTM student)
    likewise. Embeddings, LayerNorm and everything else stay float32. Runs on the CPU only.
    """
    source = copy.deepcopy(model).to("cpu", torch.float32).eval()
    with warnings.catch_warnings():
        # torch.ao.quantization announces its deprecation (and that of quantize_per_tensor) on every call.
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", message=r".*(deprecated|quantize_per_tensor).*")
        quantized = quantize_dynamic(source, {nn.Linear, nn.LSTM}, dtype=torch.qint8, inplace=True)
    return quantized.eval()


def is_int8_linear(module: nn.Module) -> bool:
    """True for a dynamically quantized Linear made by ``quantize_int8``."""
    return isinstance(module, DynamicQuantizedLinear)


def _tensor_bytes(value) -> int:
    """Bytes held by a state_dict value: a tensor (also quantized), or a tuple/list of them (packed params)."""
    if isinstance(value, torch.Tensor):
        return value.numel() * value.element_size()
    if isinstance(value, (tuple, list)):
        return sum(_tensor_bytes(v) for v in value)
    return 0


def state_dict_bytes(model: nn.Module) -> int:
    """Bytes of every tensor in ``model.state_dict()`` (int8 weights count 1 byte each): the weights' memory."""
    return sum(_tensor_bytes(v) for v in model.state_dict().values())


def saved_size_bytes(model: nn.Module) -> int:
    """Size of ``torch.save(model.state_dict())``: how big the quantized weights are on disk."""
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    return buffer.getbuffer().nbytes
