"""Settings read from environment variables (the lab's ``KDLAB_*`` and the LM part's): a JSON object of fields
(``json_object``), and single fields from strings (``env_fields``, parsed by ``transformers.HfArgumentParser``
from the dataclass's own annotations). Errors name the variable and show what to write instead."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import typing

from kdlab.errors import KDLabError

NO_CAP = ("none", "all")  # an optional number (``int | None``) set to one of these means None: no cap


def json_object(variable: str, example: str) -> dict:
    """The JSON object in ``$variable`` ({} when unset or empty); KDLabError with ``example`` when it is not one."""
    raw = os.environ.get(variable, "").strip()
    if not raw:
        return {}
    try:
        values = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise KDLabError(f"{variable}={raw!r} is not JSON: write an object such as {variable}='{example}' "
                         f"({exc.msg}).") from exc
    if not isinstance(values, dict):
        raise KDLabError(f"{variable} must be a JSON object of fields, got {raw!r}.")
    return values


def env_fields(cls, variables: dict[str, str]) -> dict:
    """``{field: value}`` from the set, non-empty environment variables of ``variables`` (variable -> field of the
    dataclass ``cls``), each string turned into the field's type by ``HfArgumentParser`` (``"1.5"`` -> 1.5 for a
    float; ``"yes"``/``"no"`` for a bool). ``none``/``all`` set an optional number to None. KDLabError naming the
    variable for a string the field's type cannot take."""
    given = {field: os.environ[env] for env, field in variables.items() if os.environ.get(env, "") != ""}
    if not given:
        return {}
    hints = typing.get_type_hints(cls)
    out, argv = {}, []
    for field, raw in given.items():
        if raw.strip().lower() in NO_CAP and set(typing.get_args(hints[field])) == {int, type(None)}:
            out[field] = None
        else:
            argv += [f"--{field}", raw]
    from transformers import HfArgumentParser  # lazy: importing transformers takes ~1.4 s, only needed when set

    # A dataclass of just these fields (as annotated in ``cls``), so that the parser reads nothing else.
    wanted = dataclasses.make_dataclass(f"{cls.__name__}FromEnvironment",
                                        [(name, hints[name], dataclasses.field(default=None)) for name in given])
    parser = HfArgumentParser(wanted, exit_on_error=False)
    try:
        parsed, _ = parser.parse_known_args(argv)
    except argparse.ArgumentError as exc:
        field = (exc.argument_name or "").split("/")[0].lstrip("-").replace("-", "_")  # "num_epochs/--num-epochs"
        env = next((e for e, f in variables.items() if f == field), field)
        no_cap = " (or 'none'/'all' for no cap)" if type(None) in typing.get_args(hints.get(field)) else ""
        raise KDLabError(f"{env}={given.get(field)!r}: {exc.message}; {field} takes "
                         f"{_type_name(hints.get(field))} values{no_cap}.") from exc
    out.update({field: getattr(parsed, field) for field in given if field not in out})
    return out


def _type_name(annotation) -> str:
    options = [a for a in (typing.get_args(annotation) or (annotation,)) if a is not type(None)]
    return " or ".join(getattr(a, "__name__", str(a)) for a in options)
