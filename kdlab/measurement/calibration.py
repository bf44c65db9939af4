"""How fast this machine trains the lab's students, so a run can say early how long it will take.

``step_seconds(cfg)`` times MiniLM distillation steps of the profile's teacher and student shapes (random weights:
speed does not depend on the values; no download, no data) on the device the lab trains on. ``kdlab.lab.time_estimate``
scales a reference run's notebook times (``kdlab/course/lab_timing.json``, measured once on a named machine with
this same calibration) by this machine's step time over the reference's.
"""

from __future__ import annotations

import statistics
import time

import torch
from transformers import AutoModelForSequenceClassification

from kdlab.config import KDConfig
from kdlab.distillation.preflight import teacher_config
from kdlab.measurement.timing import sync_for, torch_threads
from kdlab.measurement.train_step import make_train_steps, training_batches
from kdlab.models.student import init_student_from_teacher

CALIBRATION_SEQ = 32  # SST-2's dynamically padded batches are about this long with max_length 64
CALIBRATION_STEPS = 6


def step_seconds(cfg: KDConfig, steps: int = CALIBRATION_STEPS) -> float:
    """Median seconds of one MiniLM training step (teacher forward, student forward and backward, AdamW) at
    ``cfg.batch_size`` × ``CALIBRATION_SEQ`` tokens, on CUDA when available, else the CPU (``cfg.num_threads``)."""
    config, _ = teacher_config(cfg)
    config.num_labels = 2
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        teacher = AutoModelForSequenceClassification.from_config(config).eval()
    student = init_student_from_teacher(teacher, min(cfg.student_layers, config.num_hidden_layers))
    device = "cuda" if torch.cuda.is_available() else "cpu"
    with torch_threads(cfg.num_threads):
        run = make_train_steps(teacher, student, device, naive=False)
        batches = training_batches(cfg.batch_size, CALIBRATION_SEQ, config.vocab_size, 2, device=run.device)
        return median_step_seconds(run, "d", batches, steps)  # the MiniLM step (TRAIN_STEPS)


def median_step_seconds(run, kind: str, batches: list[dict], steps: int) -> float:
    """Median seconds of ``steps`` calls of ``run.steps[kind]`` (``kdlab.measurement.train_step.TrainSteps``) over
    ``batches`` in turn, after one warm-up call, with the device synchronised around each timed call."""
    sync = sync_for(run.device)
    step = run.steps[kind]
    step(batches[0])  # warm-up
    times = []
    for i in range(steps):
        sync()
        start = time.perf_counter()
        step(batches[i % len(batches)])
        sync()
        times.append(time.perf_counter() - start)
    return statistics.median(times)
