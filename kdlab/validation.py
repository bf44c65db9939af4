"""Validation of configuration values that needs no model: types, loss weights, the optional terms' settings, the
schedule names, and the student specs a config may name (``tiny-random:...``, ``bilstm:...``). KDLabError names the
field and what it must be (``kdlab.config.KDConfig.validate`` calls these; kdlab.models builds what the specs name)."""

from __future__ import annotations

import dataclasses

from kdlab.errors import KDLabError

RELATION_KINDS = ("qq", "kk", "vv")  # MiniLMv2 relation heads: Q-Q, K-K and V-V self-attention relations


_SCALARS = {"int": (int,), "float": (int, float), "bool": (bool,), "str": (str,)}


def _fits(value, annotation: str) -> bool:
    """Whether ``value`` matches a field annotation of the forms kdlab uses (``int``, ``float | None``,
    ``list[int]``, ``list[list[int]] | None``...). bool is not accepted as a number."""
    for option in (a.strip() for a in annotation.split("|")):
        if option == "None" and value is None:
            return True
        if option.startswith("list[") and isinstance(value, list):
            inner = option[len("list["):-1]
            if all(_fits(v, inner) for v in value):
                return True
        elif option in _SCALARS and isinstance(value, _SCALARS[option]):
            if option in ("int", "float") and isinstance(value, bool):
                continue
            return True
    return False


def check_types(cfg) -> None:
    """KDLabError naming the field, the value and the type it needs (before any comparison can raise TypeError)."""
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if not _fits(value, str(f.type)):
            example = f.default if f.default is not dataclasses.MISSING else f.default_factory()
            raise KDLabError(f"{f.name}={value!r} ({type(value).__name__}): it must be {f.type} "
                             f"(e.g. {f.name}={example!r}).")


def validate_loss_settings(temperature: float, alpha: float, beta: float, gamma: float, delta: float,
                           **extra_weights: float) -> None:
    """Reject a temperature <= 0, negative weights, or weights that are all zero.

    ``extra_weights``: the optional terms' weights by name (``relation_weight=``, ``hidden_weight=``).
    """
    if not temperature > 0:
        raise KDLabError(f"temperature={temperature}: the KD temperature must be > 0 (the lab uses T=4).")
    weights = {"alpha": alpha, "beta": beta, "gamma": gamma, "delta": delta, **extra_weights}
    negative = {k: v for k, v in weights.items() if v < 0}
    if negative:
        raise KDLabError(f"loss weights must be >= 0, got {negative}.")
    if not any(v > 0 for v in weights.values()):
        raise KDLabError(f"all loss weights are zero: at least one of {'/'.join(weights)} must be > 0.")


def check_relation_kinds(kinds) -> list[str]:
    """Relation kinds as a list of two-letter names over q/k/v (e.g. ["qq", "kk", "vv"]); KDLabError otherwise."""
    if isinstance(kinds, str):
        kinds = [kinds]
    kinds = list(kinds)
    bad = [k for k in kinds if not (isinstance(k, str) and len(k) == 2 and set(k) <= set("qkv"))]
    if not kinds or bad:
        raise KDLabError(
            f"relation_kinds={kinds!r}: use two-letter names over q, k, v, e.g. {list(RELATION_KINDS)} "
            "(MiniLMv2's Q-Q, K-K, V-V relations)."
        )
    if len(set(kinds)) != len(kinds):
        raise KDLabError(f"relation_kinds={kinds!r} repeats a kind.")
    return kinds


def validate_extra_terms(relation_weight: float, relation_heads: int | None, relation_kinds,
                         relation_teacher_layer: int, relation_student_layer: int,
                         hidden_layer_map: list | None) -> None:
    """Checks of the relation-head and hidden-state settings that need no model (weights are checked by
    ``validate_loss_settings``; layer ranges and widths by ``kdlab.distillation.trainer.check_distillation_setup``)."""
    check_relation_kinds(relation_kinds)
    if relation_heads is not None and (isinstance(relation_heads, bool) or not isinstance(relation_heads, int)
                                       or relation_heads < 1):
        raise KDLabError(f"relation_heads={relation_heads!r}: use a positive integer (or None when relation_weight=0).")
    if relation_weight > 0 and relation_heads is None:
        raise KDLabError(
            "relation_weight > 0 needs relation_heads: the number of MiniLMv2 relation heads, dividing both the "
            "teacher's and the student's hidden width (e.g. 12 for 384 and 768)."
        )
    for name, value in (("relation_teacher_layer", relation_teacher_layer),
                        ("relation_student_layer", relation_student_layer)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise KDLabError(f"{name}={value!r}: use an encoder layer index (0-based; -1 = last).")
    if hidden_layer_map is not None:
        pairs = list(hidden_layer_map)
        bad = [p for p in pairs if not (isinstance(p, (list, tuple)) and len(p) == 2
                                         and all(isinstance(i, int) and not isinstance(i, bool) for i in p))]
        if not pairs or bad:
            raise KDLabError(
                f"hidden_layer_map={hidden_layer_map!r}: use a non-empty list of [student_index, teacher_index] "
                "integer pairs over hidden states (0 = embeddings, L = last layer), e.g. [[1, 2], [2, 4]]."
            )


# --- the KD term's form and the schedules (kdlab.distillation.schedules computes them) -------------------------
WEIGHT_SCHEDULES = ("constant", "staged", "soft-to-hard")
TEMPERATURE_SCHEDULES = ("constant", "anneal")
KD_STYLES = ("kl", "mse")  # the KD term: Hinton's T²·KL, or Tang et al.'s logits MSE


def check_schedules(weight_schedule: str, temperature_schedule: str, final_temperature: float,
                    kd_style: str = "kl", logits_weight: float | None = None) -> None:
    """KDLabError for an unknown schedule name or KD style, a final temperature that is not > 0, or a ``staged``
    schedule whose second stage would train nothing (``logits_weight`` = α + β is 0; None: not checked)."""
    if kd_style not in KD_STYLES:
        raise KDLabError(f"kd_style={kd_style!r}: use 'kl' (Hinton, T²·KL) or 'mse' (logits MSE, Tang et al.).")
    if weight_schedule not in WEIGHT_SCHEDULES:
        raise KDLabError(f"weight_schedule={weight_schedule!r}: use one of {', '.join(WEIGHT_SCHEDULES)}.")
    if temperature_schedule not in TEMPERATURE_SCHEDULES:
        raise KDLabError(f"temperature_schedule={temperature_schedule!r}: use one of "
                         f"{', '.join(TEMPERATURE_SCHEDULES)}.")
    if not final_temperature > 0:
        raise KDLabError(f"final_temperature={final_temperature}: the temperature at the end of an `anneal` "
                         "schedule must be > 0 (e.g. 1).")
    if weight_schedule == "staged" and logits_weight == 0:
        raise KDLabError("weight_schedule='staged' trains the relations first and then the logits terms, but "
                         "alpha = beta = 0: give alpha or beta a weight, or use weight_schedule='constant'.")


# --- students named by a spec in the config (built by kdlab.models) --------------------------------------------
TINY_SIZES = dict(hidden_size=64, num_hidden_layers=4, num_attention_heads=4, intermediate_size=128)  # smoke BERT
TINY_STUDENT = "tiny-random"  # "tiny-random:layers=2,hidden=32,heads=2[,intermediate=64]"
_TINY_KEYS = {"layers": "num_hidden_layers", "hidden": "hidden_size", "heads": "num_attention_heads",
              "intermediate": "intermediate_size"}


def parse_tiny_student(name: str) -> dict | None:
    """``"tiny-random:layers=2,hidden=32,heads=2"`` → BertConfig sizes; ``None`` for any other name.

    Omitted sizes take ``kdlab.validation.TINY_SIZES``; ``intermediate`` defaults to 2 × hidden when hidden is given.
    """
    if name != TINY_STUDENT and not name.startswith(TINY_STUDENT + ":"):
        return None
    sizes: dict = {}
    spec = name[len(TINY_STUDENT) + 1:]
    for item in filter(None, (part.strip() for part in spec.split(","))):
        key, _, value = item.partition("=")
        if key.strip() not in _TINY_KEYS or not value.strip().isdigit() or int(value) < 1:
            raise KDLabError(
                f"student {name!r}: {item!r} is not a size; write e.g. 'tiny-random:layers=2,hidden=32,heads=2' "
                f"(keys: {', '.join(_TINY_KEYS)}; positive integers)."
            )
        sizes[_TINY_KEYS[key.strip()]] = int(value)
    if "hidden_size" in sizes and "intermediate_size" not in sizes:
        sizes["intermediate_size"] = 2 * sizes["hidden_size"]
    sizes = {**TINY_SIZES, **sizes}
    if sizes["hidden_size"] % sizes["num_attention_heads"]:
        raise KDLabError(f"student {name!r}: {sizes['num_attention_heads']} heads do not divide the width "
                         f"{sizes['hidden_size']}.")
    return sizes


def parse_bilstm_spec(spec: str | None) -> dict | None:
    """``"bilstm"`` or ``"bilstm:hidden=300,embedding=128"`` -> keyword arguments of ``bilstm_from_teacher``
    (None when ``spec`` names another student)."""
    if not spec or not (spec == "bilstm" or spec.startswith("bilstm:")):
        return None
    names = {"hidden": "hidden_size", "embedding": "embedding_size"}
    out = {}
    for item in filter(None, spec.partition(":")[2].split(",")):
        key, _, value = item.partition("=")
        if key not in names or not value.isdigit():
            raise KDLabError(f"student={spec!r}: write bilstm:hidden=H,embedding=E with whole numbers "
                             f"(known keys: {', '.join(names)}).")
        out[names[key]] = int(value)
    return out
