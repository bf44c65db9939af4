"""The causal teacher, a student cut from its alternate blocks, and the checks a teacher–student pair must pass.

A student is the teacher with fewer blocks (DistilGPT2 was initialised this way): the embeddings, the final norm and
the output head are copied whole, and student block i is a copy of teacher block ``layer_map[i]`` (default
alternate: ``i · L_t / L_s``, as the lab's students). Any model whose blocks sit in one ``nn.ModuleList``
(GPT-2's ``transformer.h``, Llama's ``model.layers``, GPT-NeoX's ``gpt_neox.layers``) can be cut.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from kdlab.errors import KDLabError

BLOCK_PATHS = ("transformer.h", "model.layers", "gpt_neox.layers", "model.decoder.layers")
DEPTH_FIELDS = ("n_layer", "num_hidden_layers", "num_layers")


def teacher_from_config(cfg, tokenizer):
    """A GPT-2-shaped causal LM for ``cfg.teacher == "train"``: ``teacher_layers`` blocks of ``teacher_width``,
    ``teacher_heads`` heads, ``context`` positions, ``teacher_dropout`` (residual, embedding and attention), one
    output row per token of ``tokenizer``."""
    from transformers import GPT2Config, GPT2LMHeadModel

    config = GPT2Config(vocab_size=len(tokenizer), n_positions=cfg.context, n_embd=cfg.teacher_width,
                        n_layer=cfg.teacher_layers, n_head=cfg.teacher_heads, resid_pdrop=cfg.teacher_dropout,
                        embd_pdrop=cfg.teacher_dropout, attn_pdrop=cfg.teacher_dropout,
                        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                        pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(cfg.teacher_seed)
    return GPT2LMHeadModel(config)


def blocks(model: nn.Module) -> tuple[nn.Module, str, nn.ModuleList]:
    """``(parent, attribute, the ModuleList of decoder blocks)``; KDLabError naming the paths tried."""
    for path in BLOCK_PATHS:
        *route, name = path.split(".")
        node = model
        for part in route:
            node = getattr(node, part, None)
            if node is None:
                break
        if node is not None and isinstance(getattr(node, name, None), nn.ModuleList):
            return node, name, getattr(node, name)
    raise KDLabError(f"{type(model).__name__} has no decoder block list at any of {', '.join(BLOCK_PATHS)}: a "
                     "student cannot be cut from it.")


def depth(model: nn.Module) -> int:
    return len(blocks(model)[2])


def alternate_map(teacher_layers: int, student_layers: int) -> list[int]:
    """Teacher block for each student block, spread evenly from the first: ``i · L_t // L_s``."""
    return [i * teacher_layers // student_layers for i in range(student_layers)]


def cut_student(teacher: nn.Module, student_layers: int, layer_map: list[int] | None = None,
                dropout: float | None = 0.0) -> nn.Module:
    """A copy of ``teacher`` keeping only the blocks in ``layer_map`` (default alternate), in that order.

    Each kept block's attention is renumbered (``layer_idx``) so the generation cache indexes the student's own
    blocks. ``dropout`` (default 0: the students of every regime train without it, as TRL's distillation trainers
    do) replaces the config's dropout rates and the modules' ``p``; None keeps the teacher's."""
    teacher_depth = depth(teacher)
    if student_layers > teacher_depth:
        raise KDLabError(f"student_layers={student_layers} is deeper than the teacher ({teacher_depth} blocks): a "
                         "student cut from the teacher can keep at most all of its blocks.")
    mapping = layer_map if layer_map is not None else alternate_map(teacher_depth, student_layers)
    if len(mapping) != student_layers or any(not 0 <= i < teacher_depth for i in mapping):
        raise KDLabError(f"layer_map={mapping}: give {student_layers} teacher block numbers in 0..{teacher_depth - 1}.")
    student = copy.deepcopy(teacher)
    parent, name, _ = blocks(student)
    kept = nn.ModuleList([copy.deepcopy(blocks(teacher)[2][i]) for i in mapping])
    for position, block in enumerate(kept):
        for module in block.modules():
            if hasattr(module, "layer_idx"):
                module.layer_idx = position
    setattr(parent, name, kept)
    for field in DEPTH_FIELDS:
        if hasattr(student.config, field):
            setattr(student.config, field, student_layers)
    if getattr(student.config, "layer_types", None) is not None:  # per-layer attention kinds (newer configs)
        student.config.layer_types = [student.config.layer_types[i] for i in mapping]
    if dropout is not None:
        for key in ("resid_pdrop", "embd_pdrop", "attn_pdrop", "attention_dropout", "hidden_dropout"):
            if hasattr(student.config, key):
                setattr(student.config, key, dropout)
        for module in student.modules():
            if isinstance(module, nn.Dropout):
                module.p = dropout
    student.config.kdlab_layer_map = list(mapping)
    return student


def random_student(teacher: nn.Module, layers: int, width: int, heads: int, seed: int, dropout: float = 0.0):
    """A randomly initialised GPT-2-shaped student (``layers`` blocks of ``width``, ``heads`` heads) with the
    teacher's vocabulary, positions and special tokens: a student that starts from nothing, so what it knows after
    training came from its data and its teacher (the cut student, ``cut_student``, starts next to the teacher)."""
    from transformers import GPT2Config, GPT2LMHeadModel

    if width % heads:
        raise KDLabError(f"student width {width} is not a multiple of its {heads} heads.")
    source = teacher.config
    positions = getattr(source, "n_positions", None) or getattr(source, "max_position_embeddings")
    config = GPT2Config(vocab_size=output_rows(teacher), n_positions=positions, n_embd=width, n_layer=layers,
                        n_head=heads, resid_pdrop=dropout, embd_pdrop=dropout, attn_pdrop=dropout,
                        bos_token_id=source.bos_token_id, eos_token_id=source.eos_token_id,
                        pad_token_id=source.pad_token_id)
    state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        return GPT2LMHeadModel(config)
    finally:
        torch.random.set_rng_state(state)


def output_rows(model: nn.Module) -> int:
    """Rows of the model's output layer (its logits' last dimension)."""
    return model.get_output_embeddings().weight.shape[0]


def usable_rows(model: nn.Module, tokenizer, role: str = "model") -> int:
    """How many logit columns mean tokens: ``len(tokenizer)``. A model with more output rows than the tokenizer
    has tokens (a vocabulary padded to a multiple of 64 or 128, as Qwen2.5's 151,936 vs 152,064) keeps its extra
    rows out of every softmax; one with fewer cannot score some of the tokenizer's ids and is refused."""
    rows, tokens = output_rows(model), len(tokenizer)
    if rows < tokens:
        raise KDLabError(f"the {role} has {rows} output rows but the tokenizer has {tokens} tokens: ids ≥ {rows} "
                         "cannot be scored. Use the tokenizer the model was trained with.")
    return tokens


def check_tokenizers(teacher_tokenizer, student_tokenizer) -> None:
    """KDLabError naming what differs when two tokenizers would give the same text different ids: token-level
    distillation compares distributions id by id, so teacher and student must share one vocabulary."""
    a, b = teacher_tokenizer.get_vocab(), student_tokenizer.get_vocab()
    if a == b and teacher_tokenizer.eos_token_id == student_tokenizer.eos_token_id:
        return
    only_a = sorted(set(a) - set(b))
    only_b = sorted(set(b) - set(a))
    moved = sorted(t for t in set(a) & set(b) if a[t] != b[t])
    parts = [f"teacher {len(a):,} tokens, student {len(b):,}"]
    if only_a:
        parts.append(f"{len(only_a)} only the teacher's (e.g. {only_a[:3]})")
    if only_b:
        parts.append(f"{len(only_b)} only the student's (e.g. {only_b[:3]})")
    if moved:
        parts.append(f"{len(moved)} shared tokens with different ids (e.g. {moved[0]!r}: {a[moved[0]]} vs "
                     f"{b[moved[0]]})")
    if teacher_tokenizer.eos_token_id != student_tokenizer.eos_token_id:
        parts.append(f"end-of-text id {teacher_tokenizer.eos_token_id} vs {student_tokenizer.eos_token_id}")
    raise KDLabError("the teacher and the student tokenize differently (" + "; ".join(parts) + "): token-level "
                     "distillation needs one vocabulary. Cut the student from the teacher (kdlab.lm.models."
                     "cut_student), or use a method built for different tokenizers (e.g. TRL's GOLD trainer).")


def check_pair(teacher: nn.Module, student: nn.Module, tokenizer) -> int:
    """The checks before distilling ``teacher`` into ``student`` with ``tokenizer``; returns the number of logit
    columns both use (``usable_rows``)."""
    rows = usable_rows(teacher, tokenizer, "teacher")
    usable_rows(student, tokenizer, "student")
    if depth(student) > depth(teacher):
        raise KDLabError(f"the student ({depth(student)} blocks) is deeper than its teacher ({depth(teacher)}).")
    return rows


def parameters(model: nn.Module) -> int:
    """Parameters counted once (a tied output head shares the embedding's)."""
    return sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())
