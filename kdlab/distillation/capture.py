"""Capture one encoder layer's query/key/value projections with forward hooks.

transformers 5.x runs BERT with ``sdpa`` attention, which returns no attention maps (``output_attentions=True``
gives an empty tuple). MiniLM only needs the last layer's Q, K and V, so instead of switching the whole model
to eager attention we hook the three ``nn.Linear`` projections and compute the relations in the loss.
The hooks live only inside a ``with`` block, so they never leak across models or steps.
"""

from __future__ import annotations

import torch
from torch import nn

from kdlab.models.layers import layer_heads, self_attention


class QKVCapture:
    """Context manager recording Q, K, V of one encoder layer during forward passes.

    >>> with QKVCapture(student) as cap:
    ...     out = student(**batch)
    ...     q, k, v = cap.qkv()          # each [batch, heads, seq, head_dim]

    Outside the ``with`` block no hook is registered on the model.
    """

    def __init__(self, model: nn.Module, layer: int = -1):
        self.attn = self_attention(model, layer)
        self.heads = layer_heads(model, layer)  # the layer's own count: a pruned layer has fewer
        self.layer = layer
        self._handles: list = []
        self._out: dict[str, torch.Tensor] = {}

    def _hook(self, name: str):
        def hook(_module, _inputs, output):
            self._out[name] = output

        return hook

    def __enter__(self) -> "QKVCapture":
        if self._handles:
            raise RuntimeError("QKVCapture is already active")
        self._out.clear()
        self._handles = [
            getattr(self.attn, name).register_forward_hook(self._hook(name)) for name in ("query", "key", "value")
        ]
        return self

    def __exit__(self, *exc) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []
        self._out.clear()

    def split_heads(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, S, H·D]`` → ``[B, H, S, D]``."""
        b, s, width = x.shape
        return x.view(b, s, self.heads, width // self.heads).transpose(1, 2)

    def raw(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The last forward pass's Q, K, V as the projections returned them, each ``[B, S, W]`` (W = H·D),
        not split into the model's heads (MiniLMv2 relation heads re-split them: ``kdlab.distillation.relations``)."""
        missing = [n for n in ("query", "key", "value") if n not in self._out]
        if missing:
            raise RuntimeError(f"no forward pass captured {missing} yet; call the model inside the `with` block")
        return tuple(self._out[n] for n in ("query", "key", "value"))  # type: ignore[return-value]

    def qkv(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The last forward pass's Q, K, V, each ``[B, H, S, D]``."""
        return tuple(self.split_heads(x) for x in self.raw())  # type: ignore[return-value]
