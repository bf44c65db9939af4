"""Text for the language models: the corpus, its tokenizer, fixed-length examples with their loss masks, prompts.

Two ways to cut text into examples:

- ``sentences`` (SST-2, synthetic): one text per example, ``<eos> text <eos>`` truncated to ``context`` tokens
  (GPT-2 marks a document start with its end-of-text token); batches are padded (``<pad>``, never a target).
- ``blocks`` (WikiText-103): the split's lines joined into one token stream and cut into ``context``-token blocks
  (the last partial block dropped) — the usual causal-LM preprocessing (``run_clm.py``'s ``group_texts``).

A model predicts the token at position j + 1 from positions ≤ j, so an example of n tokens holds n − 1 targets.
"""

from __future__ import annotations

from pathlib import Path

from kdlab.errors import KDLabError
from kdlab.lm.config import LMConfig

EOS, PAD = "<|endoftext|>", "<pad>"
# A chat template that joins the messages' text: TRL's trainers refuse a tokenizer without one, and our text is
# plain sentences (one "message" = one stretch of text).
CHAT_TEMPLATE = "{% for message in messages %}{{ message['content'] }}{% endfor %}"


def load_texts(cfg: LMConfig) -> dict[str, list[str]]:
    """``{"train": [...], "validation": [...]}`` non-empty texts of the corpus (validation = the held-out text:
    WordNet's held-out lemmas (``kdlab.lm.wordnet``), SST-2's dev sentences, WikiText-103's test split, or unseen
    synthetic sentences)."""
    if cfg.corpus == "wordnet":
        from kdlab.lm import wordnet

        parts = wordnet.split(wordnet.entries())
        parts["train"] = wordnet.by_lemma(parts["train"])  # the first train_texts entries: whole lemmas
        texts = {split: [e.text for e in values] for split, values in parts.items()}
    elif cfg.corpus == "synthetic":
        from kdlab.data.synthetic import synthetic_sst2

        data = synthetic_sst2(n_train=1024, n_eval=128, seed=0)
        texts = {"train": list(data["train"]["sentence"]), "validation": list(data["validation"]["sentence"])}
    elif cfg.corpus == "sst2":
        from kdlab.data.sources import load_hub, load_tsv_folder

        data = load_hub() if cfg.data == "hub" else load_tsv_folder(cfg.data)
        texts = {"train": whole_sentences(list(data["train"]["sentence"])),
                 "validation": list(data["validation"]["sentence"])}
    else:
        from datasets import load_dataset

        data = load_dataset("Salesforce/wikitext", "wikitext-103-raw-v1")
        texts = {"train": list(data["train"]["text"]), "validation": list(data["test"]["text"])}
    texts = {split: [t.strip() for t in values if t and t.strip()] for split, values in texts.items()}
    for split, values in texts.items():
        if not values:
            raise KDLabError(f"the {cfg.corpus} corpus has no non-empty {split} text: check the data folder "
                             f"({cfg.data}) or pick another corpus.")
    return texts


def whole_sentences(phrases: list[str]) -> list[str]:
    """The phrases that are not part of a longer phrase, in their order. GLUE's SST-2 training split holds every
    phrase of the treebank's parse trees (67,349 rows from about 6,900 review sentences, most rows fragments of
    others): as language-modelling text that is each sentence repeated in pieces, a corpus unlike the held-out
    sentences. Keeping the whole sentences gives the text once. (An index of words to the phrases holding them
    keeps this to seconds: a phrase is looked up only among the longer phrases that contain its rarest word.)"""
    from collections import defaultdict

    phrases = [p.strip() for p in phrases if p and p.strip()]
    words = [p.split() for p in phrases]
    holders: dict[str, list[int]] = defaultdict(list)
    for i, ws in enumerate(words):
        for w in set(ws):
            holders[w].append(i)
    keep, seen = [], set()
    for i, (phrase, ws) in enumerate(zip(phrases, words)):
        if phrase in seen:
            continue
        rarest = min(set(ws), key=lambda w: len(holders[w]))
        inside = any(len(phrases[j]) > len(phrase) and f" {phrase} " in f" {phrases[j]} " for j in holders[rarest])
        if not inside:
            keep.append(phrase)
            seen.add(phrase)
    return keep


def example_mode(cfg: LMConfig) -> str:
    return "blocks" if cfg.corpus == "wikitext" else "sentences"


def train_tokenizer(texts: list[str], vocab_size: int):
    """A byte-level BPE (GPT-2's kind: any text encodes, nothing is unknown) trained on ``texts`` with
    ``tokenizers``, wrapped as a ``PreTrainedTokenizerFast`` with ``<|endoftext|>`` (BOS and EOS) and ``<pad>``."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    if vocab_size < 260:
        raise KDLabError(f"vocab_size={vocab_size}: a byte-level BPE needs at least 256 byte tokens + 2 specials.")
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=[EOS, PAD],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    bpe.train_from_iterator(texts, trainer)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, bos_token=EOS, eos_token=EOS, pad_token=PAD)
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def prepare_tokenizer(tokenizer):
    """A Hub tokenizer made ready for batches: GPT-2 has no pad token (its end-of-text stands in: every example
    is a full block, so nothing is padded in ``blocks`` mode), and TRL wants a chat template."""
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if not getattr(tokenizer, "chat_template", None):
        tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def encode(texts: list[str], tokenizer, context: int, mode: str) -> list[list[int]]:
    """Token ids per example (see the module docstring); every example has at least 2 tokens (one target)."""
    eos = tokenizer.eos_token_id
    texts = [t for t in texts if t and t.strip()]
    if not texts:
        return []
    ids = tokenizer(texts, add_special_tokens=False)["input_ids"]
    if mode == "sentences":
        return [[eos, *row][: context - 1] + [eos] for row in ids if row]
    stream = [token for row in ids for token in (*row, eos)]
    return [stream[i: i + context] for i in range(0, len(stream) - context + 1, context)]


def examples(texts: list[str], tokenizer, cfg: LMConfig, limit: int | None = None):
    """A ``datasets.Dataset`` of ``input_ids`` (and ``index``: the row, to find its cached teacher distribution)."""
    from datasets import Dataset

    if cfg.corpus == "wordnet":  # prompt → response: the loss and the perplexity on the response only
        rows, lengths = prompt_response(texts, tokenizer, cfg.context)
        rows, lengths = (rows[:limit], lengths[:limit]) if limit is not None else (rows, lengths)
        if not rows:
            raise KDLabError(f"no WordNet entry fits context={cfg.context} with a response: raise context.")
        return Dataset.from_dict({"input_ids": rows, "prompt_length": lengths, "index": list(range(len(rows)))})
    rows = encode(texts, tokenizer, cfg.context, example_mode(cfg))
    rows = rows[:limit] if limit is not None else rows
    if not rows:
        raise KDLabError(f"no example of at least 2 tokens: the texts are empty or context={cfg.context} is too "
                         "short for one block.")
    return Dataset.from_dict({"input_ids": rows, "index": list(range(len(rows)))})


def prompt_response(texts: list[str], tokenizer, context: int) -> tuple[list[list[int]], list[int]]:
    """``<eos> prompt response <eos>`` ids of ``"<prompt>: <response>"`` texts (cut at the first ": ") and the
    prompt's length in tokens (``<eos>`` and the prompt with its colon): the positions that are never targets."""
    eos = tokenizer.eos_token_id
    rows, lengths = [], []
    for text in texts:
        head, sep, _ = text.partition(": ")
        if not sep:
            continue
        ids = [eos, *tokenizer(text, add_special_tokens=False)["input_ids"]][: context - 1] + [eos]
        prompt = [eos, *tokenizer(head + ":", add_special_tokens=False)["input_ids"]]
        if ids[: len(prompt)] != prompt or len(ids) <= len(prompt):
            continue  # the prompt does not tokenize as a prefix of the text (or no response fits): left out
        rows.append(ids)
        lengths.append(len(prompt))
    return rows, lengths


class Collator:
    """Pads a list of examples to the longest on the right: ``input_ids`` [B, S], ``attention_mask`` [B, S], ``labels``
    [B, S] (−100 on padding: never a target) and ``index`` [B]. Padding is told by the attention mask, not by the
    pad id, so a tokenizer whose pad is its end-of-text (GPT-2) keeps its real end-of-text targets. An example with
    ``prompt_length`` P (a prompt → response pair) has labels −100 on its first P tokens: only the response is a
    target."""

    def __init__(self, pad_id: int):
        self.pad_id = pad_id

    def __call__(self, features: list[dict]) -> dict:
        import torch

        width = max(len(f["input_ids"]) for f in features)
        ids = torch.full((len(features), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(features), width), dtype=torch.long)
        for row, f in enumerate(features):
            n = len(f["input_ids"])
            ids[row, :n] = torch.as_tensor(f["input_ids"])
            mask[row, :n] = 1
        labels = ids.masked_fill(mask == 0, -100)
        for row, f in enumerate(features):
            labels[row, : f.get("prompt_length") or 0] = -100
        batch = {"input_ids": ids, "attention_mask": mask, "labels": labels}
        if "index" in features[0]:
            batch["index"] = torch.as_tensor([f["index"] for f in features])
        if "prompt_length" in features[0]:
            batch["prompt_length"] = torch.as_tensor([f["prompt_length"] for f in features])
        return batch


def prompts(dataset, prompt_tokens: int, n: int) -> list[list[int]]:
    """The prompts of the first ``n`` examples long enough to continue past them: each example's own prompt
    (``prompt_length``: ``<eos> bank (n):``) on prompt → response data, else its first ``prompt_tokens`` ids."""
    if "prompt_length" in dataset.column_names:
        return [row[:p] for row, p in zip(dataset["input_ids"], dataset["prompt_length"]) if len(row) > p][:n]
    out = [row[:prompt_tokens] for row in dataset["input_ids"] if len(row) > prompt_tokens + 1][:n]
    if not out:
        raise KDLabError(f"no example is longer than prompt_tokens={prompt_tokens} + 1: lower prompt_tokens.")
    return out


def save_tokenizer(tokenizer, folder: str | Path) -> None:
    tokenizer.save_pretrained(str(folder))
