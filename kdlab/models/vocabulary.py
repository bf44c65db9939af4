"""Whether a teacher and a student read the same token ids: vocabularies, special tokens and normalisation
compared, everything that differs named (distillation feeds both models the same ids)."""

from __future__ import annotations

from kdlab.errors import KDLabError

SPECIAL_TOKENS = ("cls_token", "sep_token", "pad_token", "unk_token", "mask_token", "bos_token", "eos_token")
_PROBE = "The Movie wasn't GOOD, naïve — or was it?"  # casing, accents, punctuation: normalization differences


def _examples(items, limit: int = 3) -> str:
    items = sorted(items, key=str)
    shown = ", ".join(map(repr, items[:limit]))
    return shown + (", …" if len(items) > limit else "")


def vocabulary_differences(teacher_tokenizer, student_tokenizer) -> list[str]:
    """What differs between two tokenizers, one line per aspect (empty when they are interchangeable):
    vocabulary size, tokens only in one of them, shared tokens with different ids, special tokens and their ids,
    and whether they split the same probe text into the same ids (lower-casing, accents, normalization)."""
    t_vocab, s_vocab = teacher_tokenizer.get_vocab(), student_tokenizer.get_vocab()
    diffs = []
    if len(t_vocab) != len(s_vocab):
        diffs.append(f"vocabulary size: teacher {len(t_vocab)} tokens, student {len(s_vocab)}")
    only_t, only_s = t_vocab.keys() - s_vocab.keys(), s_vocab.keys() - t_vocab.keys()
    if only_t:
        diffs.append(f"{len(only_t)} tokens only in the teacher's vocabulary ({_examples(only_t)})")
    if only_s:
        diffs.append(f"{len(only_s)} tokens only in the student's vocabulary ({_examples(only_s)})")
    moved = sorted(tok for tok in t_vocab.keys() & s_vocab.keys() if t_vocab[tok] != s_vocab[tok])
    if moved:
        shown = ", ".join(f"{tok!r}: teacher {t_vocab[tok]}, student {s_vocab[tok]}" for tok in moved[:3])
        diffs.append(f"{len(moved)} shared tokens have different ids ({shown}{', …' if len(moved) > 3 else ''})")
    for attr in SPECIAL_TOKENS:
        t_tok, s_tok = getattr(teacher_tokenizer, attr, None), getattr(student_tokenizer, attr, None)
        t_id = t_vocab.get(str(t_tok)) if t_tok is not None else None
        s_id = s_vocab.get(str(s_tok)) if s_tok is not None else None
        if (str(t_tok) if t_tok is not None else None, t_id) != (str(s_tok) if s_tok is not None else None, s_id):
            diffs.append(f"special token {attr}: teacher {t_tok!r} (id {t_id}), student {s_tok!r} (id {s_id})")
    if not diffs:
        t_ids, s_ids = teacher_tokenizer(_PROBE)["input_ids"], student_tokenizer(_PROBE)["input_ids"]
        if t_ids != s_ids:
            diffs.append(f"same vocabulary, but {_PROBE!r} becomes teacher ids {t_ids} and student ids {s_ids} "
                         "(lower-casing, accent stripping or normalization differ)")
    return diffs


def check_same_vocabulary(teacher, student, teacher_tokenizer=None, student_tokenizer=None) -> None:
    """Raise KDLabError when teacher and student cannot read the same token ids.

    Compares the models' embedding vocabulary sizes, and, when both tokenizers are given, the tokenizers
    themselves (``vocabulary_differences``), naming everything that differs.
    """
    t_vocab, s_vocab = teacher.config.vocab_size, student.config.vocab_size
    if t_vocab != s_vocab:
        raise KDLabError(
            f"teacher vocabulary ({t_vocab} tokens) and student vocabulary ({s_vocab}) differ: distillation feeds "
            "both the same token ids, so they must share a tokenizer."
        )
    if teacher_tokenizer is not None and student_tokenizer is not None:
        diffs = vocabulary_differences(teacher_tokenizer, student_tokenizer)
        if diffs:
            raise KDLabError(
                "teacher and student tokenizers differ, so the same token ids would mean different text to them; "
                "distillation needs one shared tokenizer (same vocabulary and special tokens). Differences: "
                + "; ".join(diffs) + "."
            )
