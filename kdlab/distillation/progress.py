"""Training progress as a few plain lines, for headless runs (``python -m kdlab run``, CI logs).

In a notebook the trainer shows its own progress table; a headless run cannot see it, and a tqdm bar written to a
log becomes thousands of lines. With ``KDLAB_PROGRESS=text`` (set by ``kdlab run``) the trainer prints at most
``PROGRESS_LINES`` lines per training instead: step, share done, the latest loss, elapsed time and an ETA.
"""

from __future__ import annotations

import os
import sys
import time

from transformers import TrainerCallback
from transformers.trainer_callback import PrinterCallback, ProgressCallback

PROGRESS_ENV = "KDLAB_PROGRESS"
PROGRESS_LINES = 10  # lines per training run (plus one per evaluation)


def text_progress_wanted() -> bool:
    return os.environ.get(PROGRESS_ENV, "").lower() == "text"


def _clock(seconds: float) -> str:
    seconds = int(max(0, seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}" if seconds >= 3600 else \
        f"{seconds // 60}:{seconds % 60:02d}"


class TextProgressCallback(TrainerCallback):
    """Prints ``[name] step s/N (p%) · loss x · elapsed · ETA`` every N/``lines`` steps, and each evaluation."""

    def __init__(self, name: str = "train", lines: int = PROGRESS_LINES, stream=None):
        self.name, self.lines, self.stream = name, lines, stream or sys.stdout
        self.start, self.every, self.last_loss, self.pending = 0.0, 1, None, None

    def _print(self, text: str) -> None:
        print(f"  [{self.name}] {text}", file=self.stream, flush=True)

    def on_train_begin(self, args, state, control, **kwargs):
        self.start = time.perf_counter()
        self.every = max(1, state.max_steps // self.lines)
        if state.is_world_process_zero:
            self._print(f"training: {state.max_steps} steps" + (f", from step {state.global_step}"
                                                                  if state.global_step else ""))

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs and "loss" in logs:
            self.last_loss = logs["loss"]
            if self.pending == state.global_step:  # the line of this step waited for this window's loss
                self._line(state)

    def on_step_end(self, args, state, control, **kwargs):
        step, total = state.global_step, state.max_steps
        if not state.is_world_process_zero or (step % self.every and step != total):
            return
        logging = args.logging_steps and (step % int(args.logging_steps) == 0 or step == total)
        if logging:
            self.pending = step  # the Trainer logs right after this callback: print the new window's loss then
        else:
            self._line(state)

    def on_train_end(self, args, state, control, **kwargs):
        if self.pending is not None and state.is_world_process_zero:  # no log came after the last line's step
            self._line(state)

    def _line(self, state) -> None:
        step, total = state.global_step, state.max_steps
        self.pending = None
        elapsed = time.perf_counter() - self.start
        done = step / total if total else 1.0
        eta = elapsed / done * (1 - done) if done > 0 else 0.0
        loss = f" · loss {self.last_loss:.4f}" if isinstance(self.last_loss, (int, float)) else ""
        self._print(f"step {step}/{total} ({done:.0%}){loss} · {_clock(elapsed)} elapsed · ETA {_clock(eta)}")

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        if state.is_world_process_zero and metrics and "eval_accuracy" in metrics:
            self._print(f"dev accuracy {100 * metrics['eval_accuracy']:.2f}% at step {state.global_step}")


def use_text_progress(trainer, name: str) -> None:
    """Replace the trainer's progress bar (or notebook table, or log printer) by ``TextProgressCallback``."""
    removed = [ProgressCallback, PrinterCallback]
    try:
        from transformers.utils.notebook import NotebookProgressCallback

        removed.append(NotebookProgressCallback)
    except ImportError:  # pragma: no cover - IPython missing
        pass
    for callback in removed:
        trainer.remove_callback(callback)
    trainer.add_callback(TextProgressCallback(name))
