"""01-Setup's steps: the machine, the teacher, the data, the student cut from the teacher, temperature."""

from __future__ import annotations

import pandas as pd

from kdlab import lab as steps, plots, tables
from kdlab.data.tokens import token_lengths
from kdlab.display import report
from kdlab.metrics.classification import format_accuracy, majority_prediction
from kdlab.models.student import count_parameters, parameter_table
from kdlab.models.teacher import diagnose_accuracy
from kdlab.notebook.run import LabRun


class SetupSteps(LabRun):
    """01-Setup."""

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
