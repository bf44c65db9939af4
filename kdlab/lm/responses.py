"""A model's responses to prompt → response prompts (WordNet's ``"bank (n):"``), scored by the measures that can tell
distillation regimes apart (``kdlab.lm.measures``): one call for the notebook (``kdlab.lm_lab``) and the benchmark
(``benchmarks/lm_wordnet.py``), so both measure the same thing.

For ``P`` prompts with known senses (the definitions a lemma has):

- one greedy response per prompt, scored by ROUGE-L against the prompt's best-matching definition;
- ``samples`` sampled responses per prompt at T = 1 (plain ancestral sampling, ``kdlab.lm.generation``): sense
  coverage (distinct senses hit / senses) and precision (samples that match some sense / samples);
- the sense spread and the sense KL to the teacher: each known definition's likelihood given the prompt, under
  the model and under the teacher (no sampling, no threshold; ``measures.sense_spread``);
- the exposure curve of the sampled responses: the teacher's mean −log p of the k-th generated token, k = 1 … K.
"""

from __future__ import annotations

from kdlab.errors import KDLabError
from kdlab.lm import corpus, evaluation, generation, measures


def prompt_ids(tokenizer, prompt: str) -> list[int]:
    """``<eos>`` + the prompt's tokens: how a prompt → response example starts (``corpus.prompt_response``)."""
    return [tokenizer.eos_token_id, *tokenizer(prompt, add_special_tokens=False)["input_ids"]]


def response_scores(model, teacher, tokenizer, prompts: list[str], senses: dict[str, list[str]], rows: int, *,
                    samples: int, max_new_tokens: int, seed: int, context: int, examples: int = 4) -> dict:
    """``{"rouge_l", "sense_coverage", "sense_precision", "sense_spread", "sense_kl", "exposure": [K floats],
    "exposure_n": [K ints], "examples": [(prompt, greedy response), …]}`` of ``model`` (module docstring); ``seed``
    fixes the samples; ``context``: the models' positions (a definition is cut there, as the training examples are)."""
    if not prompts:
        raise KDLabError("response_scores needs at least one prompt with known senses.")
    eos, pad = tokenizer.eos_token_id, tokenizer.pad_token_id
    ids = [prompt_ids(tokenizer, p) for p in prompts]

    def text(sequence, prompt_length):
        return tokenizer.decode(generation.continuation(sequence, prompt_length, eos), skip_special_tokens=True).strip()

    greedy = generation.sample(model, ids, max_new_tokens, eos, pad, greedy=True)
    responses = [text(s, len(p)) for s, p in zip(greedy, ids)]
    rouge = measures.rouge_l(responses, [senses[p] for p in prompts])
    many = [p for p in ids for _ in range(samples)]
    sampled = generation.sample(model, many, max_new_tokens, eos, pad, seed=20_000 + seed)
    by_prompt: dict[str, list[str]] = {}
    for k, sequence in enumerate(sampled):
        by_prompt.setdefault(prompts[k // samples], []).append(text(sequence, len(many[k])))
    sense = measures.sense_scores(by_prompt, senses)
    spread = measures.sense_spread(*definition_logprobs([model, teacher], tokenizer, prompts, senses, rows, context))
    curve = measures.exposure_curve(teacher, sampled, [len(p) for p in many], rows, pad, max_new_tokens)
    return {"rouge_l": rouge, "sense_coverage": sense["coverage"], "sense_precision": sense["precision"],
            "sense_spread": spread["spread"], "sense_kl": spread["kl_to_teacher"],
            "exposure": [c["teacher_nll"] for c in curve], "exposure_n": [c["n"] for c in curve],
            "examples": [(prompts[i], responses[i]) for i in range(min(examples, len(prompts)))]}


def definition_logprobs(models: list, tokenizer, prompts: list[str], senses: dict[str, list[str]], rows: int,
                        context: int) -> list[list[list[float]]]:
    """Per model, per prompt: log p(definition + <eos> | <eos> prompt) of each of the prompt's known definitions,
    tokenized as the training examples are (``corpus.prompt_response`` of ``"<prompt> <definition>"``)."""
    sequences, starts, owner = [], [], []
    for i, prompt in enumerate(prompts):
        rows_ids, lengths = corpus.prompt_response([f"{prompt} {d}" for d in senses[prompt]], tokenizer, context)
        sequences += rows_ids
        starts += lengths
        owner += [i] * len(rows_ids)
    out = []
    for model in models:
        flat = evaluation.sequence_logprobs(model, sequences, starts, rows, tokenizer.pad_token_id)
        per_prompt: list[list[float]] = [[] for _ in prompts]
        for i, value in zip(owner, flat):
            per_prompt[i].append(value)
        out.append(per_prompt)
    return out
