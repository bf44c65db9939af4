"""One process of a 2-process DDP run on the CPU (gloo), started by tests/test_ddp.py through torchrun.

Trains the `minilm` variant of a tiny student for a few steps with ``DistillationTrainer`` and writes what the
test checks to ``<out>/rank<R>.json``: the world size, whether the student was wrapped in
DistributedDataParallel, the logged losses, and a checksum of the trained student's weights.
"""

import json
import os
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch  # noqa: E402

torch.set_num_threads(1)

from kdlab.config import load_config  # noqa: E402
from kdlab.data.synthetic import synthetic_sst2  # noqa: E402
from kdlab.data.tokens import tokenize
from kdlab.distillation.losses import DistillationLoss  # noqa: E402
from kdlab.distillation.trainer import DistillationTrainer, training_arguments  # noqa: E402
from kdlab.models.student import init_student_from_teacher  # noqa: E402
from kdlab.models.tiny import build_tiny_bert, build_tiny_tokenizer  # noqa: E402


def main(out: str) -> None:
    rank = int(os.environ["RANK"])
    cfg = load_config("smoke", runs_dir=out, batch_size=8, logging_steps=1)
    tokenizer = build_tiny_tokenizer()
    teacher = build_tiny_bert(len(tokenizer), seed=0, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                              intermediate_size=64)
    student = init_student_from_teacher(teacher, 1)
    data = tokenize(synthetic_sst2(64, 16, seed=0), tokenizer, 16)
    args = training_arguments(cfg, os.path.join(out, "ckpt"), learning_rate=1e-3, num_train_epochs=1.0, warmup_steps=0)
    args.max_steps, args.save_strategy, args.eval_strategy = 3, "no", "no"
    trainer = DistillationTrainer(model=student, args=args, loss_fn=DistillationLoss.for_variant("minilm"),
                                  teacher=teacher, train_dataset=data["train"], processing_class=tokenizer)
    trainer.train()
    wrapped = type(trainer.model_wrapped).__name__
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    attention = [h["loss_attention"] for h in trainer.state.log_history if "loss_attention" in h]
    checksum = float(sum(p.detach().double().sum() for p in student.parameters()))
    with open(os.path.join(out, f"rank{rank}.json"), "w") as fh:
        json.dump({"world_size": int(os.environ["WORLD_SIZE"]), "wrapped": wrapped, "losses": losses,
                   "attention": attention, "checksum": checksum,
                   "teacher_requires_grad": any(p.requires_grad for p in teacher.parameters())}, fh)


if __name__ == "__main__":
    main(sys.argv[1])
