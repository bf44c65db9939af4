"""Checks of settings that need no model, shared by the lab's ``KDConfig`` and the LM part's ``LMConfig``: the
loader (``build_config``: unknown names, then types by pydantic, then the class's own ``validate``), the loss
settings (``check_loss``, for a config and for every ``DistillationLoss``), the relation kinds, and the student specs
a config may name (``tiny-random:...``, ``bilstm:...``; kdlab.models builds what they name). Every KDLabError names
the setting and what to write instead."""

from __future__ import annotations

import dataclasses
import difflib
import functools
import typing

from pydantic import TypeAdapter, ValidationError

from kdlab.errors import KDLabError

RELATION_KINDS = ("qq", "kk", "vv")  # MiniLMv2 relation heads: Q-Q, K-K and V-V self-attention relations
RELATION_STYLES = ("kl", "mse")  # MiniLM's KL of relations, or the course text's MSE on attention and A·V
KD_STYLES = ("kl", "mse")  # the KD term: Hinton's T²·KL, or Tang et al.'s logits MSE
WEIGHT_SCHEDULES = ("constant", "staged", "soft-to-hard")  # kdlab.distillation.schedules computes them
TEMPERATURE_SCHEDULES = ("constant", "anneal")


def check_types(settings) -> None:
    """KDLabError naming the field, the value and the type it needs, for the first field of the dataclass
    instance ``settings`` whose value does not have its annotated type (pydantic, strict: no bool for a number,
    no "3" for 3; an int is a float). Run before any check that compares values."""
    hints = typing.get_type_hints(type(settings))
    for f in dataclasses.fields(settings):
        value = getattr(settings, f.name)
        try:
            _adapter(hints[f.name]).validate_python(value, strict=True)
        except ValidationError as exc:
            example = f.default if f.default is not dataclasses.MISSING else f.default_factory()
            raise KDLabError(f"{f.name}={value!r} ({type(value).__name__}): it must be "
                             f"{_type_name(hints[f.name])} (e.g. {f.name}={example!r}).") from exc


@functools.cache
def _adapter(annotation) -> TypeAdapter:
    return TypeAdapter(annotation)


def _type_name(annotation) -> str:
    """``int``, ``list[int] | None``: the annotation as written."""
    return annotation.__name__ if isinstance(annotation, type) else str(annotation).replace("NoneType", "None")


def refuse_unknown(cls, names, source: str) -> None:
    """KDLabError listing the ``names`` that are not fields of ``cls``, each with its closest field name."""
    known = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(names) - set(known))
    if unknown:
        matches = {name: difflib.get_close_matches(name, known, n=1) for name in unknown}
        close = "; ".join(f"{name!r}: did you mean {match[0]!r}?" for name, match in matches.items() if match)
        raise KDLabError(f"unknown setting(s) {unknown} in {source}" + (f" ({close})" if close else "")
                         + f". Known settings of {cls.__name__}: {', '.join(sorted(known))}.")


def build_config(cls, values: dict, source: str):
    """``cls(**values).validate()`` for a settings dataclass (KDConfig, LMConfig), after refusing names it does
    not have (KDLabError with the closest known names) and values of the wrong type (``check_types``)."""
    refuse_unknown(cls, values, source)
    settings = cls(**values)
    check_types(settings)
    return settings.validate()


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



def check_loss(settings, logits_weight_needed: bool = True) -> None:
    """KDLabError for loss settings no run can use (``settings``: a KDConfig or a DistillationLoss, both
    ``kdlab.config.LossSettings``): T <= 0, negative or all-zero weights, unknown styles or schedules, and the
    relation/hidden settings that can be refused without a model (layer ranges and widths need both models:
    ``check_distillation_setup`` in kdlab.distillation.trainer). ``logits_weight_needed``: refuse a ``staged``
    schedule whose second stage (α·CE + β·KD) would train nothing."""
    if not settings.temperature > 0:
        raise KDLabError(f"temperature={settings.temperature}: the KD temperature must be > 0 (the lab uses T=4).")
    weights = {"alpha": settings.alpha, "beta": settings.beta, "gamma": settings.gamma, "delta": settings.delta,
               "relation_weight": settings.relation_weight, "hidden_weight": settings.hidden_weight}
    negative = {k: v for k, v in weights.items() if v < 0}
    if negative:
        raise KDLabError(f"loss weights must be >= 0, got {negative}.")
    if not any(v > 0 for v in weights.values()):
        raise KDLabError(f"all loss weights are zero: at least one of {'/'.join(weights)} must be > 0.")
    for name, allowed in (("relation_style", RELATION_STYLES), ("weight_schedule", WEIGHT_SCHEDULES),
                          ("temperature_schedule", TEMPERATURE_SCHEDULES)):
        if getattr(settings, name) not in allowed:
            raise KDLabError(f"{name}={getattr(settings, name)!r} is unknown: use one of {', '.join(allowed)}.")
    if settings.kd_style not in KD_STYLES:
        raise KDLabError(f"kd_style={settings.kd_style!r}: use 'kl' (Hinton, T²·KL) or 'mse' (logits MSE, Tang et "
                         "al.).")
    if not settings.final_temperature > 0:
        raise KDLabError(f"final_temperature={settings.final_temperature}: the temperature at the end of an "
                         "`anneal` schedule must be > 0 (e.g. 1).")
    if logits_weight_needed and settings.weight_schedule == "staged" and settings.alpha + settings.beta == 0:
        raise KDLabError("weight_schedule='staged' trains the relations first and then the logits terms, but "
                         "alpha = beta = 0: give alpha or beta a weight, or use weight_schedule='constant'.")
    check_relation_kinds(settings.relation_kinds)
    if settings.relation_heads is not None and settings.relation_heads < 1:
        raise KDLabError(f"relation_heads={settings.relation_heads!r}: use a positive integer (or None when "
                         "relation_weight=0).")
    if settings.relation_weight > 0 and settings.relation_heads is None:
        raise KDLabError(
            "relation_weight > 0 needs relation_heads: the number of MiniLMv2 relation heads, dividing both the "
            "teacher's and the student's hidden width (e.g. 12 for 384 and 768)."
        )
    if settings.hidden_layer_map is not None and (not settings.hidden_layer_map
                                              or any(len(pair) != 2 for pair in settings.hidden_layer_map)):
        raise KDLabError(
            f"hidden_layer_map={settings.hidden_layer_map!r}: use a non-empty list of [student_index, teacher_index] "
            "integer pairs over hidden states (0 = embeddings, L = last layer), e.g. [[1, 2], [2, 4]]."
        )


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
