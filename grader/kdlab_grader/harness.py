"""The child side of re-checking exercises: run each submitted exercise cell, call its function on the inputs the
grader chose, and write what came back as data. Nothing here judges anything.

This file is copied into the child's throw-away folder and run there as ``main.py`` (``kdlab_grader.sandbox``); it
imports no kdlab module (kdlab is not even visible to a contained child), only torch, safetensors and the standard
library. Input: ``job.json`` (per exercise: its cell source, the function's name, the calls with their arguments)
and ``inputs.safetensors`` (the tensor arguments). Output, rewritten after every exercise so that a later endless
loop loses nothing: ``results.json`` and ``outputs-<i>.safetensors``. Values are tensors or JSON, never pickle.
"""

import json
import math
import os
import signal
import sys
import traceback

CELL = "<exercise cell>"
PRELUDE = "import math\nimport numpy as np\nimport torch\nimport torch.nn.functional as F\n"


class _Timeout(BaseException):
    pass


def _on_alarm(signum, frame):
    raise _Timeout()


def _error(exc: BaseException) -> dict:
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == CELL]
    frame = frames[-1] if frames else None
    return {"type": type(exc).__name__, "message": str(exc)[:500],
            "lineno": frame.lineno if frame else None, "line": (frame.line or "").strip()[:200] if frame else ""}


def _jsonable(value, depth=0):
    if value is None or isinstance(value, (bool, str)):
        return True
    if isinstance(value, (int, float)):
        return True
    if isinstance(value, (list, tuple)) and depth < 3:
        return all(_jsonable(v, depth + 1) for v in value)
    if isinstance(value, dict) and depth < 3:
        return all(isinstance(k, str) and _jsonable(v, depth + 1) for k, v in value.items())
    return False


def _encode(value, key: str, tensors: dict) -> dict:
    import torch

    try:
        import numpy as np

        if isinstance(value, np.generic):
            value = value.item()
        elif isinstance(value, np.ndarray):
            value = torch.from_numpy(np.ascontiguousarray(value))
    except ImportError:
        pass
    if isinstance(value, torch.Tensor):
        tensors[key] = value.detach().to("cpu").contiguous().clone()
        return {"t": "tensor", "key": key, "requires_grad": bool(value.requires_grad)}
    if _jsonable(value):
        if isinstance(value, float) and not math.isfinite(value):
            return {"t": "float", "v": repr(value)}
        return {"t": "json", "v": value, "tuple": isinstance(value, tuple)}
    return {"t": "opaque", "type": type(value).__name__}


def _decode_args(specs: list, inputs: dict) -> list:
    out = []
    for spec in specs:
        if spec["t"] == "tensor":
            tensor = inputs[spec["key"]].clone()
            out.append(tensor.requires_grad_(True) if spec.get("grad") else tensor)
        else:
            out.append(spec["v"])
    return out


def _call(fn, specs: list, inputs: dict, key: str, tensors: dict) -> dict:
    args = _decode_args(specs, inputs)
    try:
        value = fn(*args)
    except _Timeout:
        raise
    except BaseException as exc:  # noqa: BLE001 - the student's code may raise anything
        return {"ok": False, "error": _error(exc)}
    result = {"ok": True, "value": _encode(value, key, tensors)}
    import torch

    if isinstance(value, torch.Tensor) and value.requires_grad and value.numel() == 1:
        try:
            value.backward()
        except _Timeout:
            raise
        except BaseException as exc:  # noqa: BLE001
            result["backward_error"] = _error(exc)
        else:
            result["grads"] = {}
            for index, arg in enumerate(args):
                if isinstance(arg, torch.Tensor) and arg.grad is not None:
                    result["grads"][str(index)] = _encode(arg.grad, f"{key}g{index}", tensors)["key"]
    return result


def _write(results: list, index: int, tensors: dict) -> None:
    from safetensors.torch import save_file

    if tensors:
        save_file(tensors, f"outputs-{index}.safetensors")
    with open("results.tmp", "w", encoding="utf-8") as fh:
        json.dump({"exercises": results}, fh)
    os.replace("results.tmp", "results.json")


def main() -> None:
    with open("job.json", encoding="utf-8") as fh:
        job = json.load(fh)
    from safetensors.torch import load_file

    inputs = load_file("inputs.safetensors") if os.path.exists("inputs.safetensors") else {}
    signal.signal(signal.SIGALRM, _on_alarm)
    results = []
    for index, exercise in enumerate(job["exercises"]):
        entry = {"id": exercise["id"], "calls": []}
        tensors: dict = {}
        signal.alarm(max(1, int(job["timeout"])))
        try:
            namespace = {"__name__": "__exercise__"}
            exec(compile(PRELUDE, "<prelude>", "exec"), namespace)
            try:
                exec(compile(exercise["source"], CELL, "exec"), namespace)
            except _Timeout:
                raise
            except BaseException as exc:  # noqa: BLE001
                entry["cell_error"] = _error(exc)
            else:
                fn = namespace.get(exercise["function"])
                if not callable(fn):
                    entry["cell_error"] = {"type": "NameError", "message": f"the cell defines no function "
                                           f"{exercise['function']!r}", "lineno": None, "line": ""}
                else:
                    for c, specs in enumerate(exercise["calls"]):
                        entry["calls"].append(_call(fn, specs, inputs, f"e{index}c{c}", tensors))
        except _Timeout:
            entry["timeout"] = True
        finally:
            signal.alarm(0)
        results.append(entry)
        _write(results, index, tensors)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
