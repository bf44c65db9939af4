"""Sentences to token ids: truncated, unpadded (batches pad dynamically), and untruncated lengths."""

from __future__ import annotations

from datasets import Dataset, DatasetDict


def tokenize(ds: DatasetDict, tokenizer, max_length: int) -> DatasetDict:
    """Tokenise ``sentence`` with truncation to ``max_length`` and no padding (batches pad dynamically)."""

    def encode(batch):
        return tokenizer(batch["sentence"], truncation=True, max_length=max_length)

    return ds.map(encode, batched=True, desc="tokenize")


def token_lengths(dataset: Dataset, tokenizer) -> list[int]:
    """Untruncated token count of each sentence (with [CLS]/[SEP])."""
    return [len(ids) for ids in tokenizer(list(dataset["sentence"]))["input_ids"]]
