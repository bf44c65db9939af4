"""03-Inference's steps: teacher and students compared, with intervals, paired tests and what transferred."""

from __future__ import annotations

from IPython.display import display

from kdlab import lab as steps, plots, tables
from kdlab.course import reference
from kdlab.display import report
from kdlab.distillation.seeds import comparison_table, seed_table
from kdlab.errors import KDLabError
from kdlab.measurement.similarity import similarity_table
from kdlab.metrics import evaluate_modules
from kdlab.metrics.classification import confusion
from kdlab.notebook.run import LabRun
from kdlab.course.noise import format_p
from kdlab.report import course_claims_table


class InferenceSteps(LabRun):
    """03-Inference."""

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
        return evaluate_modules.load(name)

    def seed_comparison(self) -> None:
        """Students over several seeds with paired comparisons, or the reference spread when this run has one seed."""
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
              f"kdlab's {format_p(s[f'mcnemar_vs_{b}_p'])}")

    def course_claims(self):
        return course_claims_table(self.results)

    def similarity(self, n: int | None = None):
        """How much each student learned *from the teacher*: agreement, attention KL with its reading against the
        uniform bound, [CLS] cosine, beside the untrained student — on the first ``n`` dev sentences (None = all of
        them, the set the accuracies use). Shown, not returned (so the readings are not cut at 50 characters)."""
        t, evals = self.teacher, self.evaluations()
        sample = list(self.data["validation"]["sentence"])[:n]
        before = self.initial_student()
        students = {n_: m for n_, (m, _, _) in self.students.items()}
        print(f"on {len(sample)} dev sentences (the accuracies above use {len(self.labels)})")
        table = similarity_table(t.model, {"before distillation": before, **students}, t.tokenizer, sample,
                                 evals["teacher"]["predictions"][:len(sample)],
                                 {name: evals[name]["predictions"][:len(sample)] for name in students},
                                 self.cfg.max_length)
        import pandas as pd

        with pd.option_context("display.max_colwidth", None, "display.width", 250):  # whole readings
            display(table)

    def side_by_side(self, sentences: list[str]):
        models = {"teacher": (self.teacher.model, self.teacher.tokenizer),
                  **{n: (m, tok) for n, (m, tok, _) in self.students.items()}}
        return tables.side_by_side(models, sentences, self.cfg.max_length, names=self.classes)

    def disagreements(self, name: str | None = None, limit: int = 5):
        """Teacher against ``name`` (default: the best student) on every dev sentence: who is right where they
        disagree, and up to ``limit`` whole sentences per answer, with the gold label (shown uncut)."""
        import pandas as pd

        name = name or self.best_student()
        counts, examples = tables.disagreements(list(self.data["validation"]["sentence"]), self.labels,
                                                self.predictions("teacher"), self.predictions(name), limit=limit,
                                                names=self.classes)
        print(f"teacher vs {name} on {len(self.labels)} dev sentences")
        display(counts)
        with pd.option_context("display.max_colwidth", None):  # whole sentences, not cut at 50 characters
            display(examples)

    def confusion_matrices(self):
        k = len(self.classes)
        return plots.confusion_matrices({name: confusion(self.labels, e["predictions"], k)
                                         for name, e in self.evaluations().items()}, self.classes)
