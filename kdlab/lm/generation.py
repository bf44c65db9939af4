"""Sampling from a causal LM: continuations of prompts (on-policy batches, evaluation samples) and the teacher's
generations that sequence-level KD trains on.

Prompts are left-padded for ``generate`` (a causal model continues from the last position) and the results are
returned without padding, one list of ids per prompt: the prompt, then the new tokens up to and including the
first end-of-text. Sampling is plain ancestral sampling at ``temperature`` (no top-k/top-p), so what a student
generates is its own distribution, not a truncated one.
"""

from __future__ import annotations

import torch

from kdlab.errors import KDLabError


def check_lengths(model, prompt_len: int, max_new_tokens: int) -> None:
    """KDLabError before generating when prompt + new tokens exceed the model's positions."""
    limit = getattr(model.config, "n_positions", None) or getattr(model.config, "max_position_embeddings", None)
    if limit is not None and prompt_len + max_new_tokens > limit:
        raise KDLabError(f"a prompt of {prompt_len} tokens + {max_new_tokens} new ones exceeds the model's "
                         f"{limit} positions: shorten the prompts (prompt_tokens) or max_new_tokens.")


@torch.inference_mode()
def sample(model, prompts: list[list[int]], max_new_tokens: int, eos_id: int, pad_id: int, seed: int = 0,
           temperature: float = 1.0, batch_size: int = 64, greedy: bool = False) -> list[list[int]]:
    """Continue every prompt (ids) with up to ``max_new_tokens`` sampled tokens; returns prompt + continuation per
    prompt (cut after the first end-of-text), in order. Deterministic for a given ``seed``."""
    if not prompts or any(len(p) == 0 for p in prompts):
        raise KDLabError("sample() needs non-empty prompts (at least the start-of-text token).")
    check_lengths(model, max(len(p) for p in prompts), max_new_tokens)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    out = []
    generator_state = torch.random.get_rng_state()
    cuda_state = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None
    torch.manual_seed(seed)
    try:
        for start in range(0, len(prompts), batch_size):
            chunk = prompts[start: start + batch_size]
            width = max(len(p) for p in chunk)
            ids = torch.full((len(chunk), width), pad_id, dtype=torch.long)
            mask = torch.zeros_like(ids)
            for row, p in enumerate(chunk):
                ids[row, width - len(p):] = torch.as_tensor(p)
                mask[row, width - len(p):] = 1
            generated = model.generate(input_ids=ids.to(device), attention_mask=mask.to(device),
                                       max_new_tokens=max_new_tokens, do_sample=not greedy,
                                       temperature=temperature if not greedy else None, top_k=0 if not greedy else None,
                                       top_p=1.0 if not greedy else None, eos_token_id=eos_id, pad_token_id=pad_id)
            for row, p in enumerate(chunk):
                new = generated[row, width:].tolist()
                if eos_id in new:
                    new = new[: new.index(eos_id) + 1]
                out.append(list(p) + new)
    finally:
        torch.random.set_rng_state(generator_state)
        if cuda_state is not None:
            torch.cuda.set_rng_state_all(cuda_state)
        model.train(was_training)
    return out


def continuation(sequence: list[int], prompt_len: int, eos_id: int) -> list[int]:
    """The generated part of ``sequence`` without the closing end-of-text."""
    new = sequence[prompt_len:]
    return new[:-1] if new and new[-1] == eos_id else new
