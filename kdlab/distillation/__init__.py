"""Distillation: the losses, the hooks that feed them, the trainer, and the runs that use them.

- ``losses``: Hinton KD (T²·KL), logits MSE, MiniLM attention/value relations, masked CE, ``DistillationLoss``.
- ``self_relations``, ``relations``, ``hidden``: relation KL core, MiniLMv2 relation heads, hidden-state MSE.
- ``schedules``: weight and temperature schedules over training.
- ``capture``: Q/K/V forward hooks (sdpa attention stays on).
- ``trainer``: the ``transformers.Trainer`` subclass and its ``TrainingArguments``.
- ``training``: ``distill`` / ``finetune_teacher``: one training run, checkpoints, resuming, the saved record.
- ``runs``: a run folder (``runs/<profile>/``): results.json, saved teachers and students, their settings.
- ``seeds``: several seeds, their spread and paired comparisons.
- ``preflight``: checks before long work (Hub resources, the student against the teacher).
- ``progress``: headless progress lines.
- ``advanced``: born-again, multi-teacher, deep mutual learning, teacher assistant.

Imports the foundation, ``kdlab.data``, ``kdlab.models`` and ``kdlab.metrics``.
"""
