"""Small tables the notebooks show: settings, data, layer maps, loss checks and loss terms, model comparisons,
predictions side by side. Each returns a pandas DataFrame (or a dict and a DataFrame) with readable columns."""

from __future__ import annotations

import re
from pathlib import PureWindowsPath

import numpy as np
import torch

from kdlab.config import KDConfig
from kdlab.display import mark_table

# The settings a student changes or needs to read the results, in the order they matter (field, label).
SETTINGS = (
    ("profile", "profile"),
    ("teacher", "teacher (教師)"),
    ("student_layers", "student layers (學生層數)"),
    ("layer_map", "layer map (None = alternate, i·L_t/L_s)"),
    ("student_init", "student initialization"),
    ("data", "data"),
    ("teacher_train_samples", "teacher's training sentences"),
    ("max_train_samples", "students' training sentences"),
    ("labelled_train_samples", "of which labelled (None = all)"),
    ("transfer_sentences", "transfer set (teacher's own / unseen sentences)"),
    ("augment_copies", "augmented copies per sentence (unlabelled)"),
    ("max_eval_samples", "dev sentences (None = all 872)"),
    ("max_length", "max tokens per sentence"),
    ("temperature", "temperature T"),
    ("alpha", "α  (CE with hard labels)"),
    ("beta", "β  (KD with soft labels, ×T²)"),
    ("gamma", "γ  (self-attention distribution)"),
    ("delta", "δ  (value relation)"),
    ("relation_style", "relation loss (kl = MiniLM, mse = course text)"),
    ("learning_rate", "learning rate (students)"),
    ("batch_size", "batch size"),
    ("num_epochs", "epochs (students)"),
    ("warmup_steps", "warmup steps"),
    ("fp16", "FP16 on CUDA"),
    ("seed", "seed"),
    ("num_seeds", "seeds per compared student"),
)

_LOCAL_PATH = re.compile(r"^(/|~|\.{1,2}[/\\]|[A-Za-z]:[/\\]|\\\\)")  # /…, ~…, ./…, C:\…, \\server


def settings_table(cfg: KDConfig):
    """The settings that matter, one per row (every one visible; ``config.json`` has all fields)."""
    import pandas as pd

    import torch

    cuda = torch.cuda.is_available()
    rows = [(label, _show(getattr(cfg, field)) if field != "fp16" else
             (f"{cfg.fp16} (this machine has no CUDA GPU: fp32)" if cfg.fp16 and not cuda else _show(cfg.fp16)))
            for field, label in SETTINGS]
    return pd.DataFrame(rows, columns=["setting", "value"]).set_index("setting")


def _show(value) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, str) and _LOCAL_PATH.match(value):  # a local folder: its name, not this machine's layout
        return f".../{PureWindowsPath(value).name}"  # PureWindowsPath splits on both / and \\
    return "None" if value is None else str(value)


def data_summary(data):
    """Rows per split with label balance (and the unlabelled transfer set, if any)."""
    import pandas as pd

    from kdlab.data.sources import label_names
    from kdlab.data.transfer import label_balance

    names = label_names(data["validation"])
    table = pd.DataFrame([{"split": name, "rows": len(split), **label_balance(split, names)}
                          for name, split in data.items()])
    counts = [c for c in table.columns if c != "split"]
    table[counts] = table[counts].fillna(0).astype(int)
    return table


def layer_map_table(student):
    """Which teacher layer each student layer was copied from."""
    import pandas as pd

    mapping = getattr(student.config, "kdlab_layer_map", None) or []
    return pd.DataFrame({"student layer": range(len(mapping)), "teacher layer": mapping})


def display_class_names(model=None, count: int | None = None, names=None) -> list[str]:
    """The class names to show: ``names`` when given, else the model's ``id2label`` (transformers' generic
    ``LABEL_0``/``LABEL_1`` read as SST-2's negative/positive), else SST-2's for two classes and 0..K-1 for more."""
    from kdlab.data.sources import LABEL_NAMES

    if names:
        return list(names)
    if model is not None:
        count = int(model.config.num_labels)
        id2label = getattr(model.config, "id2label", None) or {}
        found = [str(id2label.get(i, id2label.get(str(i), i))) for i in range(count)]
        return list(LABEL_NAMES) if found == ["LABEL_0", "LABEL_1"] else found
    return list(LABEL_NAMES) if (count or 2) <= 2 else [str(i) for i in range(count)]


def soft_vs_hard(teacher_model, tokenizer, sentence: str, gold: int, temperatures=(1, 4, 10), label_names=None):
    """One sentence's hard label (one-hot, 硬標籤) beside the teacher's soft labels (軟標籤) softmax(z/T), one column
    per class (the data's classes: two for SST-2, any number for a local set)."""
    import pandas as pd

    names = display_class_names(teacher_model, names=label_names)
    device = next(teacher_model.parameters()).device
    with torch.inference_mode():
        logits = teacher_model.eval()(**tokenizer(sentence, return_tensors="pt").to(device)).logits[0].float().cpu()
    rows = {"hard label (one-hot)": [1.0 if i == gold else 0.0 for i in range(len(names))]}
    for t in temperatures:
        rows[f"teacher, T = {t:g}"] = torch.softmax(logits / t, -1).tolist()
    return pd.DataFrame(rows, index=names).T.round(3)


# --- losses ------------------------------------------------------------------------------------------------------
def loss_checks(temperature: float = 4.0):
    """Toy-tensor checks of kdlab's losses against independent computations (shown in 02-Distill)."""
    import pandas as pd
    import torch.nn.functional as F

    from kdlab.distillation.losses import (
        attention_distribution_loss,
        attention_mse_loss,
        kd_loss,
        value_mse_loss,
        value_relation_loss,
    )

    g = torch.Generator().manual_seed(0)
    t = temperature
    z_s, z_t = torch.randn(4, 5, generator=g) * 3, torch.randn(4, 5, generator=g) * 3
    independent = F.kl_div(F.log_softmax(z_s / t, -1), F.softmax(z_t / t, -1), reduction="batchmean") * t * t
    q, k, v = (torch.randn(2, 4, 6, 8, generator=g) for _ in range(3))
    mask = torch.tensor([[1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1]])
    q_pad = q.clone()
    q_pad[0, :, 4:] = 100.0  # garbage in padded positions
    rows = [
        ("kd_loss vs F.kl_div(log_softmax(z_s/T), softmax(z_t/T), 'batchmean')·T²  (5 classes)",
         f"{kd_loss(z_s, z_t, t).item():.6f} vs {independent.item():.6f}", "equal"),
        ("kd_loss for equal logits", f"{kd_loss(z_t, z_t, t).item():.2g}", "0"),
        ("attention KL, identical Q/K", f"{attention_distribution_loss(q, k, q, k, mask).item():.2g}", "0"),
        ("value-relation KL, identical V", f"{value_relation_loss(v, v, mask).item():.2g}", "0"),
        ("attention KL, different Q/K", f"{attention_distribution_loss(q, k, q.flip(0), k, mask).item():.4f}", "> 0"),
        ("... with garbage at the padded positions",
         f"{attention_distribution_loss(q_pad, k, q.flip(0), k, mask).item():.4f}", "equal to the row above"),
        ("course-text MSE on attention probabilities (relation_style='mse')",
         f"{attention_mse_loss(q, k, q.flip(0), k, mask).item():.4f}", "> 0, a different scale"),
        ("course-text MSE on A·V (relation_style='mse')",
         f"{value_mse_loss(q, k, v, q.flip(0), k, v.flip(0), mask).item():.4f}", "> 0, a different scale"),
    ]
    return pd.DataFrame(rows, columns=["check", "value", "expected"])


def cross_arch_loss_checks():
    """Toy checks of the optional cross-architecture terms (MiniLMv2 relation heads, hidden-state MSE): a 64-wide
    teacher against a 32-wide student, so the head counts and widths differ."""
    import pandas as pd

    from kdlab.distillation.hidden import HiddenStateDistiller
    from kdlab.distillation.losses import value_relation_loss
    from kdlab.distillation.relations import relation_heads_loss, split_relation_heads

    g = torch.Generator().manual_seed(1)
    mask = torch.tensor([[1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1]])

    t_states = tuple(torch.randn(2, 6, 64, generator=g) for _ in range(3))  # teacher Q, K, V  [B, S, 64]
    s_states = tuple(torch.randn(2, 6, 32, generator=g) for _ in range(3))  # student Q, K, V  [B, S, 32]
    s_pad = tuple(x.clone() for x in s_states)
    for x in s_pad:
        x[0, 4:] = 100.0  # garbage in padded positions
    v_t = t_states[2]
    with torch.random.fork_rng(devices=[]):  # a fixed projection, without touching the caller's random state
        torch.manual_seed(0)
        distiller = HiddenStateDistiller(32, 64, [[1, 1]])
    h_s, h_t = torch.randn(2, 6, 32, generator=g), torch.randn(2, 6, 64, generator=g)
    hidden = distiller((h_s, h_s), (h_t, h_t), mask).item()
    rows = [
        ("relation heads, teacher 64 wide vs student 32 wide, 4 relation heads",
         relation_heads_loss(s_states, t_states, mask, 4).item(), "> 0"),
        ("... same with garbage in padding", relation_heads_loss(s_pad, t_states, mask, 4).item(),
         "equal to the line above"),
        ("relation heads V-V only, identical V, 4 heads = 4 relation heads",
         relation_heads_loss(t_states, t_states, mask, 4, ("vv",)).item(), "0"),
        ("|MiniLM value relation − relation heads V-V|, V vs flipped V, 4 heads each",
         abs(value_relation_loss(split_relation_heads(v_t, 4), split_relation_heads(v_t.flip(0), 4), mask).item()
             - relation_heads_loss(t_states, tuple(x.flip(0) for x in t_states), mask, 4, ("vv",)).item()),
         "0: with equal heads they are the same loss"),
        ("hidden-state MSE through a 32→64 projection", hidden, "> 0"),
    ]
    return pd.DataFrame(rows, columns=["check", "value", "expected"])


def loss_terms_table(history: list[dict], loss, last: int = 3):
    """The loss terms as training ended: each term's value (mean of the last ``last`` logging windows), its
    weight, the weighted value and its share of the total. Shows which term drives the objective.

    With an unlabelled transfer set the CE is the masked CE of ``kdlab.distillation.losses.masked_cross_entropy``:
    summed over the labelled rows and divided by the whole batch, so that a labelled sentence weighs the same
    whatever batch it lands in (its gradient is the all-labelled one). Its logged value is therefore the labelled
    rows' mean CE times their share of the batch; ``per_labelled_row`` undoes that (value / share, from the logged
    ``labelled_share``) for comparing the CE of the labelled sentences with the other terms."""
    import pandas as pd

    weights = {"ce": loss.alpha, "kd": loss.beta, "attention": loss.gamma, "value": loss.delta,
               "relation": loss.relation_weight, "hidden": loss.hidden_weight}
    logs = [h for h in history if "loss" in h and "eval_loss" not in h and "train_runtime" not in h][-last:]
    shares = [h["labelled_share"] for h in logs if "labelled_share" in h]
    share = float(np.mean(shares)) if shares else 1.0
    rows = []
    for term, weight in weights.items():
        values = [h[f"loss_{term}"] for h in logs if f"loss_{term}" in h]
        if values and weight > 0:
            value = float(np.mean(values))
            rows.append({"term": term, "value": value, "weight": weight, "weighted": weight * value,
                         "per_labelled_row": value / share if term == "ce" and share > 0 else value})
    table = pd.DataFrame(rows)
    if len(table):
        table["share_%"] = (100 * table["weighted"] / table["weighted"].sum()).round(1)
        if share >= 0.999:
            table = table.drop(columns="per_labelled_row")
    return table.round(4)


def loss_race_table(race: dict, verdict: dict):
    """02's loss race in numbers: per run (``RACE_LABELS``), the terms computed by your functions, the objective at
    the end (mean of the last three logged length groups), the dev accuracy with its Wilson 95% interval (from
    ``verdict``: ``kdlab.distillation.custom.race_verdict``) and whether the run was reused from disk."""
    import pandas as pd

    from kdlab.artifacts import read_json
    from kdlab.distillation.custom import RACE_LABELS
    from kdlab.distillation.training import RESULT_FILE

    rows = []
    for name, result in race.items():
        logs = [h["loss"] for h in result.history if "loss" in h and "eval_loss" not in h and "train_runtime" not in h]
        record_loss = (read_json(result.output_dir / RESULT_FILE) or {}).get("loss", {})
        r = verdict["runs"][name]
        rows.append({"run": RACE_LABELS.get(name, name),
                     "your functions": ", ".join(record_loss.get("student_functions", [])) or "—",
                     "final objective": float(np.mean(logs[-3:])) if logs else float("nan"),
                     "dev accuracy %": round(100 * r["accuracy"], 2),
                     "95% CI": f"[{100 * r['low']:.1f}, {100 * r['high']:.1f}]", "reused": bool(result.reused)})
    return pd.DataFrame(rows).round(4)


# --- comparisons -------------------------------------------------------------------------------------------------
def compare_models(cfg: KDConfig, teacher_metrics: dict, student_metrics: dict[str, dict], labels):
    """Accuracy table with 95% intervals, retention, and McNemar's paired test of each student against ``ce``
    (and ``minilm`` against ``hinton``). ``*_metrics`` come from ``lab.evaluate`` (with ``predictions``); the table
    is stored in results.json as ``comparison``."""
    from kdlab import lab
    from kdlab.metrics.classification import mcnemar
    from kdlab.report import accuracy_table

    res = lab.results(cfg)
    students = res.get("students") or {}
    for name, m in student_metrics.items():
        entry = {**students.get(name, {}), **lab.storable(m)}
        for other, key in (("ce", "ce"), ("hinton", "hinton")):
            if other in student_metrics and name != other and not (other == "hinton" and name != "minilm"):
                test = mcnemar(labels, m["predictions"], student_metrics[other]["predictions"])
                entry.update({f"mcnemar_vs_{key}_p": test["p_value"], f"right_only_vs_{key}": test["a_only"],
                              f"wrong_only_vs_{key}": test["b_only"]})
        students[name] = entry
    res.update(students=students, teacher={**(res.get("teacher") or {}), **lab.storable(teacher_metrics)})
    table = accuracy_table(res)
    lab.record(cfg, students=res["students"], teacher=res["teacher"], comparison=table.to_dict(orient="records"))
    return mark_table(table, "accuracy")


def students_table(results: dict):
    """The trained students of a run: how each started, its loss, dev accuracy with 95% interval, train time."""
    import pandas as pd

    rows = []
    for name, s in (results.get("students") or {}).items():
        rows.append({"student": name, "loss": s.get("variant", name), "init": s.get("student_init", "teacher"),
                     "accuracy_%": round(100 * s["accuracy"], 2),
                     "95% CI": f"[{100 * s['acc_low']:.1f}, {100 * s['acc_high']:.1f}]",
                     "train_s": round(s.get("train_seconds") or 0), "reused": bool(s.get("reused"))})
    return mark_table(pd.DataFrame(rows), "students")


BENCHMARK_COLUMNS = ["model", "precision", "batch", "p50_ms", "p95_ms", "p99_ms", "samples_per_s", "peak_mem_MB",
                     "memory_method", "disk_MB", "speedup_vs_teacher", "speedup_same_precision", "max_abs_diff", "status"]
REAL_LENGTH_COLUMNS = ["model", "precision", "batch", "seq", "p50_ms", "p95_ms", "samples_per_s",
                       "speedup_vs_teacher"]


def benchmark_table(rows, real_lengths: bool = False):
    """The latency table of 04-Benchmark (``benchmark_models`` rows, or their records in results.json): random
    inputs at seq 128 (``real_lengths=False``, 3 decimals) or SST-2's real lengths (2 decimals)."""
    import pandas as pd

    frame = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(list(rows or []))
    columns = REAL_LENGTH_COLUMNS if real_lengths else BENCHMARK_COLUMNS
    table = frame[[c for c in columns if c in frame.columns]].round(2 if real_lengths else 3)
    return mark_table(table, "benchmark_real_lengths" if real_lengths else "benchmark")


def side_by_side(models: dict, sentences: list[str], max_length: int = 128, names=None):
    """Each model's predicted label for the given sentences, and its probability (P(positive) for SST-2, the
    predicted class's probability with more classes)."""
    import pandas as pd

    from kdlab.metrics.classification import predict_proba

    names = display_class_names(next(iter(models.values()))[0] if models else None, names=names)
    table = pd.DataFrame({"sentence": sentences})
    for name, (model, tokenizer) in models.items():
        probs = predict_proba(model, tokenizer, sentences, max_length)
        table[f"{name}"] = [names[i] for i in probs.argmax(-1)]
        if probs.shape[1] == 2:
            table[f"{name} P({names[1]})"] = probs[:, 1].round(3)
        else:
            table[f"{name} P"] = probs.max(-1).round(3)
    return table


def disagreements(sentences, labels, teacher_pred, student_pred, limit: int = 5, names=None):
    """Where teacher and student disagree: counts of who is right (teacher / student / neither), and up to
    ``limit`` whole example sentences per answer of "who is right" (teacher first: the cases R3.3 asks about),
    each with its gold label and both predictions."""
    import pandas as pd

    labels, teacher_pred, student_pred = map(np.asarray, (labels, teacher_pred, student_pred))
    top = int(max(labels.max(initial=0), teacher_pred.max(initial=0), student_pred.max(initial=0))) + 1
    names = display_class_names(count=top, names=names)
    differ = np.flatnonzero(teacher_pred != student_pred)
    who = np.where(teacher_pred[differ] == labels[differ], "teacher",
                   np.where(student_pred[differ] == labels[differ], "student", "neither"))
    counts = pd.DataFrame([{"disagreements": int(differ.size),
                            **{f"{w} right": int((who == w).sum()) for w in ("teacher", "student", "neither")}}])
    shown = [i for w in ("teacher", "student", "neither") for i in differ[who == w][:limit]]
    right = dict(zip(differ.tolist(), who.tolist()))
    examples = pd.DataFrame({
        "sentence": [str(sentences[i]) for i in shown],
        "gold": [names[labels[i]] for i in shown],
        "teacher": [names[teacher_pred[i]] for i in shown],
        "student": [names[student_pred[i]] for i in shown],
        "who is right": [right[i] for i in shown],
    })
    return counts, examples
