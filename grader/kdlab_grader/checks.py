"""Re-checking a submission's exercises: the child evaluates, the grader judges.

1. ``probe`` runs each exercise's cases in the grader with a stand-in function that only records the arguments it
   is called with: the inputs, drawn from a fresh random seed that the child never sees.
2. ``job_files`` writes those inputs as data (``job.json`` + ``inputs.safetensors``); the contained child
   (``kdlab_grader.harness``) runs the submitted cells, calls the function on them and writes back its outputs as
   data (JSON + safetensors, never pickle).
3. ``judge`` re-runs the same cases in the grader with a stand-in that returns the child's outputs (gradients
   included), so the comparison with kdlab's reference and the feedback message are computed here, with the
   notebook checks' own code and messages. Nothing the child prints or patches reaches this process: a wrong
   function can only pass by returning the right numbers for inputs it could not know in advance.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch

from kdlab.exercises import EXERCISES
from kdlab.exercises.core import CheckResult, RaisedElsewhere, run_cases

HARNESS = Path(__file__).with_name("harness.py")
OUTPUTS = ("results.json",)


class _Probed(Exception):
    """Raised by the recording stand-in once it has the arguments."""


class _Recorder:
    def __init__(self):
        self.args = None

    def __call__(self, *args):
        self.args = args
        raise _Probed()


@dataclass
class Exercise:
    """One exercise of a submission: its id, the function's name, the code to run and the recorded calls."""

    id: str
    function: str
    source: str
    seed: int
    calls: list  # per case: the argument tuple the case passes to the function


def probe(exercise: str, seed: int) -> list:
    """The arguments each case of ``exercise`` passes to the student's function under ``seed``."""
    calls = []
    for _, case in EXERCISES[exercise].cases(seed):
        recorder = _Recorder()
        try:
            case(recorder)
        except _Probed:
            pass
        calls.append(recorder.args)
    return calls


def _spec(value, key: str, tensors: dict) -> dict:
    if isinstance(value, torch.Tensor):
        tensors[key] = value.detach().contiguous().clone()
        return {"t": "tensor", "key": key, "grad": bool(value.requires_grad)}
    return {"t": "json", "v": json.loads(json.dumps(value))}


def job_files(exercises: list[Exercise], timeout: float) -> dict[str, bytes]:
    """``job.json``, ``inputs.safetensors`` and ``main.py`` (the harness) for one child."""
    from safetensors.torch import save

    tensors: dict = {}
    job = {"timeout": timeout, "exercises": []}
    for e, exercise in enumerate(exercises):
        calls = [[_spec(a, f"e{e}c{c}a{k}", tensors) for k, a in enumerate(args or ())]
                 for c, args in enumerate(exercise.calls)]
        job["exercises"].append({"id": exercise.id, "function": exercise.function, "source": exercise.source,
                                 "calls": calls})
    files = {"job.json": json.dumps(job).encode()}
    if tensors:
        files["inputs.safetensors"] = save(tensors)
    return files


# --- judging -----------------------------------------------------------------------------------------------------
class _Replayed(torch.autograd.Function):
    """The child's output as a tensor whose backward hands the child's gradients to the inputs."""

    @staticmethod
    def forward(ctx, value, grads, *inputs):
        ctx.grads = grads
        return value.clone()

    @staticmethod
    def backward(ctx, grad_output):
        return (None, None, *[None if g is None else grad_output * g for g in ctx.grads])


def _value(spec: dict, tensors: dict):
    kind = spec.get("t")
    if kind == "tensor":
        return tensors[spec["key"]]
    if kind == "float":
        return float(spec["v"])
    if kind == "json":
        return tuple(spec["v"]) if spec.get("tuple") else spec["v"]
    return type(str(spec.get("type", "object"))[:40] or "object", (), {})()  # an object of the returned type's name


class _Replay:
    """Stands in for the student's function in a case: returns (or raises) what the child's call did."""

    def __init__(self, outcome: dict, tensors: dict):
        self.outcome, self.tensors = outcome, tensors

    def __call__(self, *args):
        outcome = self.outcome
        if not outcome.get("ok"):
            error = outcome.get("error") or {}
            if error.get("type") == "NotImplementedError":
                raise NotImplementedError()
            raise RaisedElsewhere(error)
        value = _value(outcome["value"], self.tensors)
        if not (isinstance(value, torch.Tensor) and outcome["value"].get("requires_grad")):
            return value
        inputs = [a for a in args if isinstance(a, torch.Tensor)]
        positions = [i for i, a in enumerate(args) if isinstance(a, torch.Tensor)]
        if "backward_error" in outcome:
            return _Failing.apply(value.float(), outcome["backward_error"], *inputs)
        grads = [self.tensors.get(outcome.get("grads", {}).get(str(p))) for p in positions]
        return _Replayed.apply(value.float(), grads, *inputs)


class _Failing(torch.autograd.Function):
    @staticmethod
    def forward(ctx, value, error, *inputs):
        ctx.error = error
        return value.clone()

    @staticmethod
    def backward(ctx, grad_output):
        raise RaisedElsewhere(ctx.error)


def load_outputs(files: dict[str, bytes]) -> tuple[dict, dict]:
    """``(results by exercise id, tensors)`` from what the child wrote; ({}, {}) when it wrote nothing readable."""
    from safetensors.torch import load

    try:
        results = json.loads(files.get("results.json", b"{}").decode("utf-8"))
        entries = {e["id"]: (i, e) for i, e in enumerate(results.get("exercises", [])) if isinstance(e, dict)}
    except (ValueError, UnicodeDecodeError, AttributeError, KeyError, TypeError):
        return {}, {}
    tensors = {}
    for name, data in files.items():
        if name.startswith("outputs-") and name.endswith(".safetensors"):
            try:
                tensors.update(load(data))
            except Exception:  # noqa: BLE001 - a damaged file is an unreadable answer, not a grader crash
                pass
    return entries, tensors


def output_names(count: int) -> tuple[str, ...]:
    return (*OUTPUTS, *[f"outputs-{i}.safetensors" for i in range(count)])


def judge(exercise: Exercise, entry: dict | None, tensors: dict, timeout: float) -> CheckResult:
    """The check's result for the child's outputs of ``exercise`` (computed here, with the check's own messages)."""
    if entry is None:
        return CheckResult(exercise.id, False, True, "no answer came back from the child (it was stopped by a limit "
                                                     "or by an earlier exercise's timeout)")
    if entry.get("timeout"):
        return CheckResult(exercise.id, False, True, f"timed out after {timeout:.0f} s (an endless loop?)")
    if "cell_error" in entry:
        error = entry["cell_error"]
        if error.get("type") == "NotImplementedError":
            from kdlab.exercises.core import not_attempted

            return not_attempted(exercise.id)
        return CheckResult(exercise.id, False, True,
                           f"the cell does not run on its own: {error.get('type')}: {error.get('message', '')[:200]}")
    calls = entry.get("calls", [])
    cases = EXERCISES[exercise.id].cases(exercise.seed)
    if len(calls) != len(cases):
        return CheckResult(exercise.id, False, True, "the child's answers do not match the cases asked")
    replayed = [(name, _bind(case, _Replay(outcome, tensors))) for (name, case), outcome in zip(cases, calls)]
    return run_cases(exercise.id, None, replayed)


def _bind(case, replay):
    return lambda _fn: case(replay)
