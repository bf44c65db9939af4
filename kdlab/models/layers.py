"""Where things are inside a BERT-family encoder: its layer list, one layer's self-attention (with the ``query``,
``key``, ``value`` projections that kdlab hooks and prunes), its head count."""

from __future__ import annotations

from torch import nn

from kdlab.errors import KDLabError


def encoder_layers(model: nn.Module) -> nn.ModuleList:
    """The encoder's layer list of a BERT-family model (``model.base_model.encoder.layer``)."""
    base = getattr(model, "base_model", model)
    layers = getattr(getattr(base, "encoder", None), "layer", None)
    if layers is None:
        raise KDLabError(
            f"{type(model).__name__} has no `encoder.layer` list: kdlab's Q/K/V capture supports BERT-family "
            "encoders (BERT, RoBERTa, ELECTRA, MiniLM)."
        )
    return layers


def self_attention(model: nn.Module, layer: int = -1) -> nn.Module:
    """The self-attention module (with ``query``/``key``/``value`` Linear layers) of encoder layer ``layer``."""
    layers = encoder_layers(model)
    if not -len(layers) <= layer < len(layers):
        raise KDLabError(f"layer {layer} is out of range for a model with {len(layers)} encoder layers.")
    attn = layers[layer].attention.self
    for name in ("query", "key", "value"):
        if not isinstance(getattr(attn, name, None), nn.Linear):
            raise KDLabError(f"encoder layer {layer} has no `attention.self.{name}` Linear projection to hook.")
    return attn


def num_heads(model: nn.Module) -> int:
    return int(model.config.num_attention_heads)


def layer_heads(model: nn.Module, layer: int = -1) -> int:
    """The attention heads of encoder layer ``layer`` as it is now: a pruned layer keeps fewer than the config's
    ``num_attention_heads`` (``kdlab.compression.pruning``), and the Q/K/V must be split by the real count."""
    attn = self_attention(model, layer)
    return int(getattr(attn, "num_attention_heads", None) or num_heads(model))
