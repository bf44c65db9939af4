"""Validation of configuration values that needs no model: types, loss weights, the optional terms' settings.
KDLabError names the field and what it must be (``kdlab.config.KDConfig.validate`` calls these)."""

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
    ``validate_loss_settings``; layer ranges and widths by ``kdlab.distill.check_distillation_setup``)."""
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
