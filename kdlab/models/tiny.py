"""A tiny random BERT and a WordPiece tokenizer over the synthetic vocabulary: the smoke profile's teacher and
students (seconds on a CPU, no downloads)."""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

from kdlab.data.synthetic import synthetic_vocabulary
from kdlab.validation import TINY_SIZES


def build_tiny_tokenizer(folder: str | Path | None = None) -> BertTokenizerFast:
    """A WordPiece tokenizer over the synthetic vocabulary (saved to ``folder`` if given)."""
    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *synthetic_vocabulary()]
    tokenizer = BertTokenizerFast(vocab={tok: i for i, tok in enumerate(tokens)}, do_lower_case=True,
                                  model_max_length=128)
    if folder is not None:
        tokenizer.save_pretrained(str(folder))
    return tokenizer


def build_tiny_bert(vocab_size: int, num_labels: int = 2, seed: int = 0, **sizes) -> BertForSequenceClassification:
    """A randomly initialized small BERT classifier (default 4 layers, 64 wide, 4 heads)."""
    config = BertConfig(vocab_size=vocab_size, max_position_embeddings=128, num_labels=num_labels,
                        **{**TINY_SIZES, **sizes})
    torch.manual_seed(seed)
    return BertForSequenceClassification(config).eval()
