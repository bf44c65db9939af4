"""Students cut from the teacher: a smaller copy that keeps every k-th encoder layer (or, for cross-architecture
distillation, a student loaded on its own: ``load_student_model``, ``build_student``).

Student layer i is initialized from teacher layer ``layer_map[i]``; embeddings, pooler and classifier are
copied as they are. The default "alternate" map takes teacher layer i·(L_t / L_s):
12→6 gives [0, 2, 4, 6, 8, 10], 12→4 gives [0, 3, 6, 9], 6→3 gives [0, 2, 4].
"""

from __future__ import annotations

import copy
import re

import pandas as pd
import torch
from torch import nn

from kdlab.errors import KDLabError
from kdlab.models.bilstm import bilstm_from_teacher
from kdlab.models.layers import encoder_layers
from kdlab.models.teacher import MINILM_L6, load_classifier, minilm_l6_path
from kdlab.models.tiny import build_tiny_bert, build_tiny_tokenizer
from kdlab.models.vocabulary import check_same_vocabulary
from kdlab.validation import parse_bilstm_spec, parse_tiny_student

_LAYER_KEY = re.compile(r"^(.*encoder\.layer\.)(\d+)(\..*)$")


def alternate_layer_map(teacher_layers: int, student_layers: int) -> list[int]:
    """Teacher layer index for each student layer: ``[i * L_t // L_s for i in range(L_s)]``."""
    if not 1 <= student_layers <= teacher_layers:
        raise KDLabError(
            f"a student cut from a {teacher_layers}-layer teacher needs 1..{teacher_layers} layers, "
            f"got {student_layers}."
        )
    return [i * teacher_layers // student_layers for i in range(student_layers)]


def check_layer_map(layer_map: list[int], teacher_layers: int, student_layers: int | None = None) -> list[int]:
    """Validate an explicit map: right length, integers in range, no repeats. Returns it as a list."""
    layer_map = list(layer_map)
    if student_layers is not None and len(layer_map) != student_layers:
        raise KDLabError(f"layer_map {layer_map} has {len(layer_map)} entries for a {student_layers}-layer student.")
    if not layer_map:
        raise KDLabError("layer_map is empty: a student needs at least 1 layer.")
    if len(layer_map) > teacher_layers:
        raise KDLabError(f"layer_map {layer_map} has more layers than the {teacher_layers}-layer teacher.")
    bad = [i for i in layer_map if not isinstance(i, int) or not 0 <= i < teacher_layers]
    if bad:
        raise KDLabError(f"layer_map {layer_map}: indices {bad} are outside the teacher's layers 0..{teacher_layers - 1}.")
    if len(set(layer_map)) != len(layer_map):
        raise KDLabError(f"layer_map {layer_map} repeats a teacher layer: each student layer needs its own.")
    return layer_map


def init_student_from_teacher(
    teacher: nn.Module, num_layers: int, layer_map: list[int] | None = None
) -> nn.Module:
    """A new model of the teacher's class with ``num_layers`` encoder layers copied from the teacher.

    Embeddings, the mapped encoder layers, pooler and classifier are copied exactly (float32, on the CPU).
    The map is stored in ``student.config.kdlab_layer_map`` (saved with the model).
    """
    teacher_layers = len(encoder_layers(teacher))
    if not 1 <= num_layers <= teacher_layers:
        raise KDLabError(
            f"student layers must be between 1 and the teacher's {teacher_layers}, got {num_layers}."
        )
    if layer_map is None:
        layer_map = alternate_layer_map(teacher_layers, num_layers)
    layer_map = check_layer_map(layer_map, teacher_layers, num_layers)

    config = copy.deepcopy(teacher.config)
    config.num_hidden_layers = num_layers
    config.kdlab_layer_map = layer_map
    config.kdlab_teacher_layers = teacher_layers
    config.dtype = torch.float32
    student = type(teacher)(config)

    source = teacher.state_dict()
    state = {}
    for key in student.state_dict():
        match = _LAYER_KEY.match(key)
        src = f"{match.group(1)}{layer_map[int(match.group(2))]}{match.group(3)}" if match else key
        state[key] = source[src].detach().to("cpu", torch.float32).clone()
    student.load_state_dict(state, strict=True)
    return student.eval()


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def model_with_layers(teacher: nn.Module, num_layers: int) -> nn.Module:
    """An uninitialized (meta-device) model of the teacher's shape with ``num_layers`` layers, for counting."""
    config = copy.deepcopy(teacher.config)
    config.num_hidden_layers = num_layers
    with torch.device("meta"):
        return type(teacher)(config)


def parameter_table(teacher: nn.Module, student_layers: list[int]):
    """Real parameter counts of the teacher and of students with the given layer counts (a DataFrame).

    Columns: model, layers, hidden, params, params_M, fp32_MB, vs_teacher (fraction of the teacher's size),
    compression (teacher params / model params).
    """
    teacher_layers = len(encoder_layers(teacher))
    t_params = count_parameters(teacher)
    rows = []
    for layers in [teacher_layers, *student_layers]:
        n = t_params if layers == teacher_layers else count_parameters(model_with_layers(teacher, layers))
        rows.append(
            dict(
                model="teacher" if layers == teacher_layers else f"student-{layers}L",
                layers=layers,
                hidden=teacher.config.hidden_size,
                params=n,
                params_M=round(n / 1e6, 1),
                fp32_MB=round(n * 4 / 2**20, 1),
                vs_teacher=round(n / t_params, 3),
                compression=round(t_params / n, 2),
            )
        )
    return pd.DataFrame(rows)


def _student_hub_error(name: str, exc: Exception) -> KDLabError:
    return KDLabError(
        f"could not load student {name!r} ({type(exc).__name__}: {exc}). If the Hugging Face Hub is unreachable: "
        "set the config's `student` to a local folder (config.json + model.safetensors + tokenizer) of a model "
        "that shares the teacher's tokenizer, use student=None (cut from the teacher), or the offline smoke-size "
        "analogue KDLAB_PROFILE=smoke-x (tiny random teacher and student, no downloads)."
    )


def load_student_model(name_or_path: str, num_labels: int = 2, seed: int = 0):
    """A student loaded on its own, not cut from the teacher: ``(model, tokenizer)``.

    ``name_or_path``: a Hub id (e.g. ``bert-base-uncased``; its classification head is newly initialized, with
    ``seed``), a local ``save_pretrained`` folder, or ``"tiny-random:layers=2,hidden=32,heads=2"`` (a tiny random
    BERT over the smoke tokenizer, ``kdlab.models.tiny.build_tiny_tokenizer``). Never runs remote code. Check its
    tokenizer against the teacher's with ``kdlab.models.vocabulary.check_same_vocabulary`` (``build_student`` does).
    """
    sizes = parse_tiny_student(name_or_path)
    if sizes is not None:
        tokenizer = build_tiny_tokenizer()
        return build_tiny_bert(len(tokenizer), num_labels, seed, **sizes), tokenizer
    if name_or_path == MINILM_L6:  # the packaged pretrained encoder (a new head): e.g. born-again students
        name_or_path = str(minilm_l6_path())
    model, tokenizer, _ = load_classifier(name_or_path, num_labels, seed, "student",
                                          lambda exc: _student_hub_error(name_or_path, exc))
    return model.float().eval(), tokenizer


def random_student_like(teacher: nn.Module, num_layers: int, seed: int = 0) -> nn.Module:
    """A model of the teacher's class and width with ``num_layers`` encoder layers and random weights (the
    baseline that shows what copying teacher layers is worth)."""
    teacher_layers = len(encoder_layers(teacher))
    if not 1 <= num_layers <= teacher_layers:
        raise KDLabError(f"student layers must be between 1 and the teacher's {teacher_layers}, got {num_layers}.")
    config = copy.deepcopy(teacher.config)
    config.num_hidden_layers = num_layers
    config.dtype = torch.float32
    for attr in ("kdlab_layer_map", "kdlab_teacher_layers"):
        if hasattr(config, attr):
            delattr(config, attr)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return type(teacher)(config).float().eval()


def random_encoder_student(teacher: nn.Module, num_layers: int, layer_map: list[int] | None = None,
                           seed: int = 0) -> nn.Module:
    """A student cut from the teacher (embeddings, pooler and classifier copied) whose encoder layers are then drawn
    at random (the model's own initialisation, seeded): the control that differs from the lab's student in the
    layer copy alone, so the gap between the two is what copying teacher layers is worth."""
    student = init_student_from_teacher(teacher, num_layers, layer_map)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for layer in encoder_layers(student):
            for module in layer.modules():
                student._init_weights(module)
    return student.eval()


def build_student(cfg, teacher: nn.Module, teacher_tokenizer=None) -> nn.Module:
    """The student a config asks for: cut from the teacher when ``cfg.student`` is None (``student_init="random"``:
    the same shape with random weights; ``"random-encoder"``: the teacher's embeddings and head, random layers), else
    loaded with ``load_student_model`` and checked to share the teacher's tokenizer (KDLabError saying what
    differs)."""
    if cfg.student is None:
        if getattr(cfg, "student_init", "teacher") == "random":
            return random_student_like(teacher, cfg.student_layers, cfg.seed)
        if getattr(cfg, "student_init", "teacher") == "random-encoder":
            return random_encoder_student(teacher, cfg.student_layers, cfg.layer_map, cfg.seed)
        return init_student_from_teacher(teacher, cfg.student_layers, cfg.layer_map)
    bilstm = parse_bilstm_spec(cfg.student)
    if bilstm is not None:  # "bilstm[:hidden=H,embedding=E]": the teacher's vocabulary and word embeddings
        return bilstm_from_teacher(teacher, seed=cfg.seed, **bilstm)
    model, tokenizer = load_student_model(cfg.student, teacher.config.num_labels, seed=cfg.seed)
    check_same_vocabulary(teacher, model, teacher_tokenizer, tokenizer)
    return model
