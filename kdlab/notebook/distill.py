"""02-Distill's steps: the loss checks and race, the students and their controls, curves, attention."""

from __future__ import annotations

from IPython.display import display

from kdlab import exercises, lab as steps, plots, tables
from kdlab.course import reference
from kdlab.course.storage import drive_bytes, saved_models, smaller_student_layers
from kdlab.course.runtimes import describe_distill_estimate, distill_estimate
from kdlab.display import report
from kdlab.distillation.custom import race_verdict, reversed_kl_note
from kdlab.distillation.seeds import seed_table
from kdlab.distillation.losses import DistillationLoss
from kdlab.measurement.similarity import (attention_kl_readings, compare_to_teacher, teacher_states,
                                         uniform_attention_kl)
from kdlab.metrics.classification import format_accuracy
from kdlab.models.layers import num_heads
from kdlab.notebook.run import LabRun


class DistillSteps(LabRun):
    """02-Distill."""

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
        found = distill_estimate(self.cfg, self.teacher.model, self.teacher.tokenizer, self.data["train"])
        steps.record(self.cfg, distill_estimate=found)
        print(describe_distill_estimate(found))

    def loss_race(self, **functions):
        """Your loss terms (``kd_loss=…, attention_kl=…, value_relation_kl=…``) against kdlab's, each trained on the
        same small transfer set from the same start: the checks, the curves, the verdict (intervals and a paired
        test) and the final table; a reversed ``kd_loss`` is told what two classes cannot show."""
        checks = {}
        for exercise, name in (("kd_loss", "kd_loss"), ("attention_kl", "attention_kl"),
                               ("value_relation", "value_relation_kl")):
            if name in functions:
                checks[name] = exercises.run_check(exercise, functions[name])
                print(checks[name].text)
        race = steps.loss_race(self.cfg, self.teacher, self.data, **functions)
        labels = self.data["validation"]["label"]
        verdict = race_verdict(race, labels)
        plots.loss_race(race, verdict)
        if "kd_loss" in checks and checks["kd_loss"].kl_reversed and "yours" in race:
            print(reversed_kl_note(len(set(labels))))
        return tables.loss_race_table(race, verdict)

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
        variant = (self.results.get("students") or {}).get(name, {}).get("variant", name)
        return tables.loss_terms_table(steps.histories(self.cfg).get(name, []), DistillationLoss.from_config(self.cfg, variant))

    def seeds(self):
        """The lab's students over ``num_seeds`` seeds (trained here), or where to find the measured spread."""
        if self.cfg.num_seeds > 1:
            return seed_table(steps.seed_runs(self.cfg, self.teacher, self.data))
        print("num_seeds = 1: one seed per student (03-Inference shows the spread measured over 5 seeds)")

    def training_curves(self):
        return plots.training_curves(steps.histories(self.cfg), steps.loss_weights(self.cfg))

    def attention_before_after(self):
        """The last layer's attention KL to the teacher before and after MiniLM distillation (recorded), and the
        three attention maps on one dev sentence."""
        teacher = self.teacher
        after, _, _ = steps.load_student(self.cfg, "minilm")
        before = self.initial_student()
        source = getattr(before.config, "kdlab_layer_map", None)
        if source:
            print(f"the student's last layer starts as a copy of teacher layer {source[-1]} "
                  f"(the teacher's last is layer {teacher.model.config.num_hidden_layers - 1})")
        kl = None
        if num_heads(before) == num_heads(teacher.model):
            kl = self.attention_kl(before, after)
        return plots.attention_maps({"teacher": teacher.model, "student before": before,
                                     "student after (minilm)": after},
                                    teacher.tokenizer, self.data["validation"]["sentence"][1], dev_kl=kl)

    def attention_kl(self, before, after) -> dict:
        """Last-layer attention KL to the teacher on every dev sentence (the set 03 and the accuracies use):
        before and after MiniLM distillation and the uniform bound, printed with their readings and recorded."""
        teacher = self.teacher
        sample = list(self.data["validation"]["sentence"])
        states = teacher_states(teacher.model, teacher.tokenizer, sample, self.cfg.max_length)
        kl = {when: compare_to_teacher(states, model, cosine=False)["attention_kl"]
              for when, model in (("before", before), ("after", after))}
        kl["uniform"] = uniform_attention_kl(states)
        kl["sentences"] = len(sample)
        steps.record(self.cfg, attention_kl_to_teacher=kl)
        report("attention_kl_to_teacher.after", kl["after"],
               f"last-layer attention KL to the teacher over {len(sample)} dev sentences: "
               f"{kl['before']:.4f} before training → {kl['after']:.4f} after MiniLM distillation; "
               f"attending uniformly to every token scores {kl['uniform']:.4f}")
        for when, reading in attention_kl_readings({w: kl[w] for w in ("before", "after")}, kl["uniform"]).items():
            print(f"  {when}: {reading}")
        return kl

    @staticmethod
    def lesson_table():
        """The shipped multi-seed settings, one row each with its ``role`` (``kdlab.course.reference``)."""
        return reference.lesson_table()

    def headline(self):
        """02's headline from the shipped controls: the unseen-sentence gain is the result, the teacher's-own-
        sentence gain its upper bound, this run's one-seed gain beside them (Markdown)."""
        from IPython.display import Markdown

        config = {"transfer_sentences": self.cfg.transfer_sentences, "profile": self.cfg.profile}
        return Markdown(reference.headline({**self.results, "config": config}))

    @staticmethod
    def reference_note(key: str):
        """A named multi-seed result the notebook's text relies on (``reference_controls.json``), as Markdown."""
        return steps.reference_note(key)

    def sweep(self, variant: str, settings: dict[str, dict], tag: str, x: str | None = None, title: str = ""):
        """Train ``variant`` once per entry of ``settings`` (``{name: {field: value}}``) as experiment ``tag``; show
        the table and, with ``x``, its plot."""
        table = steps.sweep(self.cfg, self.teacher, self.data, variant, settings, tag=tag)
        display(table)
        if x:
            plots.sweep_plot(table, x, title)
        return None

    def challenge_cost(self) -> None:
        """What the challenges below add: the students they train and the bytes those keep in the runs folder
        (Google Drive on Colab), from the parameter counts 01 recorded (``kdlab.course.storage``)."""
        rows = self.results.get("params") or []
        params = {row["layers"]: row["params"] for row in rows}
        teacher_layers = next((row["layers"] for row in rows if row["model"] == "teacher"), None)
        if teacher_layers is None:
            return
        params.setdefault(self.smaller_student_layers(), params.get(self.cfg.student_layers))
        saved = "teacher_finetune" in self.results
        base = saved_models(self.cfg, teacher_layers, saved, challenges=False)
        extra = saved_models(self.cfg, teacher_layers, saved, challenges=True)[len(base):]
        more = drive_bytes(extra, params) - drive_bytes([], params)
        print(f"the challenges train {len(extra)} more students and keep about {more / 2**30:.2f} GiB more in "
              f"{self.cfg.run_dir()} (on Colab: your Drive); the lab without them: "
              f"{drive_bytes(base, params) / 2**30:.2f} GiB")

    def smaller_student_layers(self) -> int:
        """The challenges' smaller student (``kdlab.course.storage.smaller_student_layers``)."""
        return smaller_student_layers(self.cfg, self.teacher.model.config.num_hidden_layers)
