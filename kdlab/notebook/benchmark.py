"""04-Benchmark's steps: latency, throughput, memory, ONNX Runtime, INT8, the deployment rule and the report."""

from __future__ import annotations

import pandas as pd
import torch
from IPython.display import Markdown

from kdlab import lab as steps, plots, tables
from kdlab.course import deployment
from kdlab.display import report
from kdlab.measurement import benchmark
from kdlab.measurement.onnx_export import onnx_missing
from kdlab.measurement.quantize import quantize_int8, saved_size_bytes, state_dict_bytes
from kdlab.metrics.classification import format_accuracy
from kdlab.course.deploy_claims import claims_table
from kdlab.course.noise import margins_table
from kdlab.notebook.deployment_map import deployment_map
from kdlab.notebook.run import LabRun
from kdlab.report import show_report, write_report

# The ONNX Runtime comparison runs on the CPU (also on a GPU runtime): bounded so BERT-base stays within minutes
ONNX_BATCHES = (1, 8)
ONNX_SEQ = 64
ONNX_REPEATS = 10


class BenchmarkSteps(LabRun):
    """04-Benchmark."""

    @property
    def device(self) -> str:
        return "cuda" if torch.cuda.is_available() else "cpu"

    def lineup(self):
        """The models 04 times: the teacher, the MiniLM student and untrained students of the extra sizes."""
        return pd.DataFrame([{"model": name, "layers": m.config.num_hidden_layers, "trained": "untrained" not in name}
                             for name, m in self._lineup_models().items()])

    def _lineup_models(self) -> dict:
        """``{name: model}`` of ``lineup``, loaded once (the MiniLM student's tokenizer kept for real lengths)."""
        if self._lineup is None:
            student, self._tokenizer, _ = steps.load_student(self.cfg, "minilm")
            self._lineup = steps.benchmark_lineup(self.cfg, self.teacher, student)
        return self._lineup

    def _bench(self, **kwargs):
        kwargs.setdefault("models", self._lineup_models())
        kwargs.setdefault("warmup", self.cfg.bench_warmup)
        kwargs.setdefault("repeats", self.cfg.bench_repeats)
        return benchmark.benchmark_models(num_threads=self.cfg.num_threads, **kwargs)

    @property
    def precisions(self) -> tuple[str, str]:
        return ("fp32", "fp16") if self.device == "cuda" else ("fp32", "int8")

    def benchmark(self):
        """Latency P50/P95/P99, throughput, memory and size at batch 1 and 32, sequence length 128 (recorded)."""
        bench = self._bench(batch_sizes=(1, 32), seq_len=128, precisions=self.precisions, device=self.device)
        steps.record(self.cfg, benchmark=bench.to_dict(orient="records"))
        return tables.benchmark_table(bench)

    def benchmark_real_lengths(self):
        """The same at SST-2's real lengths (dev sentences, padded per batch), in every precision of ``benchmark``
        (recorded): the deployment verdict reads both timings."""
        self._lineup_models()  # loads the student's tokenizer with it
        inputs = benchmark.real_length_inputs(self._tokenizer, list(self.data["validation"]["sentence"]),
                                              self.cfg.max_length)
        real = self._bench(batch_sizes=(1, 32), precisions=self.precisions, device=self.device,
                           measure_disk=False, inputs=inputs)
        steps.record(self.cfg, benchmark_real_lengths=real.to_dict(orient="records"))
        return tables.benchmark_table(real, real_lengths=True)

    def benchmark_onnx(self):
        """Teacher and student in PyTorch fp32 and ONNX Runtime on the CPU (recorded), at bounded shapes
        (``ONNX_BATCHES`` × ``ONNX_SEQ`` tokens, ``ONNX_REPEATS`` rounds): a BERT-base teacher on Colab's 2 vCPUs
        takes seconds per batch, so the full benchmark's 32 × 128 × 50 rounds would take many minutes there."""
        missing = onnx_missing()
        if missing:
            print(f"ONNX Runtime comparison skipped: it {missing}; then run this cell again.")
            return None
        models = {name: m for name, m in self._lineup_models().items() if "untrained" not in name}
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

    def deployment_claims(self):
        """The course text's speed-up, memory and distillation + INT8 claims beside this run's, with why they differ."""
        return claims_table(self.results)

    def latency_bars(self):
        return plots.latency_bars(pd.DataFrame(self.results["benchmark"]))  # what 04's benchmark recorded

    def deployment_map(self):
        return deployment_map(deployment.verdict(self.results), self.results)

    def your_deployment(self, choose_deployment):
        """Your rule on this run's numbers beside kdlab's: every trained model, batch-1 P50."""
        found = deployment.verdict(self.results)
        try:
            choice = choose_deployment(found["rows"], found["teacher_accuracy"], found["budget_ms"], found["floor"])
            print(f"your rule: deploy {choice or 'nothing'}" + ("" if choice == found["choice"] else
                  f"   (kdlab's rule: {found['choice'] or 'nothing'}: see the exercise's check)"))
        except NotImplementedError:
            print("(the exercise is not done yet: kdlab's rule below)")
        print(deployment.verdict_text(found, self.results))
        return margins_table(found, self.results)

    def write_report(self):
        """``report.md`` in the run folder, and shown here."""
        path = write_report(self.cfg.run_dir(), self.results)
        print(f"written: {path}")
        return show_report(self.results)

    def checklist(self):
        return Markdown(deployment.checklist(self.results))

    def smaller_student_int8(self):
        """Challenge: a smaller MiniLM student, then INT8: accuracy and size of each (CPU)."""
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
