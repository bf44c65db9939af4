"""Settings read from environment variables (the lab's ``KDLAB_*`` and the LM part's): a JSON object of fields, and
a string turned into a field's type. Errors name the variable and show what to write instead."""

from __future__ import annotations

import json
import os

from kdlab.errors import KDLabError

# Integer fields where "none" / "all" mean no cap.
OPTIONAL_INTS = ("max_train_samples", "max_eval_samples", "teacher_train_samples", "labelled_train_samples",
                 "num_threads", "eval_steps", "save_steps")


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


def coerce(name: str, value: str, template, env: str = ""):
    """Turn an environment string into the type of the field's default ``template`` (errors name ``env``)."""
    if name in OPTIONAL_INTS and value.lower() in ("none", "all"):
        return None
    try:
        if isinstance(template, bool):
            return value.lower() in ("1", "true", "yes")
        if isinstance(template, float):
            return float(value)
        if isinstance(template, int) or name in OPTIONAL_INTS:
            return int(value)
    except ValueError as exc:
        raise KDLabError(f"{env or name}={value!r}: expected a number for {name} (or 'none' for all where "
                         "that makes sense).") from exc
    return value
