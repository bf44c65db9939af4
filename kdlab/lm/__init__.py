"""Distilling causal language models (the optional notebook ``advanced/07-LLM-Distillation.ipynb``).

- ``config``: the settings and their profiles (``full``: GPT-2 from the Hub on WikiText-103; ``cpu``: a GPT-2-shaped
  teacher trained here on SST-2's sentences with a locally trained BPE; ``smoke``: seconds).
- ``corpus``: text, the tokenizer, fixed-length examples with their masks (prompt → response pairs: the response
  only), prompts.
- ``wordnet``: WordNet's glosses as "lemma (pos):" → definition pairs, offline (Debian's ``wordnet-base``).
- ``models``: the teacher, a student cut from alternate teacher layers or initialised at random, the checks a
  teacher-student pair must pass.
- ``losses``: token-level divergences over ``[B, S, V]`` logits and a ``[B, S]`` mask (forward/reverse KL,
  generalized JSD, skew KL), and the same over a cached top-k teacher; three temperature conventions; chunked over
  the real positions so no ``[N, V]`` fp32 temporary outlives one chunk.
- ``cache``: the teacher's top-k log-probabilities stored once (safetensors) and read back by every student.
- ``generation``: sampling from a model; the teacher's generations for sequence-level KD.
- ``trainer``: one ``transformers.Trainer`` subclass for every regime (CE, token-level KD, cached KD,
  sequence-level KD, on-policy), so the regimes differ only in what they are named for.
- ``evaluation``: held-out perplexity, the teacher's NLL of a student's samples, distinct-n, speed and size.
- ``measures``: n-gram baselines, ROUGE-L of responses, sense coverage/precision, the exposure-bias curve.
- ``runs``: saved teachers and students, reused when their settings match.
"""
