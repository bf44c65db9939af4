"""The notebooks' one import: ``from kdlab import Lab``, then ``lab = Lab(PROFILE)`` and one call per step.

A ``Lab`` holds what every step of a run shares — the config, the teacher, the data, the run folder — so a cell
reads as the lesson it teaches (``lab.train("minilm")``, ``lab.compare()``) rather than as plumbing threaded through
``(cfg, teacher, data)``. Each method is one step of 01–04, built from ``kdlab.lab`` (the steps, shared with
``python -m kdlab run`` and the benchmarks), ``kdlab.tables`` and ``kdlab.plots``. Numbers the grader checks are shown
with their provenance by the method that computes them (``kdlab.display.report``): a student cell holds no
results.json keys. The exercise checks take the student's function by its name: ``lab.check(kd_loss)``.
"""

from __future__ import annotations

import pandas as pd
import torch
from IPython.display import Markdown, display

from kdlab import exercises, lab as steps, plots, tables
from kdlab.config import KDConfig
from kdlab.course import deployment, reference
from kdlab.course.runtimes import describe_minutes
from kdlab.data.sources import label_names
from kdlab.data.tokens import token_lengths
from kdlab.display import report
from kdlab.errors import KDLabError
from kdlab.metrics.classification import confusion, format_accuracy, majority_prediction
from kdlab.models.teacher import Teacher, diagnose_accuracy


# 04's ONNX Runtime comparison runs on the CPU (also on a GPU runtime): bounded so BERT-base stays within minutes
ONNX_BATCHES = (1, 8)
ONNX_SEQ = 64
ONNX_REPEATS = 10


class Lab:
    """One run of the lab (``runs/<profile>/``): ``Lab(PROFILE, student_id=STUDENT_ID)`` loads and validates the
    config (``kdlab.lab.setup``) and says where the artifacts go. The teacher and the data load on first use:
    ``lab.teacher`` is 01's prepared teacher (it stops, naming 01-Setup, when 01 has not run)."""

    def __init__(self, profile: str | None = None, student_id: str | None = None, **overrides):
        self.cfg: KDConfig = steps.setup(profile, student_id=student_id, **overrides)
        self._teacher: Teacher | None = None
        self._data = None
        self._students: dict | None = None
        self._evals: dict | None = None
        print(f"profile = {self.cfg.profile}   artifacts → {self.cfg.run_dir()}")
        print(describe_minutes(self.cfg) or f"time: the `{self.cfg.profile}` profile has no timed or estimated run")

    # --- what every notebook shares ------------------------------------------------------------------------------
    @property
    def teacher(self) -> Teacher:
        if self._teacher is None:
            self._teacher = steps.lab_teacher(self.cfg)
        return self._teacher

    @property
    def data(self):
        if self._data is None:
            self._data = steps.load_data(self.cfg)
        return self._data

    @property
    def results(self) -> dict:
        """Everything this run recorded so far (``runs/<profile>/results.json``)."""
        return steps.results(self.cfg)

    @property
    def challenges(self) -> bool:
        """Whether the profile runs the optional challenge cells (set ``RUN_CHALLENGES`` to override)."""
        return bool(self.cfg.challenges)

    @property
    def classes(self) -> list[str]:
        return label_names(self.data["validation"])

    def settings(self):
        """The settings that matter, one per row."""
        return tables.settings_table(self.cfg)

    def check(self, fn) -> None:
        """Check your exercise function (found by its name, e.g. ``kd_loss``) and show specific feedback."""
        by_function = {e.function: e.id for e in exercises.EXERCISES.values()}
        exercise = by_function.get(getattr(fn, "__name__", ""))
        if exercise is None:
            raise KDLabError(f"lab.check() knows the exercises by their function's name; "
                             f"{getattr(fn, '__name__', fn)!r} is none of {', '.join(sorted(by_function))}. "
                             "Keep the name the exercise cell gives your function.")
        exercises.emit(exercises.run_check(exercise, fn))

    # --- 01-Setup ------------------------------------------------------------------------------------------------
    def machine(self):
        """This machine (torch, transformers, CUDA, GPU, FP16 support, CPU threads), recorded in results.json."""
        info = steps.machine_info()
        steps.record(self.cfg, profile=self.cfg.profile, config=self.cfg.to_dict(), environment=info)
        return pd.Series(info, name="value").to_frame()

    def prepare_teacher(self):
        """01's teacher: fine-tuned here when it has no trained head (reused when already fine-tuned)."""
        self._teacher = steps.prepare_teacher(self.cfg)
        return self.teacher_card()

    def teacher_card(self):
        m = self.teacher.model.config
        return pd.DataFrame([{"teacher": self.teacher.source, "layers": m.num_hidden_layers, "hidden": m.hidden_size,
                              "heads": m.num_attention_heads, "fine-tuned here": "teacher_finetune" in self.results}])

    def data_summary(self):
        return tables.data_summary(self.data)

    def token_lengths(self):
        """Histogram of the training sentences' token counts beside ``max_length``."""
        lengths = token_lengths(self.data["train"], self.teacher.tokenizer)
        return plots.token_length_histogram(lengths, self.cfg.max_length)

    def evaluate_teacher(self) -> dict:
        """The teacher's dev accuracy (recorded as ``teacher``), with a check of the label order."""
        m = steps.evaluate(self.cfg, self.teacher.model, self.teacher.tokenizer, self.data, key="teacher")
        report("teacher.accuracy", m["accuracy"],
               f"teacher dev accuracy {format_accuracy(m)}, F1 {m['f1']:.3f}, n = {m['n']}")
        print(diagnose_accuracy(m["accuracy"]) or "label order OK")

    def initial_student(self):
        """The student before any training (cut from the teacher's alternate layers, or as the config says)."""
        return steps.initial_student(self.cfg, self.teacher)

    def layer_map(self, student):
        return tables.layer_map_table(student).T

    def parameters(self):
        """Parameters of the teacher and of each student size (recorded), and the lab student's share."""
        from kdlab.models.student import count_parameters, parameter_table

        teacher = self.teacher.model
        params = parameter_table(teacher, [self.cfg.student_layers, *self.cfg.extra_student_layers])
        steps.record(self.cfg, params=params.to_dict(orient="records"))
        student = params.set_index("model")["params"][f"student-{self.cfg.student_layers}L"]
        print(f"the {self.cfg.student_layers}-layer student has {student / count_parameters(teacher):.1%} of the "
              f"teacher's parameters with {self.cfg.student_layers / teacher.config.num_hidden_layers:.0%} of its "
              "layers")
        return params

    def evaluate_student_before(self, student) -> None:
        """The untrained student's dev accuracy (recorded as ``student_before``) and what it predicts."""
        m = steps.evaluate(self.cfg, student, self.teacher.tokenizer, self.data, key="student_before")
        label, share = majority_prediction(m["predictions"])
        report("student_before.accuracy", m["accuracy"],
               f"student before training: {format_accuracy(m)}, F1 {m['f1']:.3f}; "
               f"it predicts {self.classes[label]} for {share:.0%} of the dev sentences")

    def dev_sentence(self, index: int = 0) -> tuple[str, int]:
        """``(sentence, gold label)`` of one dev example."""
        row = self.data["validation"][index]
        return row["sentence"], row["label"]

    def soft_vs_hard(self, sentence: str, gold: int, temperatures=(1, 4, 10)):
        print(sentence)
        return tables.soft_vs_hard(self.teacher.model, self.teacher.tokenizer, sentence, gold, temperatures)

    def temperature_demo(self, sentence: str, temperatures=(1, 4, 10)):
        return plots.temperature_demo(self.teacher.model, self.teacher.tokenizer, sentence, temperatures)

    @staticmethod
    def multiclass_temperature_demo(logits, class_names, temperatures=(1, 4, 10), title: str = ""):
        return plots.multiclass_temperature_demo(logits, class_names, temperatures, title=title)

    # --- 02-Distill ----------------------------------------------------------------------------------------------
    @staticmethod
    def kd_gradient_vs_temperature():
        return plots.kd_gradient_vs_temperature()

    def loss_checks(self):
        return tables.loss_checks(self.cfg.temperature)

    @staticmethod
    def cross_arch_loss_checks():
        return tables.cross_arch_loss_checks()

    def training_time(self) -> None:
        """How long 02's training will take on this machine: a few steps of each kind timed here (GPU included)."""
        from kdlab.course.runtimes import describe_distill_estimate, distill_estimate

        found = distill_estimate(self.cfg, self.teacher.model, self.teacher.tokenizer, self.data["train"])
        steps.record(self.cfg, distill_estimate=found)
        print(describe_distill_estimate(found))

    def loss_race(self, **functions):
        """Your loss terms (``kd_loss=…, attention_kl=…, value_relation_kl=…``) against kdlab's, each trained on the
        same small transfer set from the same start: the checks, the curves and the final table."""
        for exercise, name in (("kd_loss", "kd_loss"), ("attention_kl", "attention_kl"),
                               ("value_relation", "value_relation_kl")):
            if name in functions:
                print(exercises.run_check(exercise, functions[name]).text)
        race = steps.loss_race(self.cfg, self.teacher, self.data, **functions)
        plots.loss_race(race)
        return tables.loss_race_table(race)

    def train(self, variant: str, name: str | None = None, **settings) -> None:
        """Train (or reuse, when saved with the same settings) one student and show its dev accuracy. ``variant``:
        the loss (``ce``, ``hinton``, ``minilm``); ``name``: the student's name (default the variant);
        ``settings``: config fields for this student only (e.g. ``student_init="random"``)."""
        name = name or variant
        r = steps.train_variant(self.cfg, self.teacher, self.data, variant, name=name, **settings)
        how = "reused" if r.reused else f"trained in {r.train_seconds:.0f} s"
        report(f"students.{name}.accuracy", r.metrics["accuracy"],
               f"{name} student: {format_accuracy(r.metrics)} ({how})")

    def train_baselines(self):
        """The controls the lesson needs: ``ce`` (labels only), ``ce-random`` (labels only, random start) and
        ``hinton`` (logits KD) — when the profile compares variants — then every student's table."""
        if self.cfg.compare_variants:
            for name, variant, settings in (("ce", "ce", {}), ("ce-random", "ce", {"student_init": "random"}),
                                            ("hinton", "hinton", {})):
                self.train(variant, name=name, **settings)
        return self.students_table()

    def students_table(self):
        return tables.students_table(self.results)

    def loss_terms(self, name: str = "minilm"):
        """The last logged values of each loss term of student ``name``, weighted and unweighted."""
        from kdlab.distillation.training import loss_for

        variant = (self.results.get("students") or {}).get(name, {}).get("variant", name)
        return tables.loss_terms_table(steps.histories(self.cfg).get(name, []), loss_for(self.cfg, variant))

    def seeds(self):
        """The lab's students over ``num_seeds`` seeds (trained here), or where to find the measured spread."""
        from kdlab.distillation.seeds import seed_table

        if self.cfg.num_seeds > 1:
            return seed_table(steps.seed_runs(self.cfg, self.teacher, self.data))
        print("num_seeds = 1: one seed per student (03-Inference shows the spread measured over 5 seeds)")

    def training_curves(self):
        return plots.training_curves(steps.histories(self.cfg), steps.loss_weights(self.cfg))

    def attention_before_after(self):
        """The last layer's attention KL to the teacher before and after MiniLM distillation (recorded), and the
        three attention maps on one dev sentence."""
        from kdlab.measurement.similarity import attention_kl_to_teacher
        from kdlab.models.layers import num_heads

        teacher = self.teacher
        after, _, _ = steps.load_student(self.cfg, "minilm")
        before = self.initial_student()
        source = getattr(before.config, "kdlab_layer_map", None)
        if source:
            print(f"the student's last layer starts as a copy of teacher layer {source[-1]} "
                  f"(the teacher's last is layer {teacher.model.config.num_hidden_layers - 1})")
        if num_heads(before) == num_heads(teacher.model):
            sample = list(self.data["validation"]["sentence"][:200])
            kl = {when: attention_kl_to_teacher(teacher.model, model, teacher.tokenizer, sample, self.cfg.max_length)
                  for when, model in (("before", before), ("after", after))}
            steps.record(self.cfg, attention_kl_to_teacher=kl)
            report("attention_kl_to_teacher.after", kl["after"],
                   f"last-layer attention KL to the teacher over {len(sample)} dev sentences: "
                   f"{kl['before']:.4f} before training → {kl['after']:.4f} after MiniLM distillation")
        return plots.attention_maps({"teacher": teacher.model, "student before": before,
                                     "student after (minilm)": after},
                                    teacher.tokenizer, self.data["validation"]["sentence"][1])

    @staticmethod
    def lesson_table():
        return reference.lesson_table()

    def sweep(self, variant: str, settings: dict[str, dict], tag: str, x: str | None = None, title: str = ""):
        """Train ``variant`` once per entry of ``settings`` (``{name: {field: value}}``) as experiment ``tag``; show
        the table and, with ``x``, its plot."""
        table = steps.sweep(self.cfg, self.teacher, self.data, variant, settings, tag=tag)
        display(table)
        if x:
            plots.sweep_plot(table, x, title)
        return None

    def smaller_student_layers(self) -> int:
        """The challenges' smaller student: 4 layers under a deep teacher (``full``), else one layer fewer."""
        if self.teacher.model.config.num_hidden_layers >= 8:
            return 4
        return max(1, self.cfg.student_layers - 1)

    # --- 03-Inference --------------------------------------------------------------------------------------------
    def load_students(self) -> list[str]:
        """Every student 02 saved (stops, naming what differs, if the settings changed since)."""
        names = steps.trained_variants(self.cfg)
        if not names:
            raise KDLabError("no saved students: run 02-Distill.ipynb first")
        self._students = {name: steps.load_student(self.cfg, name) for name in names}
        print("students:", ", ".join(names), "· classes:", ", ".join(self.classes))
        return names

    @property
    def students(self) -> dict:
        if self._students is None:
            self.load_students()
        return self._students

    @property
    def labels(self) -> list[int]:
        return list(self.data["validation"]["label"])

    def evaluations(self) -> dict:
        """Dev predictions of the teacher and every student (computed once)."""
        if self._evals is None:
            t = self.teacher
            evals = {"teacher": steps.evaluate(self.cfg, t.model, t.tokenizer, self.data)}
            for name, (model, tok, _) in self.students.items():
                evals[name] = steps.evaluate(self.cfg, model, tok, self.data)
            self._evals = evals
        return self._evals

    def best_student(self) -> str:
        return "minilm" if "minilm" in self.students else next(iter(self.students))

    def compare(self):
        """Teacher and students: accuracy with 95% intervals, retention, McNemar against ``ce`` (recorded)."""
        evals = self.evaluations()
        students = {n: e for n, e in evals.items() if n != "teacher"}
        table = tables.compare_models(self.cfg, evals["teacher"], students, self.labels)
        if "minilm" in students:
            m = self.results["students"]["minilm"]
            report("students.minilm.accuracy", m["accuracy"],
                   f"minilm: {100 * m['accuracy']:.2f}% dev, retention "
                   f"{m['accuracy'] / evals['teacher']['accuracy']:.1%}")
        return table

    def predictions(self, name: str) -> list[int]:
        return list(self.evaluations()[name]["predictions"])

    @staticmethod
    def metric(name: str):
        """A Hugging Face ``evaluate`` metric (``accuracy``, ``f1``) loaded offline from the copy kdlab ships; on Colab
        ``evaluate.load(name)`` fetches the same script from the Hub."""
        from kdlab.metrics import evaluate_modules

        return evaluate_modules.load(name)

    def seed_comparison(self) -> None:
        """Students over several seeds with paired comparisons, or the reference spread when this run has one seed."""
        from kdlab.distillation.seeds import comparison_table, seed_table

        rows = steps.seed_runs(self.cfg, self.teacher, self.data, train=False)
        if len({r["seed"] for r in rows}) > 1:
            display(seed_table(rows))
            display(comparison_table(rows, [("minilm", "ce"), ("hinton", "ce"), ("minilm", "hinton")],
                                     self.labels).round(3))
            return
        print("one seed in this run; the spread measured with the cpu profile's settings over 5 seeds "
              "(a different setup unless your profile is cpu):")
        display(reference.reference_spread("cpu"))
        display(reference.reference_comparisons("cpu"))

    def your_mcnemar(self, mcnemar_p, a: str = "minilm", b: str = "ce") -> None:
        """Your ``mcnemar_p`` on this run's ``a`` vs ``b`` counts, beside kdlab's p."""
        s = (self.results.get("students") or {}).get(a, {})
        if f"right_only_vs_{b}" not in s:
            print(f"no {a} vs {b} counts in this run (03's comparison table records them)")
            return
        right, wrong = s[f"right_only_vs_{b}"], s[f"wrong_only_vs_{b}"]
        try:
            mine = f"{mcnemar_p(right, wrong):.4f}"
        except NotImplementedError:
            mine = "(exercise not done yet)"
        print(f"{a} right only: {right}, {b} right only: {wrong}; your p = {mine}, "
              f"kdlab's p = {s[f'mcnemar_vs_{b}_p']:.4f}")

    def course_claims(self):
        from kdlab.report import course_claims_table

        return course_claims_table(self.results)

    def similarity(self, n: int = 200):
        """How much each student learned *from the teacher*: agreement, logit correlation, attention KL (n dev
        sentences), beside the untrained student."""
        from kdlab.measurement.similarity import similarity_table

        t, evals = self.teacher, self.evaluations()
        sample = list(self.data["validation"]["sentence"][:n])
        before = self.initial_student()
        students = {n_: m for n_, (m, _, _) in self.students.items()}
        return similarity_table(t.model, {"before distillation": before, **students}, t.tokenizer, sample,
                                evals["teacher"]["predictions"][:n],
                                {name: evals[name]["predictions"][:n] for name in students}, self.cfg.max_length)

    def side_by_side(self, sentences: list[str]):
        models = {"teacher": (self.teacher.model, self.teacher.tokenizer),
                  **{n: (m, tok) for n, (m, tok, _) in self.students.items()}}
        return tables.side_by_side(models, sentences, self.cfg.max_length, names=self.classes)

    def disagreements(self, name: str | None = None):
        name = name or self.best_student()
        counts, examples = tables.disagreements(list(self.data["validation"]["sentence"]), self.labels,
                                                self.predictions("teacher"), self.predictions(name),
                                                names=self.classes)
        print(f"teacher vs {name}")
        display(counts)
        return examples

    def confusion_matrices(self):
        k = len(self.classes)
        return plots.confusion_matrices({name: confusion(self.labels, e["predictions"], k)
                                         for name, e in self.evaluations().items()}, self.classes)

    # --- 04-Benchmark --------------------------------------------------------------------------------------------
    @property
    def device(self) -> str:
        return "cuda" if torch.cuda.is_available() else "cpu"

    def lineup(self):
        """The models 04 times: the teacher, the MiniLM student and untrained students of the extra sizes."""
        student, self._tokenizer, _ = steps.load_student(self.cfg, "minilm")
        self._lineup = steps.benchmark_lineup(self.cfg, self.teacher, student)
        return pd.DataFrame([{"model": name, "layers": m.config.num_hidden_layers, "trained": "untrained" not in name}
                             for name, m in self._lineup.items()])

    def _bench(self, **kwargs):
        from kdlab.measurement import benchmark

        if not hasattr(self, "_lineup"):
            self.lineup()
        kwargs.setdefault("models", self._lineup)
        kwargs.setdefault("warmup", self.cfg.bench_warmup)
        kwargs.setdefault("repeats", self.cfg.bench_repeats)
        return benchmark.benchmark_models(num_threads=self.cfg.num_threads, **kwargs)

    @property
    def precisions(self) -> tuple[str, str]:
        return ("fp32", "fp16") if self.device == "cuda" else ("fp32", "int8")

    def benchmark(self):
        """Latency P50/P95/P99, throughput, memory and size at batch 1 and 32, sequence length 128 (recorded)."""
        self.bench = self._bench(batch_sizes=(1, 32), seq_len=128, precisions=self.precisions, device=self.device)
        steps.record(self.cfg, benchmark=self.bench.to_dict(orient="records"))
        return tables.benchmark_table(self.bench)

    def benchmark_real_lengths(self):
        """The same at SST-2's real lengths (dev sentences, padded per batch), fp32 (recorded)."""
        from kdlab.measurement import benchmark

        if not hasattr(self, "_lineup"):
            self.lineup()
        inputs = benchmark.real_length_inputs(self._tokenizer, list(self.data["validation"]["sentence"]),
                                              self.cfg.max_length)
        real = self._bench(batch_sizes=(1, 32), precisions=self.precisions[:1], device=self.device,
                           measure_disk=False, inputs=inputs)
        steps.record(self.cfg, benchmark_real_lengths=real.to_dict(orient="records"))
        return tables.benchmark_table(real, real_lengths=True)

    def benchmark_onnx(self):
        """Teacher and student in PyTorch fp32 and ONNX Runtime on the CPU (recorded), at bounded shapes
        (``ONNX_BATCHES`` × ``ONNX_SEQ`` tokens, ``ONNX_REPEATS`` rounds): a BERT-base teacher on Colab's 2 vCPUs
        takes seconds per batch, so the full benchmark's 32 × 128 × 50 rounds would take many minutes there."""
        from kdlab.measurement.onnx_export import onnx_missing

        missing = onnx_missing()
        if missing:
            print(f"ONNX Runtime comparison skipped: it {missing}; then run this cell again.")
            return None
        if not hasattr(self, "_lineup"):
            self.lineup()
        models = {name: m for name, m in self._lineup.items() if "untrained" not in name}
        onnx = self._bench(models=models, batch_sizes=ONNX_BATCHES, seq_len=min(ONNX_SEQ, self.cfg.max_length),
                           precisions=("fp32", "onnx"), device="cpu", measure_disk=False,
                           repeats=min(self.cfg.bench_repeats, ONNX_REPEATS),
                           warmup=min(self.cfg.bench_warmup, 2))
        steps.record(self.cfg, benchmark_onnx=onnx.to_dict(orient="records"))
        return onnx[["model", "precision", "batch", "p50_ms", "p95_ms", "samples_per_s", "speedup_vs_teacher",
                     "max_abs_diff", "status"]].round(3)

    def int8_accuracy(self):
        """Dev accuracy of INT8 copies of the teacher and every student (recorded)."""
        int8 = steps.int8_accuracies(self.cfg, self.teacher, self.data)
        res = self.results
        if "minilm" in int8:
            report("int8.accuracy", int8["minilm"]["accuracy"],
                   f"INT8 minilm student {format_accuracy(int8['minilm'])} vs fp32 "
                   f"{100 * res['students']['minilm']['accuracy']:.2f}%")
        fp32 = {"teacher": res["teacher"], **res.get("students", {})}
        return pd.DataFrame([{"model": name, "fp32 %": 100 * fp32[name]["accuracy"], "INT8 %": 100 * m["accuracy"]}
                             for name, m in int8.items()]).round(2)

    def latency_bars(self):
        return plots.latency_bars(self.bench)

    def deployment_map(self):
        return plots.deployment_map(deployment.verdict(self.results))

    def your_deployment(self, choose_deployment):
        """Your rule on this run's numbers beside kdlab's: every trained model, batch-1 P50."""
        found = deployment.verdict(self.results)
        try:
            choice = choose_deployment(found["rows"], found["teacher_accuracy"], found["budget_ms"], found["floor"])
            print(f"your rule: deploy {choice or 'nothing'}" + ("" if choice == found["choice"] else
                  f"   (kdlab's rule: {found['choice'] or 'nothing'}: see the exercise's check)"))
        except NotImplementedError:
            print("(the exercise is not done yet: kdlab's rule below)")
        print(deployment.verdict_text(found))
        return pd.DataFrame(found["rows"]).drop(columns=["trained"]).round(4)

    def write_report(self):
        """``report.md`` in the run folder, and shown here."""
        from kdlab.report import show_report, write_report

        path = write_report(self.cfg.run_dir(), self.results)
        print(f"written: {path}")
        return show_report(self.results)

    def checklist(self):
        return Markdown(deployment.checklist(self.results))

    def smaller_student_int8(self):
        """Challenge: a smaller MiniLM student, then INT8: accuracy and size of each (CPU)."""
        from kdlab.measurement.quantize import quantize_int8, saved_size_bytes, state_dict_bytes

        layers = self.smaller_student_layers()
        steps.sweep(self.cfg, self.teacher, self.data, "minilm", {f"{layers}L": {"student_layers": layers}},
                    tag="smaller")
        small, tok, _ = steps.load_student(self.cfg, f"{layers}L", tag="smaller", allow_other_settings=True)
        rows = []
        for name, model in ((f"student-{layers}L fp32", small), (f"student-{layers}L int8", quantize_int8(small))):
            m = steps.evaluate(self.cfg, model, tok, self.data, device="cpu")
            size = (saved_size_bytes(model) if "int8" in name else state_dict_bytes(model)) / 2**20
            rows.append({"model": name, "accuracy_%": 100 * m["accuracy"], "size_MB": size})
        return pd.DataFrame(rows).round(2)
