"""What every exercise check shares: the result object, how it is shown, and the cases runner.

A check runs the student's function on random and edge-case inputs, compares it with kdlab's reference, and on a
mismatch looks for the specific mistake (a missing T², a reversed KL, unmasked padding...) so the message says
what to fix. It never raises on a wrong answer: the notebook goes on, and the lab keeps training with kdlab's own
functions. In a notebook the result is shown as text plus a machine-readable output (MIME type ``MIME``) that
``python -m kdlab grade`` reads; outside IPython it is printed.
"""

from __future__ import annotations

import hashlib
import inspect
import math
import traceback
from dataclasses import asdict, dataclass, field
from typing import Callable

import torch

from kdlab import __version__

MIME = "application/vnd.kdlab.check+json"
# The one name of the reversed-KL mistake (KL(student ‖ teacher) where KL(teacher ‖ student) is asked): every hint
# for it starts with this phrase, and a check that finds it sets ``CheckResult.kl_reversed`` (02's loss race says
# what a reversed KL can and cannot show with two classes).
REVERSED_KL = "the KL direction is reversed"


@dataclass
class CheckResult:
    """The outcome of one exercise check."""

    exercise: str  # the exercise id, e.g. "kd_loss"
    passed: bool
    attempted: bool
    message: str  # one line: what passed, or the first failing case and what to fix
    cases_passed: int = 0
    cases_total: int = 0
    source_sha: str = ""  # sha256 of the checked function's source (stale-output detection when grading)
    details: list[str] = field(default_factory=list)
    kl_reversed: bool = False  # the first failing case matched the reversed KL (REVERSED_KL)

    @property
    def text(self) -> str:
        mark = "✓" if self.passed else ("…" if not self.attempted else "✗")
        lines = [f"{mark} [{self.exercise}] {self.message}"]
        lines += [f"    {d}" for d in self.details]
        return "\n".join(lines)

    def payload(self) -> dict:
        return {**asdict(self), "kdlab_version": __version__}

    def _repr_mimebundle_(self, include=None, exclude=None):
        return {"text/plain": self.text, MIME: self.payload()}


class Mismatch(Exception):
    """A case whose result differs from the reference; the message says how (``kl_reversed``: the reversed KL)."""

    def __init__(self, message: str, kl_reversed: bool = False):
        super().__init__(message)
        self.kl_reversed = kl_reversed


class RaisedElsewhere(Exception):
    """The student's function raised in another process (``kdlab grade`` runs it in a contained child); ``error``
    holds what the child reported: ``type``, ``message``, ``lineno``, ``line``."""

    def __init__(self, error: dict):
        super().__init__(str(error.get("message", "")))
        self.error = error


def not_attempted(exercise: str) -> CheckResult:
    return CheckResult(exercise, False, False,
                       "not attempted yet: replace `raise NotImplementedError()` with your code and run this cell "
                       "again. (The lab goes on with kdlab's own function, so the rest of the notebook still runs.)")


def source_sha(fn: Callable) -> str:
    try:
        return hashlib.sha256(inspect.getsource(fn).encode()).hexdigest()
    except (OSError, TypeError):
        return ""


def run_cases(exercise: str, fn: Callable, cases: list[tuple[str, Callable[[Callable], None]]]) -> CheckResult:
    """Run ``cases`` (name, test(fn)) in order; stop at the first failure and report it with its hint."""
    passed = 0
    for name, case in cases:
        try:
            case(fn)
        except NotImplementedError:
            return not_attempted(exercise)
        except Mismatch as exc:
            return CheckResult(exercise, False, True, f"case '{name}': {exc}", passed, len(cases), source_sha(fn),
                               kl_reversed=exc.kl_reversed)
        except RaisedElsewhere as exc:
            e = exc.error
            return CheckResult(exercise, False, True,
                               f"case '{name}': your function raised {e.get('type')}: {e.get('message')} "
                               f"(line {e.get('lineno')}: {e.get('line', '')})", passed, len(cases), source_sha(fn))
        except Exception as exc:  # the student's code raised: say where
            frame = traceback.extract_tb(exc.__traceback__)[-1]
            return CheckResult(exercise, False, True,
                               f"case '{name}': your function raised {type(exc).__name__}: {exc} "
                               f"(line {frame.lineno}: {(frame.line or '').strip()})", passed, len(cases),
                               source_sha(fn))
        passed += 1
    return CheckResult(exercise, True, True, f"passed all {len(cases)} cases.", passed, len(cases), source_sha(fn))


def emit(result: CheckResult) -> None:
    """Show a result: in a notebook as text + the machine-readable payload, elsewhere as printed text."""
    try:
        from IPython import get_ipython

        shell = get_ipython()
    except ImportError:
        shell = None
    if shell is not None and type(shell).__name__ != "TerminalInteractiveShell":
        from IPython.display import display

        display(result)
    else:
        print(result.text)


# --- comparing numbers ------------------------------------------------------------------------------------------
def as_float(value, what: str = "your function") -> float:
    """A scalar from a 0-d tensor or a Python number; Mismatch otherwise."""
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise Mismatch(f"{what} returned a tensor of shape {tuple(value.shape)}; return one number (a scalar "
                           "tensor): the mean over the batch.")
        return float(value.detach().float())
    if isinstance(value, (int, float)):
        return float(value)
    raise Mismatch(f"{what} returned {type(value).__name__}; return a scalar tensor.")


def close(a: float, b: float, rel: float = 1e-4, abs_: float = 1e-6) -> bool:
    return math.isfinite(a) and math.isfinite(b) and abs(a - b) <= max(abs_, rel * max(abs(a), abs(b)))


def diagnose(got: float, expected: float, alternatives: dict[str, float], context: str) -> None:
    """Raise Mismatch: name the alternative computation ``got`` matches (a known mistake), if any."""
    if not math.isfinite(got):
        raise Mismatch(f"{context}: got {got} (NaN or infinity). Use log_softmax / masked_fill with a large "
                       "negative number rather than exp() and log() of probabilities that can underflow to 0.")
    for hint, value in alternatives.items():
        if close(got, value, rel=1e-3, abs_=1e-7):
            raise Mismatch(f"{context}: got {got:.6g}, expected {expected:.6g} — {hint}",
                           kl_reversed=hint.startswith(REVERSED_KL))
    ratio = got / expected if expected else float("nan")
    raise Mismatch(f"{context}: got {got:.6g}, expected {expected:.6g} (ratio {ratio:.3g}).")
