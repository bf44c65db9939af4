"""The course text's deployment claims (speed-up, memory, distillation + INT8) beside this run's, each with the
reason they differ, computed from the run (04-Benchmark).

The reasons come from three numbers of the run: the teacher's size, the layer ratio L_t/L_s, and the parameters
that do not shrink with depth (word/position embeddings, pooler, classifier). From the teacher's and the student's
parameter counts P_t, P_s: per layer p = (P_t − P_s)/(L_t − L_s), fixed F = P_t − L_t·p. Cutting layers removes
at most (P_t − P_s)/P_t of the weights; dynamic INT8 quantizes the Linear layers only (the embeddings stay fp32), so
the fp32 teacher is at most 4·P_t / (4·F + (P_s − F)) times the size of the INT8 student.
"""

from __future__ import annotations

# As the course text states them, for ITS setup (not this run's): a BERT-base teacher, 6-layer students, a T4.
COURSE_CLAIMS = {"speed-up of the distilled student": "1.83×", "memory of the distilled student": "−45–60%",
                 "distillation + INT8": "6–9×"}
COURSE_SETUP = "BERT-base teacher (110M parameters, 12 layers), 6-layer students, a T4 GPU"


def fixed_params(teacher_params: int, teacher_layers: int, student_params: int, student_layers: int) -> float:
    """Parameters that do not scale with depth: P_t − L_t·(P_t − P_s)/(L_t − L_s)."""
    per_layer = (teacher_params - student_params) / (teacher_layers - student_layers)
    return teacher_params - teacher_layers * per_layer


def _count(n: float) -> str:
    """A parameter count as 22.7M or 15k."""
    return f"{n / 1e6:.1f}M" if n >= 1e5 else f"{n / 1e3:.0f}k"


def _row(results: dict, model: str, precision: str, batch: int = 1) -> dict:
    return next((r for r in results.get("benchmark") or [] if isinstance(r, dict) and r.get("model") == model
                 and r.get("precision") == precision and int(r.get("batch", 0)) == batch
                 and r.get("status", "ok") == "ok"), {})


def claims_table(results: dict):
    """One row per course claim: the course text's number, this run's, and why they differ (from the run)."""
    import pandas as pd

    students = [r["model"] for r in results.get("benchmark") or [] if isinstance(r, dict)
                and str(r.get("model", "")).startswith("student-") and "untrained" not in r["model"]]
    teacher, teacher_entry = _row(results, "teacher", "fp32"), results.get("teacher") or {}
    if not students or not teacher:
        return pd.DataFrame([{"claim": k, "course text": v, "this run": "—", "why": "run 04's benchmark first"}
                             for k, v in COURSE_CLAIMS.items()])
    name = students[0]
    student, int8 = _row(results, name, "fp32"), _row(results, name, "int8")
    lt, ls = teacher_entry.get("layers"), int(name.split("-")[1].rstrip("L"))
    pt, ps = teacher.get("params"), student.get("params")
    if not (lt and pt and ps) or lt == ls:
        return pd.DataFrame([{"claim": k, "course text": v, "this run": "—", "why": "no parameter counts recorded"}
                             for k, v in COURSE_CLAIMS.items()])
    fixed = fixed_params(pt, lt, ps, ls)
    share = f"{_count(fixed)} of the teacher's {_count(pt)} parameters ({fixed / pt:.0%})"
    speed = teacher["p50_ms"] / student["p50_ms"]
    rows = [{"claim": "speed-up of the distilled student", "course text": COURSE_CLAIMS[
        "speed-up of the distilled student"], "this run": f"{speed:.2f}× (batch 1, {lt} → {ls} layers)",
        "why": f"a {lt} → {ls} cut bounds the encoder's speed-up at {lt / ls:.2f}×; the embeddings and the head "
               f"({share}) run in both models"}]
    mem = [f"{100 * (s / t - 1):+.0f}% {what}" for what, t, s in
           (("peak memory", teacher.get("peak_mem_MB"), student.get("peak_mem_MB")),
            ("on disk", teacher.get("disk_MB"), student.get("disk_MB"))) if t and s and t == t and s == s]
    rows.append({"claim": "memory of the distilled student", "course text": COURSE_CLAIMS[
        "memory of the distilled student"], "this run": "; ".join(mem) or "—",
        "why": f"the student keeps the teacher's embeddings, {share}: cutting {lt - ls} of {lt} layers removes at "
               f"most {(pt - ps) / pt:.0%} of the weights (the course's BERT-base teacher is mostly layers)"})
    if int8:
        bound = 4 * pt / (4 * fixed + (ps - fixed))
        size = (f"{teacher['disk_MB'] / int8['disk_MB']:.1f}× smaller, " if teacher.get("disk_MB")
                and int8.get("disk_MB") else "")
        device = (results.get("environment") or {}).get("device", "this machine")
        rows.append({"claim": "distillation + INT8", "course text": COURSE_CLAIMS["distillation + INT8"],
                     "this run": f"{size}{teacher['p50_ms'] / int8['p50_ms']:.2f}× faster (batch 1)",
                     "why": f"dynamic INT8 quantizes the Linear layers only; the embeddings stay fp32, so the size "
                            f"ratio is at most {bound:.1f}× here; INT8's speed depends on the CPU's INT8 "
                            f"instructions ({device}), and a {_count(pt)}-parameter teacher has less to remove than "
                            "BERT-base"})
    return pd.DataFrame(rows)
