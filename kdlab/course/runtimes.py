"""One profile across the four notebooks, which on Colab run in four separate runtimes.

01-Setup records the profile it ran with in the runs folder (on Colab: Drive); 02–04, whose ``PROFILE`` is None,
follow it. A GPU profile on a runtime without a GPU stops with what happened and what to do — it never switches
to `cpu` silently (whose runs would then lack 01's teacher).
"""

from __future__ import annotations

import math
import os
import random
from pathlib import Path

import torch

from kdlab.artifacts import read_json
from kdlab.config import KDConfig, lab_relative
from kdlab.course.reference import load_lab_timing
from kdlab.data.sources import UNLABELLED
from kdlab.measurement.calibration import median_step_seconds, step_seconds
from kdlab.measurement.timing import torch_threads
from kdlab.measurement.train_step import make_train_steps, training_batches
from kdlab.models.student import build_student

SST2_TRAIN_ROWS = 67_349  # GLUE SST-2 train split
PROFILE_FILE = "profile.json"  # in the runs folder: the profile the last notebook that chose one used
GPU_PROFILES = ("class", "full", "large2base")  # BERT-base/large on the Hub, FP16: on a CPU they would take hours


def chosen_profile(profile: str | None, runs_dir: str | None = None) -> tuple[str | None, str]:
    """``(profile, where it came from)``: the notebook's ``PROFILE``, else ``KDLAB_PROFILE``, else the profile an
    earlier notebook recorded in the runs folder (``PROFILE_FILE``: 02–04 follow 01 across Colab's separate
    runtimes), else None (the machine's default: ``kdlab.config.default_profile``)."""
    if profile:
        return profile, "PROFILE"
    if os.environ.get("KDLAB_PROFILE"):
        return os.environ["KDLAB_PROFILE"], "KDLAB_PROFILE"
    root = lab_relative(Path(runs_dir or os.environ.get("KDLAB_RUNS_DIR") or "runs"))
    saved = read_json(root / PROFILE_FILE) or {}
    if isinstance(saved.get("profile"), str) and saved["profile"]:
        print(f"profile {saved['profile']!r}: the one the earlier notebooks of this run chose ({root / PROFILE_FILE})")
        return saved["profile"], PROFILE_FILE
    return None, "default"


def gpu_missing_message(profile: str, chosen_in: str) -> str:
    """What to do when a GPU profile meets a runtime without a CUDA GPU (never a silent switch to `cpu`)."""
    why = {"PROFILE": "this notebook's PROFILE asks for it", "KDLAB_PROFILE": "KDLAB_PROFILE asks for it",
           PROFILE_FILE: "01-Setup chose it for this run (it had a GPU then)",
           "default": "it is the default"}.get(chosen_in, chosen_in)
    return (f"profile {profile!r} needs a CUDA GPU and this runtime has none ({why}). On Colab a runtime can come "
            "without a GPU (usage limits, or the runtime type): choose Runtime → Change runtime type → T4 GPU and run "
            "this notebook again from the top. To do the whole lab without a GPU instead, set PROFILE = \"cpu\" in "
            "each notebook and run 01-Setup again (the cpu profile keeps its runs apart, in runs/cpu).")


# --- how long the lab takes here ----------------------------------------------------------------------------------
def time_estimate(cfg: KDConfig, seconds: float | None = None, teacher_saved: bool = False) -> dict | None:
    """``{"step_seconds", "reference", "ratio", "notebooks": {name: (low, high) minutes}, "total": (low, high)}``
    for ``cfg``'s profile, or None when no reference run of that profile was timed. The range is the reference's
    times × this machine's step-time ratio, ±25% (the notebooks also load data, evaluate and benchmark, which
    scale less simply); ``teacher_saved`` drops 01's teacher fine-tune."""
    reference = load_lab_timing().get(cfg.profile)
    if not reference:
        return None

    seconds = step_seconds(cfg) if seconds is None else seconds
    ratio = seconds / reference["step_seconds"]
    notebooks = {}
    for name, ref_seconds in reference["notebook_seconds"].items():
        if teacher_saved and name.startswith("01"):
            ref_seconds = max(0.0, ref_seconds - reference.get("teacher_finetune_seconds", 0.0))
        minutes = ref_seconds * ratio / 60
        notebooks[name] = (0.75 * minutes, 1.25 * minutes)
    total = (sum(low for low, _ in notebooks.values()), sum(high for _, high in notebooks.values()))
    return {"step_seconds": seconds, "reference": reference, "ratio": ratio, "notebooks": notebooks, "total": total}


def describe_estimate(found: dict) -> str:
    """One paragraph for ``kdlab run``: this machine against the reference, and the expected minutes."""
    ref = found["reference"]
    parts = ", ".join(f"{name.split('-')[0]} {low:.0f}–{high:.0f}" for name, (low, high) in found["notebooks"].items())
    low, high = found["total"]
    whole = ref["total_seconds"] / 60
    return (f"this machine: {1000 * found['step_seconds']:.0f} ms per training step, {found['ratio']:.2f}× the "
            f"reference ({ref['machine']}, {1000 * ref['step_seconds']:.0f} ms, whole lab {whole:.0f} min on "
            f"{ref['date']}): expect about {low:.0f}–{high:.0f} min ({parts} min)")


# --- 02's training, timed on this device ---------------------------------------------------------------------------
def padded_length(lengths: list[int], batch_size: int, max_length: int, draws: int = 50, seed: int = 0) -> int:
    """The mean padded length of a random batch of ``batch_size`` sentences (a batch pads to its longest row):
    the sequence length the estimate times. ``lengths``: token counts of the training sentences."""

    rng = random.Random(seed)
    k = min(batch_size, len(lengths))
    maxima = [min(max_length, max(rng.sample(lengths, k))) for _ in range(draws)] if k else [max_length]
    return max(1, round(sum(maxima) / len(maxima)))


def distill_plan(cfg: KDConfig, train_rows: int, labelled_rows: int) -> dict[str, tuple[str, int]]:
    """What 02 trains, as ``{run: (step kind, optimizer steps)}``: step kinds ``a`` (CE), ``c`` (Hinton),
    ``d`` (MiniLM) of ``kdlab.measurement.train_step.TRAIN_STEPS``. A CE student trains on the labelled rows only."""

    def steps(rows: int, epochs: float) -> int:
        return math.ceil(rows / (cfg.batch_size * cfg.gradient_accumulation_steps)) * math.ceil(epochs)

    race_rows = min(cfg.race_sentences, train_rows)
    plan = {"minilm": ("d", steps(train_rows, cfg.num_epochs)),
            "loss race (kdlab's + yours)": ("d", 2 * steps(race_rows, cfg.num_epochs))}
    if cfg.compare_variants:
        plan.update({"ce": ("a", steps(labelled_rows, cfg.num_epochs)),
                     "ce-random": ("a", steps(labelled_rows, cfg.num_epochs)),
                     "hinton": ("c", steps(train_rows, cfg.num_epochs))})
    return plan


def distill_estimate(cfg: KDConfig, teacher, tokenizer, train, steps: int = 4) -> dict:
    """Seconds per step of each kind (``a``/``c``/``d``) timed on this machine's device with the run's own teacher,
    a student of the run's shape and batches of the data's padded length, and the minutes each of 02's runs takes:
    ``{"device", "seq_len", "step_seconds": {kind: s}, "runs": {run: minutes}, "total_minutes"}``. Training steps
    only: evaluation, saving and loading add a few percent."""



    labels = list(train["label"])
    lengths = [len(ids) for ids in tokenizer(list(train["sentence"][:2000]), truncation=True,
                                             max_length=cfg.max_length)["input_ids"]]
    seq = padded_length(lengths, cfg.batch_size, cfg.max_length)
    student = build_student(cfg, teacher, tokenizer)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    seconds = {}
    with torch_threads(cfg.num_threads):
        run = make_train_steps(teacher, student, device, naive=False)
        batches = training_batches(cfg.batch_size, seq, teacher.config.vocab_size, teacher.config.num_labels,
                                   device=run.device)
        for kind in ("a", "c", "d"):
            seconds[kind] = median_step_seconds(run, kind, batches, steps)
    plan = distill_plan(cfg, len(labels), sum(1 for y in labels if y != UNLABELLED))
    runs = {name: n * seconds[kind] / 60 for name, (kind, n) in plan.items()}
    name = torch.cuda.get_device_name(0) if device == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    return {"device": name, "seq_len": seq, "step_seconds": seconds, "runs": runs, "total_minutes": sum(runs.values())}


def describe_distill_estimate(found: dict) -> str:
    ms = found["step_seconds"]
    runs = ", ".join(f"{name} {minutes:.1f}" for name, minutes in found["runs"].items())
    return (f"timed here ({found['device']}, batches padded to ~{found['seq_len']} tokens): CE {1000 * ms['a']:.0f} ms, "
            f"Hinton {1000 * ms['c']:.0f} ms, MiniLM {1000 * ms['d']:.0f} ms per step → 02 trains for about "
            f"{found['total_minutes']:.0f} min on this machine ({runs} min; evaluation and saving add a little). "
            "Random batches: the trainer groups sentences by length, so its batches are shorter and this is on the high "
            "side. A student already saved with the same settings is reused, not retrained.")


# --- what a notebook says about its own time, per profile -------------------------------------------------------
# A Colab T4 has never been lent here: these are ESTIMATES (BENCHMARKS.md, "Estimated T4 times"), to be replaced by
# measured ones. Per optimizer step at SST-2's length-grouped batches (32 × ~14–40 tokens), fp16: the arithmetic is
# 10–17 ms (0.26 TFLOP at 15–25 TFLOP/s), the floor is launches and Python (29 ms of the H100's 32.8 ms MiniLM step
# at 32 × 128; 1.5–2× on Colab's slower host CPU) plus AdamW's memory traffic (~8 ms for 67M parameters at 250 GB/s).
T4_STEP_MS = {"a": (40, 55), "c": (53, 77), "d": (55, 80)}  # CE, Hinton, MiniLM steps, 12L teacher → 6L student
T4_SAVE_S = (8, 20)  # per saved student: 268 MB of safetensors to Drive (20–50 MB/s) and a dev evaluation per epoch
T4_FIXED_MIN = {  # what does not scale with training steps (install, Drive, the Hub teacher's 438 MB, evaluations)
    "01-Setup.ipynb": (2, 4),
    "02-Distill.ipynb": (1, 2),
    "03-Inference.ipynb": (2, 3),
    "04-Benchmark.ipynb": (4, 7),
}


def t4_estimate(cfg: KDConfig, train_rows: int, labelled_rows: int) -> dict[str, tuple[float, float]]:
    """``{notebook: (low, high) minutes}`` on a Colab T4 for a GPU profile: 02 from its own step counts
    (``distill_plan``) × ``T4_STEP_MS``, the rest ``T4_FIXED_MIN``. An estimate, never measured on a T4."""
    plan = distill_plan(cfg, train_rows, labelled_rows)
    low = sum(n * T4_STEP_MS[kind][0] for kind, n in plan.values()) / 60_000 + len(plan) * T4_SAVE_S[0] / 60
    high = sum(n * T4_STEP_MS[kind][1] for kind, n in plan.values()) / 60_000 + len(plan) * T4_SAVE_S[1] / 60
    out = dict(T4_FIXED_MIN)
    fixed = T4_FIXED_MIN["02-Distill.ipynb"]
    out["02-Distill.ipynb"] = (fixed[0] + low, fixed[1] + high)
    return out


def expected_minutes(cfg: KDConfig) -> tuple[dict[str, tuple[float, float]], str] | None:
    """This profile's own times per notebook, ``({notebook: (low, high) minutes}, where they come from)``: a GPU
    profile's T4 estimate, the `cpu` profile's timed reference run ±25% (its machine named), None for others."""
    if cfg.profile in GPU_PROFILES:
        train = cfg.max_train_samples or SST2_TRAIN_ROWS
        labelled = min(cfg.labelled_train_samples or train, train)
        return t4_estimate(cfg, train, labelled), "estimated for a Colab T4 (never measured on one; BENCHMARKS.md)"
    reference = load_lab_timing().get(cfg.profile)
    if not reference:
        return None
    minutes = {name: (0.75 * s / 60, 1.25 * s / 60) for name, s in reference["notebook_seconds"].items()}
    return minutes, (f"measured on {reference['machine']} ({reference['date']}) ±25%; `python -m kdlab run "
                     f"--profile {cfg.profile} --estimate-only` times your machine")


def describe_minutes(cfg: KDConfig) -> str | None:
    """One line: how long each notebook of this profile takes, from ``expected_minutes`` (None when unknown)."""
    found = expected_minutes(cfg)
    if found is None:
        return None
    minutes, source = found
    parts = ", ".join(f"{name.split('-')[0]} {low:.0f}–{high:.0f}" for name, (low, high) in minutes.items())
    low, high = sum(lo for lo, _ in minutes.values()), sum(hi for _, hi in minutes.values())
    return f"time, `{cfg.profile}` profile: about {low:.0f}–{high:.0f} min in all ({parts} min), {source}"
