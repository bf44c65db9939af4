"""Structured pruning of a BERT-family student: attention heads and FFN neurons, scored by the gradient of a mask
(Michel et al. 2019, "Are Sixteen Heads Really Better than One?") and removed for real, so the pruned model runs
smaller dense matrix products (unlike unstructured sparsity, which dense kernels do not skip).

A mask ξ multiplies each unit's output: head h of layer l scales its slice of the attention context (the input of
``attention.output.dense``), neuron i of layer l its FFN activation (the input of ``output.dense``). At ξ = 1 the
model is unchanged and the importance of a unit is the accumulated gradient magnitude

    I_u = Σ_batches | ∂L / ∂ξ_u |,     L = KL(p_teacher ‖ p_student) (with a teacher) or the masked CE,

normalised per layer (L2, as Michel et al.) so layers compare. ``prune_plan`` removes the lowest-scoring share
across layers (at least one head and ``min_neurons`` neurons stay per layer); ``prune_model`` cuts the Linear
layers, keeping the pruned sizes in ``config.kdlab_pruning`` so ``load_pruned`` rebuilds the model from disk.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from torch import nn
from transformers import AutoConfig, AutoModelForSequenceClassification

from kdlab.distillation.losses import masked_cross_entropy
from kdlab.errors import KDLabError
from kdlab.models.layers import encoder_layers

PRUNING_KEY = "kdlab_pruning"  # config attribute: {"heads": [kept heads per layer], "intermediate": [FFN sizes]}


def unit_counts(model: nn.Module) -> tuple[list[int], list[int]]:
    """(heads per layer, FFN neurons per layer) as the model is now."""
    heads, neurons = [], []
    for layer in encoder_layers(model):
        attn = layer.attention.self
        heads.append(attn.query.out_features // attn.attention_head_size)
        neurons.append(layer.intermediate.dense.out_features)
    return heads, neurons


@contextmanager
def unit_masks(model: nn.Module, head_mask: torch.Tensor, neuron_mask: torch.Tensor):
    """Inside the block, multiply head h of layer l by ``head_mask[l, h]`` and FFN neuron i by
    ``neuron_mask[l, i]`` (forward pre-hooks on ``attention.output.dense`` and ``output.dense``; masks may require
    grad). ``head_mask`` ``[L, H]``, ``neuron_mask`` ``[L, I]``."""
    handles = []
    for index, layer in enumerate(encoder_layers(model)):
        size = layer.attention.self.attention_head_size

        def scale_heads(module, args, index=index, size=size):
            return (args[0] * head_mask[index].repeat_interleave(size).to(args[0].dtype),)

        def scale_neurons(module, args, index=index):
            return (args[0] * neuron_mask[index].to(args[0].dtype),)

        handles.append(layer.attention.output.dense.register_forward_pre_hook(scale_heads))
        handles.append(layer.output.dense.register_forward_pre_hook(scale_neurons))
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


@contextmanager
def _placed(module: nn.Module | None, device: torch.device):
    """``module`` on ``device`` in eval mode inside the block; its own device and mode again afterwards."""
    if module is None:
        yield None
        return
    params = next(module.parameters(), None)
    original, training = (params.device if params is not None else torch.device("cpu")), module.training
    try:
        yield module.to(device).eval()
    finally:
        module.to(original).train(training)


def importance_scores(model: nn.Module, batches, teacher: nn.Module | None = None,
                      device: str | torch.device = "cpu") -> dict[str, torch.Tensor]:
    """``{"heads": [L, H], "neurons": [L, I]}`` gradient-of-mask importances over ``batches`` (dicts of
    ``input_ids``, ``attention_mask``, optional ``token_type_ids`` and ``labels``), each row L2-normalised, computed
    on ``device``. With a ``teacher`` the loss is KL(p_t ‖ p_s) (labels unneeded: a transfer set works); else the
    masked CE. The caller's models are left on their own devices and in their own modes."""
    heads, neurons = unit_counts(model)
    if len(set(heads)) > 1 or len(set(neurons)) > 1:
        raise KDLabError("importance_scores needs an unpruned model (the same heads and FFN width in every layer).")
    device = torch.device(device)
    head_mask = torch.ones(len(heads), heads[0], device=device, requires_grad=True)
    neuron_mask = torch.ones(len(neurons), neurons[0], device=device, requires_grad=True)
    head_total, neuron_total, seen = torch.zeros_like(head_mask), torch.zeros_like(neuron_mask), 0
    with _placed(model, device) as student, _placed(teacher, device) as scorer:
        for batch in batches:
            batch = {k: v.to(device) for k, v in batch.items()}
            labels = batch.pop("labels", None)
            with unit_masks(student, head_mask, neuron_mask):
                logits = student(**batch).logits.float()
            if scorer is not None:
                with torch.no_grad():
                    target = scorer(**batch).logits.float()
                loss = F.kl_div(F.log_softmax(logits, -1), F.log_softmax(target, -1), log_target=True,
                                reduction="batchmean")
            elif labels is not None:
                loss = masked_cross_entropy(logits, labels)
            else:
                raise KDLabError("importance_scores needs labels in the batches or a teacher to compare with.")
            g_heads, g_neurons = torch.autograd.grad(loss, (head_mask, neuron_mask), allow_unused=True)
            head_total += g_heads.abs() if g_heads is not None else 0
            neuron_total += g_neurons.abs() if g_neurons is not None else 0
            seen += 1
        student.zero_grad(set_to_none=True)
    if not seen:
        raise KDLabError("importance_scores got no batches: pass a non-empty DataLoader or list of batches.")
    norm = lambda x: x / x.norm(dim=1, keepdim=True).clamp_min(1e-12)  # noqa: E731
    return {"heads": norm(head_total).cpu(), "neurons": norm(neuron_total).cpu()}


def _keep(scores: torch.Tensor, fraction: float, minimum: int) -> list[list[int]]:
    """Indices to keep per row after removing the ``fraction`` of all entries with the lowest scores, globally,
    never leaving a row with fewer than ``minimum``."""
    rows, width = scores.shape
    keep = [set(range(width)) for _ in range(rows)]
    to_remove = int(round(fraction * rows * width))
    for flat in torch.argsort(scores.flatten(), stable=True).tolist():
        if to_remove == 0:
            break
        row, col = divmod(flat, width)
        if len(keep[row]) > minimum:
            keep[row].discard(col)
            to_remove -= 1
    return [sorted(k) for k in keep]


def prune_plan(scores: dict[str, torch.Tensor], head_fraction: float = 0.0, neuron_fraction: float = 0.0,
               min_heads: int = 1, min_neurons: int = 32) -> dict[str, list[list[int]]]:
    """``{"heads": [[kept head indices] per layer], "neurons": [[kept neuron indices] per layer]}``: the lowest
    ``head_fraction`` of heads and ``neuron_fraction`` of FFN neurons across layers removed."""
    for name, value in (("head_fraction", head_fraction), ("neuron_fraction", neuron_fraction)):
        if not 0 <= value < 1:
            raise KDLabError(f"{name}={value}: prune a share in [0, 1) of the units (e.g. 0.5 for half).")
    return {"heads": _keep(scores["heads"], head_fraction, min_heads),
            "neurons": _keep(scores["neurons"], neuron_fraction, min(min_neurons, scores["neurons"].shape[1]))}


def plan_masks(model: nn.Module, plan: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """0/1 ``(head_mask [L, H], neuron_mask [L, I])`` of ``plan`` for the unpruned ``model`` (for ``unit_masks``)."""
    heads, neurons = unit_counts(model)
    head_mask, neuron_mask = torch.zeros(len(heads), heads[0]), torch.zeros(len(neurons), neurons[0])
    for layer, (h, n) in enumerate(zip(plan["heads"], plan["neurons"])):
        head_mask[layer, h] = 1.0
        neuron_mask[layer, n] = 1.0
    return head_mask, neuron_mask


def _cut(linear: nn.Linear, index: torch.Tensor, dim: int) -> nn.Linear:
    """A copy of ``linear`` keeping ``index`` of its outputs (dim 0) or inputs (dim 1)."""
    weight = linear.weight.index_select(dim, index).detach().clone()
    bias = None if linear.bias is None else (linear.bias.detach().clone() if dim == 1 else
                                             linear.bias.index_select(0, index).detach().clone())
    out = nn.Linear(weight.shape[1], weight.shape[0], bias=bias is not None, device=weight.device,
                    dtype=weight.dtype)
    out.weight.data.copy_(weight)
    if bias is not None:
        out.bias.data.copy_(bias)
    return out


def prune_model(model: nn.Module, plan: dict) -> nn.Module:
    """Remove the heads and neurons ``plan`` leaves out, in place: Q/K/V lose those heads' rows and the attention
    output its columns; the FFN's first Linear loses rows, its second columns. Returns ``model``, whose outputs
    equal the unpruned model's under ``unit_masks(plan_masks(plan))``; ``config.kdlab_pruning`` records the sizes."""
    layers = encoder_layers(model)
    if len(plan["heads"]) != len(layers) or len(plan["neurons"]) != len(layers):
        raise KDLabError(f"the plan covers {len(plan['heads'])} layers, the model has {len(layers)}.")
    for layer, heads, neurons in zip(layers, plan["heads"], plan["neurons"]):
        if not heads or not neurons:
            raise KDLabError("every layer must keep at least one head and one FFN neuron.")
        attn = layer.attention.self
        size = attn.attention_head_size
        rows = torch.tensor([h * size + d for h in heads for d in range(size)], device=attn.query.weight.device)
        for name in ("query", "key", "value"):
            setattr(attn, name, _cut(getattr(attn, name), rows, 0))
        layer.attention.output.dense = _cut(layer.attention.output.dense, rows, 1)
        attn.num_attention_heads, attn.all_head_size = len(heads), len(heads) * size
        index = torch.tensor(neurons, device=layer.intermediate.dense.weight.device)
        layer.intermediate.dense = _cut(layer.intermediate.dense, index, 0)
        layer.output.dense = _cut(layer.output.dense, index, 1)
    heads, neurons = unit_counts(model)
    setattr(model.config, PRUNING_KEY, {"heads": heads, "intermediate": neurons})
    return model


def load_pruned(folder: str | Path, **kwargs) -> nn.Module:
    """A model saved with ``save_pretrained`` after ``prune_model``: built from its config, cut to the recorded
    sizes, then given its weights. An unpruned folder loads as usual."""
    config = AutoConfig.from_pretrained(folder)
    sizes = getattr(config, PRUNING_KEY, None)
    if not sizes:
        return AutoModelForSequenceClassification.from_pretrained(folder, **kwargs)
    model = AutoModelForSequenceClassification.from_config(config)
    plan = {"heads": [list(range(h)) for h in sizes["heads"]],
            "neurons": [list(range(n)) for n in sizes["intermediate"]]}
    prune_model(model, plan)
    model.load_state_dict(load_file(str(Path(folder) / "model.safetensors")))
    return model.eval()
