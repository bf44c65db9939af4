"""Settings of the language-model part (``advanced/07-LLM-Distillation.ipynb``): one dataclass and three profiles.

``load_lm_config()`` takes the profile from its argument, else ``KDLAB_PROFILE`` (the lab's variable: ``kdlab run
--profile smoke`` reaches this notebook too), else ``full`` on CUDA and ``cpu`` otherwise; then ``KDLAB_DATA_DIR``,
``KDLAB_RUNS_DIR``, ``KDLAB_LM_TEACHER`` and ``KDLAB_LM_OVERRIDES`` (a JSON object of fields), then keyword
overrides; the result is validated before anything is loaded or trained.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path

from kdlab.config import lab_relative
from kdlab.environment import env_fields, json_object
from kdlab.errors import KDLabError
from kdlab.validation import build_config, refuse_unknown

CORPORA = ("wordnet", "sst2", "wikitext", "synthetic")
# What each regime trains on and with which loss (kdlab.lm.trainer):
REGIMES = {
    "ce": "CE on the text alone (no teacher)",
    "kd-forward": "token-level KD on the text: forward KL(p_t ‖ p_s)",
    "kd-reverse": "token-level KD on the text: reverse KL(p_s ‖ p_t)",
    "kd-jsd": "token-level KD on the text: generalized JSD(β)",
    "kd-skew": "token-level KD on the text: skew forward KL (DistiLLM, α)",
    "kd-cached": "token-level forward KL from the cached top-k teacher (no teacher forward)",
    "seqkd": "sequence-level KD: CE on the teacher's greedy continuations, continuation only (Kim & Rush 2016)",
    "onpolicy": "on-policy: a λ share of batches sampled by the student, every token scored by the teacher (GKD)",
}
LM_NOTEBOOK = "advanced/07-LLM-Distillation.ipynb"


@dataclass
class LMConfig:
    """Everything a language-model distillation run depends on; saved as ``lm/config.json`` of the run."""

    profile: str = "full"
    # --- models ---------------------------------------------------------------------------------------------
    teacher: str = "gpt2"  # a Hub id or local folder of a causal LM, or "train": a GPT-2-shaped teacher trained here
    teacher_layers: int = 4  # with teacher="train": its shape
    teacher_width: int = 256
    teacher_heads: int = 4
    teacher_epochs: float = 1.0  # with teacher="train": passes over the corpus's training text
    teacher_learning_rate: float = 1e-3
    teacher_batch_size: int | None = None  # with teacher="train": its batch (None = batch_size)
    teacher_seed: int = 0  # with teacher="train": one teacher for every student seed
    teacher_dropout: float = 0.1  # with teacher="train": GPT-2's dropout rates (0.1, its default)
    student_layers: int = 6  # the student: this many blocks (cut: of the teacher's, copied)
    student_init: str = "cut"  # "cut" (the teacher's blocks, as DistilGPT2) or "random" (from nothing)
    student_width: int = 128  # with student_init="random": its width and heads
    student_heads: int = 4
    layer_map: list[int] | None = None  # teacher block per student block; None = alternate (i * L_t / L_s)
    # --- text -----------------------------------------------------------------------------------------------
    corpus: str = "wikitext"  # "wordnet" (glosses, offline), "sst2", "wikitext" (WikiText-103, Hub), "synthetic"
    data: str = "hub"  # for corpus="sst2": "hub" or a folder with train.tsv/dev.tsv (KDLAB_DATA_DIR)
    tokenizer: str = "teacher"  # "teacher" (the teacher's own) or "train" (a byte-level BPE trained on the corpus)
    vocab_size: int = 4096  # with tokenizer="train"
    context: int = 512  # tokens per training example (sst2: one sentence per example, padded; wikitext: blocks)
    train_texts: int | None = None  # cap on the students' training examples (None = all)
    eval_texts: int | None = None  # cap on held-out examples for perplexity (None = all)
    # --- training -------------------------------------------------------------------------------------------
    regimes: list[str] = field(default_factory=lambda: ["ce", "kd-forward", "kd-reverse", "kd-jsd", "kd-cached",
                                                        "seqkd", "onpolicy"])
    student_steps: int = 2000  # optimizer steps per student: every regime gets the same number
    batch_size: int = 8
    gradient_accumulation_steps: int = 1
    learning_rate: float = 1e-4
    warmup_steps: int = 100
    seed: int = 42
    temperature: float = 1.0  # softening of both distributions in the KD losses (see temperature_convention)
    temperature_convention: str = "hinton"  # "hinton" (× T²), "trl-gkd" (loss at T = 1), "trl-distillation" (no T²)
    jsd_beta: float = 0.5  # generalized JSD's mixture weight (TRL's convention: 0 forward KL, 1 reverse KL)
    skew_alpha: float = 0.1  # skew forward KL(p ‖ α p + (1 − α) q): the teacher's share α (DistiLLM)
    lmbda: float = 0.5  # on-policy: share of batches the student samples itself (GKD's λ)
    onpolicy_loss: str = "reverse"  # the divergence on student samples: "reverse", "forward" or "jsd"
    ce_weight: float = 0.0  # w in (1 − w)·KD + w·CE on the text (the course's λ = 1 − w; 0: pure KD, as TRL)
    top_k: int = 32  # the cached teacher keeps this many log-probabilities per token (+ the remaining mass)
    # --- generation -----------------------------------------------------------------------------------------
    prompt_tokens: int = 4  # prompts are the first tokens of a text
    max_new_tokens: int = 32
    num_samples: int = 128  # student samples scored by the teacher, and for distinct-n
    response_prompts: int = 48  # wordnet: prompts of the students' own lemmas for the response measures
    samples_per_prompt: int = 8  # wordnet: sampled responses per prompt (sense coverage / precision, exposure)
    seqkd_texts: int | None = None  # teacher generations for sequence-level KD (None = student_steps × batch)
    seqkd_decoding: str = "greedy"  # "greedy" (Kim & Rush's mode approximation) or "sample" (TRL GKD's seq_kd)
    # --- run ------------------------------------------------------------------------------------------------
    chunk_tokens: int | None = 128  # the losses take this many real positions at a time (None: all at once)
    fp16: bool = True  # autocast FP16 on CUDA (softmaxes of the losses stay fp32); ignored on a CPU
    logging_steps: int = 25
    runs_dir: str = "runs"  # artifacts in <runs_dir>/<profile>/lm/
    num_threads: int | None = None

    def run_dir(self) -> Path:
        return lab_relative(Path(self.runs_dir)) / self.profile / "lm"

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def validate(self) -> LMConfig:
        """KDLabError for settings no run can use, said before anything is loaded."""
        if self.corpus not in CORPORA:
            raise KDLabError(f"corpus={self.corpus!r}: use one of {', '.join(CORPORA)}.")
        unknown = [r for r in self.regimes if r not in REGIMES]
        if unknown or not self.regimes:
            raise KDLabError(f"regimes={self.regimes}: choose from {', '.join(REGIMES)}.")
        if self.tokenizer not in ("teacher", "train"):
            raise KDLabError(f"tokenizer={self.tokenizer!r}: use 'teacher' or 'train'.")
        if self.teacher == "train" and self.tokenizer != "train":
            raise KDLabError("teacher='train' needs tokenizer='train': a teacher trained here has no tokenizer of its "
                             "own.")
        for name in ("student_layers", "teacher_layers", "teacher_width", "teacher_heads", "context", "student_steps",
                     "batch_size", "gradient_accumulation_steps", "top_k", "prompt_tokens", "max_new_tokens",
                     "num_samples", "logging_steps", "response_prompts", "samples_per_prompt"):
            if getattr(self, name) < 1:
                raise KDLabError(f"{name}={getattr(self, name)} must be at least 1.")
        if self.teacher_width % self.teacher_heads:
            raise KDLabError(f"teacher_width={self.teacher_width} is not a multiple of teacher_heads="
                             f"{self.teacher_heads}.")
        if self.prompt_tokens >= self.context:
            raise KDLabError(f"prompt_tokens={self.prompt_tokens} leaves no room in context={self.context}.")
        if not 0 <= self.jsd_beta <= 1 or not 0 <= self.lmbda <= 1 or not 0 <= self.skew_alpha < 1:
            raise KDLabError(f"jsd_beta={self.jsd_beta} and lmbda={self.lmbda} must lie in [0, 1], skew_alpha="
                             f"{self.skew_alpha} in [0, 1).")
        from kdlab.lm.losses import CONVENTIONS

        if self.temperature_convention not in CONVENTIONS:
            raise KDLabError(f"temperature_convention={self.temperature_convention!r}: use one of "
                             f"{', '.join(CONVENTIONS)}.")
        if self.student_init not in ("cut", "random"):
            raise KDLabError(f"student_init={self.student_init!r}: use 'cut' or 'random'.")
        if self.student_width % self.student_heads:
            raise KDLabError(f"student_width={self.student_width} is not a multiple of student_heads="
                             f"{self.student_heads}.")
        if self.seqkd_decoding not in ("greedy", "sample"):
            raise KDLabError(f"seqkd_decoding={self.seqkd_decoding!r}: use 'greedy' or 'sample'.")
        if self.temperature <= 0 or self.learning_rate <= 0 or self.teacher_learning_rate <= 0:
            raise KDLabError("temperature and learning rates must be > 0.")
        if self.onpolicy_loss not in ("reverse", "forward", "jsd"):
            raise KDLabError(f"onpolicy_loss={self.onpolicy_loss!r}: use 'reverse', 'forward' or 'jsd'.")
        if not 0 <= self.teacher_dropout < 1:
            raise KDLabError(f"teacher_dropout={self.teacher_dropout} must lie in [0, 1).")
        if not 0 <= self.ce_weight <= 1:
            raise KDLabError(f"ce_weight={self.ce_weight} must lie in [0, 1]: the loss is (1 − w)·KD + w·CE.")
        for name in ("train_texts", "eval_texts", "seqkd_texts", "chunk_tokens"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise KDLabError(f"{name}={value}: use None for all, or at least 1.")
        return self


LM_PROFILES: dict[str, dict] = {
    # GPU / Colab: GPT-2 (124M, Hub) and a 6-block student cut from its alternate blocks (as DistilGPT2's), on
    # WikiText-103 from the Hub. Perplexity on non-overlapping 512-token blocks of the test split (see evaluation).
    "full": {},
    # 2 CPU cores, offline: WordNet's glosses as prompt → response pairs ("bank (n): <a definition>", several real
    # answers per prompt; kdlab.lm.wordnet, `apt-get install wordnet-base`), a 2,048-token BPE trained on them. The
    # teacher (4 blocks × 256) is trained here once on all 15,824 training entries (random batches of 32, lr 1e-3, no
    # dropout, 4 epochs: the recipe BENCHMARKS.md "Settling the teacher's recipe" chose by held-out perplexity), the
    # students start from nothing (2 blocks × 128, random init) and see 4,000 of those entries (whole lemmas): the
    # teacher knows more text than the student has. Held out: 5% of the lemmas, whole (never seen defined).
    "cpu": {
        "teacher": "train",
        "teacher_width": 256,
        "teacher_heads": 4,
        "teacher_epochs": 4.0,
        "teacher_learning_rate": 1e-3,
        "teacher_batch_size": 32,
        "teacher_dropout": 0.0,
        "train_texts": 4000,
        "tokenizer": "train",
        "corpus": "wordnet",
        "vocab_size": 2048,
        "context": 48,
        "student_init": "random",
        "student_layers": 2,
        "student_width": 128,
        "student_heads": 4,
        "student_steps": 300,
        "batch_size": 32,
        "learning_rate": 2e-3,
        "warmup_steps": 15,
        "prompt_tokens": 1,
        "max_new_tokens": 16,
        "num_samples": 64,
        "response_prompts": 48,
        "samples_per_prompt": 8,
        "logging_steps": 25,
    },
    # Seconds, for CI: the same code path on a tiny teacher and synthetic sentences.
    "smoke": {
        "teacher": "train",
        "tokenizer": "train",
        "corpus": "synthetic",
        "vocab_size": 300,
        "context": 24,
        "teacher_layers": 2,
        "teacher_width": 32,
        "teacher_heads": 2,
        "teacher_epochs": 2.0,
        "teacher_learning_rate": 3e-3,
        "num_threads": 1,  # tiny matrices: one thread avoids oversubscription on a shared 2-core machine
        "student_layers": 1,
        "student_steps": 8,
        "batch_size": 32,
        "learning_rate": 3e-3,
        "warmup_steps": 2,
        "eval_texts": 32,
        "num_samples": 8,
        "max_new_tokens": 8,
        "logging_steps": 4,
        "top_k": 8,
    },
}
# Student shapes of the capacity-gap comparison (kdlab.lm_lab.capacity, benchmarks/lm_wordnet.py): the settings
# that make each one (kdlab.lm.runs.student_shape names them back).
STUDENT_SHAPES: dict[str, dict] = {
    "random-1x64": {"student_init": "random", "student_layers": 1, "student_width": 64, "student_heads": 2},
    "random-2x128": {"student_init": "random", "student_layers": 2, "student_width": 128, "student_heads": 4},
    "cut-2": {"student_init": "cut", "student_layers": 2},
}
ENV_FIELDS = {"KDLAB_DATA_DIR": "data", "KDLAB_RUNS_DIR": "runs_dir", "KDLAB_LM_TEACHER": "teacher"}
OVERRIDES_ENV = "KDLAB_LM_OVERRIDES"


def load_lm_config(profile: str | None = None, **overrides) -> LMConfig:
    """The validated settings for ``profile`` (see the module docstring for the order of precedence), read by the
    lab's loader (``kdlab.validation.build_config``: unknown names and wrong types refused)."""
    import torch  # lazy: kdlab.lm.config loads without torch (the CLI's --help, the grader)

    name = profile or os.environ.get("KDLAB_PROFILE") or ("full" if torch.cuda.is_available() else "cpu")
    name = "full" if name == "class" else name  # the lab's GPU profile: 07's GPU settings
    if name not in LM_PROFILES:
        raise KDLabError(f"profile {name!r} has no language-model settings: use one of {', '.join(LM_PROFILES)} "
                         "(PROFILE in the notebook's first cell, or KDLAB_PROFILE).")
    values = {"profile": name, **LM_PROFILES[name], **env_fields(LMConfig, ENV_FIELDS)}
    from_json = json_object(OVERRIDES_ENV, '{"student_steps": 100}')
    refuse_unknown(LMConfig, set(from_json) - {"beta"}, OVERRIDES_ENV)  # beta: jsd_beta's old name (below)
    values.update(from_json)
    values.update(overrides)
    if "beta" in values:  # the field's name before jsd_beta: saved configs and overrides that use it still load
        values.setdefault("jsd_beta", values.pop("beta"))
        values.pop("beta", None)
    if isinstance(values.get("data"), (str, os.PathLike)) and values["data"] != "hub":
        values["data"] = str(Path(values["data"]).expanduser().resolve())
    return build_config(LMConfig, values, source=f"the language-model profile {name!r} with overrides "
                                                  f"{sorted(overrides)}")
