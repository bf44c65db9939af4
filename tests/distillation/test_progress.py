"""Headless progress lines: a line at a logging step shows that step's window, not the one before it."""

import io
from types import SimpleNamespace

from kdlab.distillation.progress import TextProgressCallback


def test_a_progress_line_shows_the_loss_of_its_own_step():
    out = io.StringIO()
    callback = TextProgressCallback("ce", lines=10, stream=out)
    args = SimpleNamespace(logging_steps=5)
    state = SimpleNamespace(max_steps=12, global_step=0, is_world_process_zero=True)
    callback.on_train_begin(args, state, None)
    for step in range(1, 13):
        state.global_step = step
        callback.on_step_end(args, state, None)
        if step % 5 == 0:
            callback.on_log(args, state, None, logs={"loss": float(step)})
    callback.on_train_end(args, state, None)
    lines = {line.split("step ")[1].split("/")[0]: line for line in out.getvalue().splitlines() if " step " in line}
    assert "loss 5.0000" in lines["5"] and "loss 10.0000" in lines["10"]  # not the previous window's
    assert "loss 5.0000" in lines["7"] and "12" in lines  # between logs: the last window; the last step printed
