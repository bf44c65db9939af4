"""The GPU paths, checked on the CPU: half precision (torch runs fp16 autocast on the CPU too), several visible
GPUs, the caller's teacher left untouched, device synchronisation, bf16 reporting, gradient clipping of the
hidden-state projections. Each test names the defect it guards against."""

import copy
import math
import types

import pytest
import torch
from transformers import TrainingArguments

from kdlab import lab
from kdlab.config import load_config
from kdlab.distillation.capture import QKVCapture
from kdlab.distillation.losses import DistillationLoss, Outputs
from kdlab.distillation.trainer import DistillationTrainer, frozen_teacher, training_arguments, use_one_gpu
from kdlab.models.student import init_student_from_teacher
from kdlab.models.tiny import build_tiny_bert


def _batch(tokenizer):
    return tokenizer(["the film is not good", "a charming , funny movie", "dull"], padding=True,
                     return_tensors="pt")


def _snapshot(model):
    params = list(model.parameters())
    return {"dtype": params[0].dtype, "device": params[0].device, "training": model.training,
            "requires_grad": [p.requires_grad for p in params],
            "values": [p.detach().clone() for p in params]}


def _same(model, snap):
    now = _snapshot(model)
    return (now["dtype"], now["device"], now["training"], now["requires_grad"]) == \
        (snap["dtype"], snap["device"], snap["training"], snap["requires_grad"]) and \
        all(torch.equal(a, b) for a, b in zip(now["values"], snap["values"]))


def _trainer(tmp_path, teacher, student, loss, cfg=None, args=None):
    cfg = cfg or load_config("smoke", runs_dir=str(tmp_path))
    args = args or training_arguments(cfg, tmp_path / "out", learning_rate=1e-3, num_train_epochs=1.0, warmup_steps=0)
    row = {"input_ids": [2, 3], "attention_mask": [1, 1], "labels": 0}
    return DistillationTrainer(model=student, args=args, loss_fn=loss, teacher=teacher, train_dataset=[row],
                               eval_dataset=[row])


# --- the caller's teacher ---------------------------------------------------------------------------------------
def test_trainer_leaves_the_callers_teacher_untouched(tmp_path, tiny_teacher):
    """Defect: DistillationTrainer.__init__ called .to()/.eval()/.requires_grad_(False)/.half() on the caller's
    teacher, so later students (and the 'before' attention map) were cut from a changed model."""
    tiny_teacher.train()
    snap = _snapshot(tiny_teacher)
    trainer = _trainer(tmp_path, tiny_teacher, init_student_from_teacher(tiny_teacher, 2),
                       DistillationLoss.for_variant("minilm"))
    assert _same(tiny_teacher, snap)
    assert trainer.teacher is not tiny_teacher
    assert not trainer.teacher.training and not any(p.requires_grad for p in trainer.teacher.parameters())


def test_frozen_teacher_in_half_precision_is_a_copy(tiny_teacher):
    snap = _snapshot(tiny_teacher)
    half = frozen_teacher(tiny_teacher, torch.device("cpu"), half=True)
    assert next(half.parameters()).dtype == torch.float16
    assert _same(tiny_teacher, snap)


def test_distill_leaves_the_teacher_as_it_was(tmp_path, finetuned_teacher, tiny_tokenizer, synthetic_data):
    from datasets import DatasetDict

    from kdlab.distillation.training import distill

    small = DatasetDict(train=synthetic_data["train"].select(range(32)),
                        validation=synthetic_data["validation"].select(range(16)))
    snap = _snapshot(finetuned_teacher)
    distill(load_config("smoke", runs_dir=str(tmp_path), num_epochs=1.0), finetuned_teacher, tiny_tokenizer,
            small, "minilm")
    assert _same(finetuned_teacher, snap)


def test_benchmark_does_not_cast_the_callers_model():
    """Defect: benchmark.py's fp32 engine called .float() on a model already on the timing device."""
    from kdlab.measurement.benchmark import benchmark_models, tiny_models

    model = tiny_models((1,))["teacher"].half()
    benchmark_models({"m": model}, batch_sizes=[1], seq_len=4, precisions=["fp32"], warmup=0, repeats=1,
                     num_threads=1, measure_disk=False)
    assert next(model.parameters()).dtype == torch.float16


def test_benchmark_lineup_does_not_cast_the_teacher(smoke_cfg, tiny_teacher):
    from kdlab.models.teacher import Teacher

    half = tiny_teacher.half()
    models = lab.benchmark_lineup(smoke_cfg, Teacher(half, None, False, "x"), init_student_from_teacher(half, 2))
    assert next(half.parameters()).dtype == torch.float16 and models["teacher"] is half


# --- several GPUs -------------------------------------------------------------------------------------------
def _two_gpu_args(tmp_path):
    args = TrainingArguments(output_dir=str(tmp_path / "o"), use_cpu=True, per_device_train_batch_size=32,
                             report_to="none")
    _ = args.n_gpu
    args._n_gpu = 2  # what TrainingArguments computes on a machine with two visible GPUs (Kaggle's 2 × T4)
    return args


def test_two_visible_gpus_train_on_one_without_dataparallel(tmp_path, tiny_teacher):
    """Defect: with 2 GPUs Trainer wrapped the student in nn.DataParallel (replicas sharing the Q/K/V hooks,
    captures colliding) and the batch silently became 32 × 2."""
    args = _two_gpu_args(tmp_path)
    with pytest.warns(UserWarning, match="torchrun"):
        trainer = _trainer(tmp_path, tiny_teacher, init_student_from_teacher(tiny_teacher, 2),
                           DistillationLoss.for_variant("minilm"), args=args)
    assert trainer.args.n_gpu == 1
    assert trainer._train_batch_size == 32
    assert not isinstance(trainer._wrap_model(trainer.model), torch.nn.DataParallel)


def test_one_gpu_is_left_alone(tmp_path, recwarn):
    args = TrainingArguments(output_dir=str(tmp_path / "o"), use_cpu=True, report_to="none")
    assert use_one_gpu(args).n_gpu == 0
    assert not [w for w in recwarn if "GPUs are visible" in str(w.message)]


# --- reporting and timing ----------------------------------------------------------------------------------------
def test_environment_counts_native_bf16_only(monkeypatch):
    """Defect: on a T4 (sm_75) torch.cuda.is_bf16_supported() is True by emulation; the report said bf16=True."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *a: "Tesla T4")
    monkeypatch.setattr(torch.cuda, "get_device_properties",
                        lambda *a: types.SimpleNamespace(major=7, minor=5, total_memory=15 * 2**30))
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: including_emulation)
    info = lab.machine_info()
    assert info["device"] == "Tesla T4" and info["fp16"] is True
    assert info["bf16"] is False


def test_sync_waits_for_the_timed_device(monkeypatch):
    """Defect: _sync_for synchronised the current CUDA device, not the one being timed."""
    from kdlab.measurement.timing import sync_for

    calls = []
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: calls.append(device))
    sync_for(torch.device("cuda:1"))()
    assert calls == [torch.device("cuda:1")]
    sync_for(torch.device("cpu"))()
    assert calls == [torch.device("cuda:1")]


# --- gradient clipping of the hidden-state projections -----------------------------------------------------------
def test_projection_gradients_are_clipped_with_the_students(tmp_path, tiny_teacher):
    """Defect: Trainer clipped model.parameters() only; the hidden-state projections escaped max_grad_norm."""
    student = build_tiny_bert(tiny_teacher.config.vocab_size, seed=1, hidden_size=16, num_hidden_layers=2,
                              num_attention_heads=2, intermediate_size=32)
    loss = DistillationLoss.for_variant("minilm", gamma=0.0, delta=0.0, hidden_weight=1.0)
    trainer = _trainer(tmp_path, tiny_teacher, student, loss)
    projections = list(trainer.hidden_distiller.parameters())
    assert projections
    for p in student.parameters():
        p.grad = torch.zeros_like(p)
    for p in projections:
        p.grad = torch.full_like(p, 100.0)
    before = trainer._clip_grad_norm(trainer.model)
    after = torch.sqrt(sum((p.grad.float() ** 2).sum() for p in [*student.parameters(), *projections]))
    assert float(before) > 100 and float(after) == pytest.approx(trainer.args.max_grad_norm, rel=1e-3)


# --- half precision on the CPU (torch 2.13 runs fp16 autocast there) ---------------------------------------------
def _half_step(teacher, student, loss, tokenizer, layer_kwargs=None):
    """One training step as the trainer runs it on CUDA: fp16 teacher, student under fp16 autocast."""
    t = frozen_teacher(teacher, torch.device("cpu"), half=True)
    batch = _batch(tokenizer)
    labels = torch.tensor([0, 1, 0])
    student.train()
    with torch.autocast("cpu", dtype=torch.float16):
        with QKVCapture(student) as cap, QKVCapture(student, loss.relation_student_layer) as rel:
            out = student(**batch)
            s_qkv, s_rel = cap.qkv(), rel.raw()
        with torch.no_grad(), QKVCapture(t) as cap, QKVCapture(t, loss.relation_teacher_layer) as rel:
            t_out = t(**batch)
            t_qkv, t_rel = cap.qkv(), rel.raw()
        assert out.logits.dtype == torch.float16 and t_out.logits.dtype == torch.float16
        parts = loss(Outputs(out.logits, s_qkv if loss.needs_qkv else None, s_rel), labels,
                     Outputs(t_out.logits, t_qkv if loss.needs_qkv else None, t_rel), batch["attention_mask"])
    parts["loss"].backward()
    return parts


def test_minilm_step_in_half_precision(tiny_teacher, tiny_tokenizer):
    student = init_student_from_teacher(tiny_teacher, 2)
    parts = _half_step(tiny_teacher, student, DistillationLoss.for_variant("minilm"), tiny_tokenizer)
    assert set(parts) == {"loss", "ce", "kd", "attention", "value"}
    for name, value in parts.items():
        assert value.dtype == torch.float32 and math.isfinite(float(value.detach())), name
    grads = [p.grad for p in student.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)


def test_relation_head_step_in_half_precision(tiny_teacher, tiny_tokenizer):
    student = build_tiny_bert(tiny_teacher.config.vocab_size, seed=1, hidden_size=16, num_hidden_layers=2,
                              num_attention_heads=2, intermediate_size=32)
    loss = DistillationLoss.for_variant("minilm", gamma=0.0, delta=0.0, relation_weight=0.5, relation_heads=4)
    parts = _half_step(tiny_teacher, student, loss, tiny_tokenizer)
    assert {"ce", "kd", "relation"} <= set(parts)
    assert all(v.dtype == torch.float32 and math.isfinite(float(v.detach())) for v in parts.values())
    assert all(torch.isfinite(p.grad).all() for p in student.parameters() if p.grad is not None)


def test_train_step_benchmark_times_fp16_as_the_trainer_runs_it(tiny_teacher):
    """Defect: the train-step benchmark timed fp32 steps on CUDA while the trainer runs fp16 + GradScaler."""
    from kdlab.measurement.train_step import make_train_steps, train_step_benchmark, training_batches

    student = init_student_from_teacher(tiny_teacher, 2)
    run = make_train_steps(tiny_teacher, student, "cpu", fp16=True, learning_rate=1e-2)
    before = copy.deepcopy(student.state_dict())
    batch = training_batches(4, 8, tiny_teacher.config.vocab_size, 2)[0]
    assert run.fp16 and run.steps["b"](batch).dtype == torch.float16  # the teacher copy runs in half
    run.steps["d"](batch)
    assert all(torch.equal(before[k], v) for k, v in student.state_dict().items())  # caller's student untouched
    result = train_step_benchmark(tiny_teacher, student, batch_size=2, seq_len=8, warmup=0, repeats=1, fp16=True,
                                  num_threads=1)
    assert result.settings["precision"].startswith("fp16")
    assert train_step_benchmark(tiny_teacher, student, batch_size=2, seq_len=8, warmup=0, repeats=1,
                                num_threads=1).settings["precision"] == "fp32"  # the CPU default, as the trainer


def test_training_arguments_precision_follows_the_device(tmp_path):
    cfg = load_config("smoke", runs_dir=str(tmp_path))
    args = training_arguments(cfg, tmp_path, learning_rate=1e-3, num_train_epochs=1.0, warmup_steps=0)
    cuda = torch.cuda.is_available()
    assert args.fp16 is (cfg.fp16 and cuda)
    assert args.use_cpu is (not cuda)
    assert args.ddp_find_unused_parameters is False


def test_fp32_rows_say_whether_tf32_was_allowed(monkeypatch):
    """The GPU run's fp32 rows ran ~3x faster in one process than in another: record the fp32 matmul mode."""
    import kdlab.measurement.benchmark as bench
    from kdlab.measurement.benchmark import benchmark_models, fp32_matmul_mode, tiny_models

    cuda = torch.device("cuda")
    assert bench._cuda_tf32_allowed() is (torch.get_float32_matmul_precision() != "highest"
                                          or bool(torch.backends.cuda.matmul.allow_tf32))
    monkeypatch.setattr(bench, "_cuda_tf32_allowed", lambda: False)
    assert fp32_matmul_mode(cuda) == "ieee"
    monkeypatch.setattr(bench, "_cuda_tf32_allowed", lambda: True)
    assert fp32_matmul_mode(cuda) == "tf32"
    assert fp32_matmul_mode(torch.device("cpu")) == "ieee"
    table = benchmark_models(tiny_models((1,)), batch_sizes=[1], seq_len=4, precisions=["fp32", "int8"], warmup=0,
                             repeats=1, num_threads=1, measure_disk=False)
    assert list(table["fp32_matmul"]) == ["ieee", ""]
