"""Checks run before any long work (the teacher's fine-tune takes 20 minutes on the `cpu` profile): everything
that can be known from model configs and tokenizers alone.

- Hub resources: when the Hugging Face Hub is unreachable, every missing resource (teacher, student, data) is
  reported in one message, with the offline options, instead of one failure per run.
- The student against the teacher: depth and layer map of a student cut from the teacher; vocabulary, head
  counts, relation heads and layer indices of a student loaded on its own.
"""

from __future__ import annotations

import os
from pathlib import Path

import datasets
import requests
from huggingface_hub import try_to_load_from_cache
from transformers import AutoConfig, AutoTokenizer, BertConfig

from kdlab.config import KDConfig
from kdlab.data.locations import locate
from kdlab.distillation.relations import check_relation_heads
from kdlab.errors import KDLabError
from kdlab.models.student import alternate_layer_map, check_layer_map
from kdlab.models.teacher import MINILM_L6, TINY_RANDOM, minilm_l6_path
from kdlab.models.tiny import build_tiny_tokenizer
from kdlab.models.vocabulary import vocabulary_differences
from kdlab.validation import TINY_SIZES, parse_bilstm_spec, parse_tiny_student

HUB_DATA = "nyu-mll/glue"


def _special_teacher(name: str) -> bool:
    return name in (MINILM_L6, TINY_RANDOM)


def hub_resources(cfg: KDConfig, teacher_saved: bool = False) -> list[tuple[str, str]]:
    """``(kind, id)`` of what the config needs from the Hub: the teacher (unless local, packaged, or already
    fine-tuned and saved), the student (when it is a Hub id), and SST-2 (``data="hub"``)."""
    # each "Hub id or local folder" decided once (kdlab.data.locations), before any Hub or cache lookup: a mistyped
    # local path is reported as a path, never handed to the Hub's id validation
    needed = []
    if not teacher_saved and locate(cfg.teacher, "teacher", (MINILM_L6, TINY_RANDOM)).kind == "hub":
        needed.append(("model", cfg.teacher))
    if (cfg.student and parse_tiny_student(cfg.student) is None and parse_bilstm_spec(cfg.student) is None
            and locate(cfg.student, "student", (MINILM_L6,)).kind == "hub"):
        needed.append(("model", cfg.student))
    if locate(cfg.data, "data", ("hub", "synthetic")).kind == "hub":
        raise KDLabError(f"data source {cfg.data!r} is neither 'hub', 'synthetic' nor an existing folder "
                         "(KDLAB_DATA_DIR must point at a folder with train.tsv and dev.tsv).")
    locate(cfg.runs_dir, "runs")
    if cfg.data == "hub":
        needed.append(("dataset", HUB_DATA))
    return needed


def hub_reachable(timeout: float = 5.0) -> bool:
    """False at once when ``HF_HUB_OFFLINE`` is set; otherwise whether huggingface.co answers within ``timeout``."""
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes"):
        return False
    try:
        requests.head("https://huggingface.co", timeout=timeout)
        return True
    except Exception:  # DNS failure, refused, timeout: unreachable
        return False


def cached(kind: str, repo: str) -> bool:
    """Whether a Hub model (its config.json) or dataset is already in the local Hugging Face cache."""
    if kind == "model":
        return isinstance(try_to_load_from_cache(repo, "config.json"), str)

    name = repo.replace("/", "___")
    roots = [Path(datasets.config.HF_DATASETS_CACHE), Path(datasets.config.HF_DATASETS_CACHE).parent / "hub"]
    return any((root / name).exists() or (root / f"datasets--{repo.replace('/', '--')}").exists() for root in roots)


def check_hub(cfg: KDConfig, teacher_saved: bool = False) -> None:
    """KDLabError listing every needed Hub resource that is neither reachable nor cached."""
    needed = hub_resources(cfg, teacher_saved)
    if not needed or hub_reachable():
        return
    missing = [f"{kind} {repo}" for kind, repo in needed if not cached(kind, repo)]
    if missing:
        raise KDLabError(
            "the Hugging Face Hub is unreachable and these are not in the local cache: " + "; ".join(missing)
            + ". Offline options: KDLAB_DATA_DIR=<folder with train.tsv and dev.tsv>, KDLAB_TEACHER=<local model "
            "folder> (or the packaged teacher: KDLAB_PROFILE=cpu), a local `student` folder, or KDLAB_PROFILE=smoke "
            "(no downloads). Set HF_HUB_OFFLINE=1 to fail at once instead of after retries."
        )


def teacher_config(cfg: KDConfig, source: str | None = None):
    """The teacher's model config (no weights loaded) and its tokenizer."""
    source = source or cfg.teacher
    if source == TINY_RANDOM:
        tokenizer = build_tiny_tokenizer()
        return BertConfig(vocab_size=len(tokenizer), **TINY_SIZES), tokenizer
    path = str(minilm_l6_path()) if source == MINILM_L6 else source
    try:
        try:  # the cache (or a local folder) first: no network round trip when the files are here
            return (AutoConfig.from_pretrained(path, local_files_only=True),
                    AutoTokenizer.from_pretrained(path, local_files_only=True))
        except OSError:
            return AutoConfig.from_pretrained(path), AutoTokenizer.from_pretrained(path)
    except (OSError, ValueError) as exc:
        raise KDLabError(f"could not read the teacher's config {source!r} ({type(exc).__name__}: {exc}).") from exc


def check_student(cfg: KDConfig, t_config, t_tokenizer) -> None:
    """The student the config asks for fits the teacher (KDLabError saying what to change)."""
    teacher_layers = int(t_config.num_hidden_layers)
    if cfg.student is None:
        alternate_layer_map(teacher_layers, cfg.student_layers)  # raises for 0 or more than the teacher's layers
        if cfg.layer_map is not None:
            check_layer_map(cfg.layer_map, teacher_layers, cfg.student_layers)
        return

    if parse_bilstm_spec(cfg.student) is not None:  # built from the teacher's vocabulary: nothing to compare
        return
    sizes = parse_tiny_student(cfg.student)
    if sizes is not None:
        s_tokenizer = build_tiny_tokenizer()
        s_config = BertConfig(vocab_size=len(s_tokenizer), **sizes)
    else:
        s_config, s_tokenizer = teacher_config(cfg, cfg.student)

    diffs = ([f"vocabulary size: teacher {t_config.vocab_size}, student {s_config.vocab_size}"]
             if t_config.vocab_size != s_config.vocab_size else []) + vocabulary_differences(t_tokenizer, s_tokenizer)
    if diffs:
        raise KDLabError("teacher and student tokenizers differ (distillation feeds both the same token ids): "
                         + "; ".join(diffs) + ".")
    if (cfg.gamma > 0 or cfg.delta > 0) and s_config.num_attention_heads != t_config.num_attention_heads:
        raise KDLabError(
            f"MiniLM's attention/value terms need equal head counts: teacher {t_config.num_attention_heads}, "
            f"student {s_config.num_attention_heads}. Set gamma=delta=0 and use relation heads (relation_weight, "
            "relation_heads), which work with any head counts.")
    if cfg.relation_weight > 0:
        for name, layer, layers in (("relation_teacher_layer", cfg.relation_teacher_layer, teacher_layers),
                                    ("relation_student_layer", cfg.relation_student_layer, s_config.num_hidden_layers)):
            if not -layers <= layer < layers:
                raise KDLabError(f"{name}={layer} is beyond the model's {layers} layers (0..{layers - 1}, -1 = last).")
        check_relation_heads(cfg.relation_heads, s_config.hidden_size, t_config.hidden_size)


def preflight(cfg: KDConfig, saved_teacher: str | None = None) -> None:
    """Every check that needs no weights: Hub reachability (all missing resources at once), then the student
    against the teacher's config and tokenizer (``saved_teacher``: the folder of a teacher fine-tuned earlier)."""
    check_hub(cfg, teacher_saved=saved_teacher is not None)
    t_config, t_tokenizer = teacher_config(cfg, saved_teacher)
    check_student(cfg, t_config, t_tokenizer)
