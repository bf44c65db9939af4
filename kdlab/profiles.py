"""The lab's profiles: named sets of ``KDConfig`` values (``kdlab.config.load_config`` applies one over the
defaults). ``class`` and ``full`` need a GPU (``kdlab.course.runtimes.GPU_PROFILES``); ``cpu`` runs on 2 cores;
``smoke`` in seconds, offline, for CI; ``large2base`` / ``smoke-x`` distil across architectures."""

from __future__ import annotations

PROFILES: dict[str, dict] = {
    # The course text's setup: BERT-base SST-2 teacher from the Hub, all 67,349 SST-2 sentences labelled, 6-layer
    # student, 3 epochs, FP16 on CUDA. Opt-in: on a T4 its 02 is estimated at 22–33 min (kdlab.course.runtimes).
    "full": dict(),
    # The GPU default (Colab T4): the same teacher and 6-layer student, on the setting in which the lab measures
    # what distillation gives (the `cpu` profile's transfer set): 16,000 student sentences of which the first 4,000
    # keep their label, 2 epochs, at SST-2's lengths (99.99% of its sentences fit 64 tokens). The Hub teacher was
    # trained on all of SST-2, so its soft labels on the 12,000 carry labels it saw: an upper bound, as in `cpu`.
    "class": dict(
        max_length=64,
        max_train_samples=16000,
        labelled_train_samples=4000,
        learning_rate=5e-5,
        num_epochs=2.0,
        warmup_steps=50,
        bench_repeats=30,
        race_sentences=3200,
    ),
    # A real run on a 2-core CPU (its time: kdlab/course/lab_timing.json): all-MiniLM-L6-v2 (6L, 384 wide)
    # fine-tuned on 32k SST-2 training sentences as the teacher; 3-layer students see 16k of those sentences, of
    # which only the first 4k keep their label (an unlabelled transfer set: `ce` can use the 4k, the distilled
    # students all 16k). Why a transfer set: BENCHMARKS.md, multi-seed sections.
    "cpu": dict(
        teacher="minilm-l6",
        student_layers=3,
        extra_student_layers=[2],
        max_length=64,
        max_train_samples=16000,
        labelled_train_samples=4000,  # the rest of the 16k are a transfer set: teacher soft labels only
        teacher_train_samples=32000,  # a teacher that has seen more labelled data than its students
        learning_rate=1e-4,
        teacher_learning_rate=1e-4,
        num_epochs=2.0,
        teacher_epochs=1.0,
        warmup_steps=25,
        fp16=True,
        logging_steps=50,  # one window = one length-grouped mega-batch of 50 batches: no sawtooth in the curves
        eval_steps=100,
        bench_repeats=20,
        bench_warmup=3,
    ),
    # Seconds: tiny random BERT, tokenizer built locally, synthetic sentences. What CI runs.
    "smoke": dict(
        teacher="tiny-random",
        data="synthetic",
        student_layers=2,
        extra_student_layers=[1],
        max_length=32,
        max_train_samples=512,
        teacher_train_samples=1024,
        max_eval_samples=128,
        learning_rate=5e-4,
        teacher_learning_rate=1e-3,
        batch_size=32,
        num_epochs=2.0,
        teacher_epochs=8.0,
        warmup_steps=5,
        logging_steps=4,
        bench_repeats=5,
        bench_warmup=1,
        num_threads=2,
        race_sentences=256,
    ),
}

# Cross-architecture distillation: the student is loaded on its own (same tokenizer), not cut from the teacher.
# `hinton` is the course's second system (0.5·CE + 0.5·KD); `minilm` adds MiniLMv2 relation heads (gamma =
# delta = 0: MiniLM's per-head terms need equal head counts, relation heads do not).
PROFILES["large2base"] = dict(
    # bert-large-uncased (24L, 1024 wide, 16 heads) fine-tuned on SST-2 here (it has no head) -> a pretrained
    # bert-base-uncased (12L, 768 wide, 12 heads). Both from the Hub; FP16 on CUDA; a GPU with >= 16 GB.
    teacher="bert-large-uncased",
    teacher_finetune="auto",
    student="bert-base-uncased",
    student_layers=12,  # the loaded student's depth (labels in tables; the student is not cut from the teacher)
    extra_student_layers=[6],
    alpha=0.5,
    beta=0.5,
    gamma=0.0,
    delta=0.0,
    relation_weight=0.5,  # the relations together weigh as much as KD (the lab's MiniLM: gamma + delta = 0.5)
    relation_heads=16,  # the teacher's own head count: 64-wide teacher, 48-wide student relation heads
    batch_size=16,
    gradient_accumulation_steps=2,  # effective batch 32; bert-large fine-tuning fits a 16 GB T4 in FP16
    teacher_epochs=3.0,
    num_epochs=3.0,
)
# The same setup at smoke size, offline, in seconds: tiny random teacher (4L, 64 wide, 4 heads) fine-tuned on the
# synthetic sentences -> tiny random student (2L, 32 wide, 2 heads) over the same tokenizer.
PROFILES["smoke-x"] = dict(
    PROFILES["smoke"],
    student="tiny-random:layers=2,hidden=32,heads=2,intermediate=64",
    student_layers=2,
    alpha=0.5,
    beta=0.5,
    gamma=0.0,
    delta=0.0,
    relation_weight=0.5,  # the relations together weigh as much as KD (the lab's MiniLM: gamma + delta = 0.5)
    relation_heads=4,  # divides 64 and 32: 16-wide teacher and 8-wide student relation heads
    learning_rate=2e-3,  # a random student learns from scratch: higher rate, more epochs than `smoke`
    num_epochs=6.0,
)
