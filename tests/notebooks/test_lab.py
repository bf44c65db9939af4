"""The notebooks' steps: setup, preparing and reusing the teacher, clear stops when a step is missing."""

import json

import numpy as np
import pytest
import torch

from kdlab import lab
from kdlab.config import KDConfig
from kdlab.errors import KDLabError

QUICK = dict(max_train_samples=64, teacher_train_samples=64, max_eval_samples=32, teacher_epochs=1.0)


class _Called(Exception):
    pass


def _refuse(*args, **kwargs):
    raise _Called("finetune_teacher was called")


def _logits(model, tokenizer):
    batch = tokenizer(["the film is good", "a dull , boring movie"], padding=True, return_tensors="pt")
    with torch.no_grad():
        return model(**batch).logits


def test_setup_writes_config(tmp_path):
    cfg = lab.setup("smoke", runs_dir=str(tmp_path), alpha=0.2)
    path = tmp_path / "smoke" / "config.json"
    assert path.is_file()
    assert json.loads(path.read_text())["alpha"] == 0.2
    assert KDConfig.load(path) == cfg
    assert torch.get_num_threads() == 2  # the smoke profile pins 2 threads


def test_setup_rejects_bad_config(tmp_path):
    with pytest.raises(KDLabError):
        lab.setup("smoke", runs_dir=str(tmp_path), temperature=0)
    assert not (tmp_path / "smoke" / "config.json").exists()


def test_prepare_teacher_finetunes_once_then_reuses(tmp_path, monkeypatch):
    cfg = lab.setup("smoke", runs_dir=str(tmp_path), **QUICK)
    with pytest.raises(KDLabError, match="01-Setup"):
        lab.lab_teacher(cfg)  # nothing prepared yet

    first = lab.prepare_teacher(cfg)
    folder = lab.teacher_dir(cfg)
    assert first.needs_finetune is False
    assert {"model.safetensors", "config.json", "kdlab.json"} <= {p.name for p in folder.iterdir()}
    stored = lab.results(cfg)["teacher_finetune"]
    assert stored["train_samples"] == 64 and stored["metrics"]["n"] == 32
    weights_mtime = (folder / "model.safetensors").stat().st_mtime_ns
    expected = _logits(first.model, first.tokenizer)

    monkeypatch.setattr(lab, "finetune_teacher", _refuse)
    second = lab.prepare_teacher(cfg)  # reused, not trained again
    assert second.needs_finetune is False
    assert (folder / "model.safetensors").stat().st_mtime_ns == weights_mtime
    torch.testing.assert_close(_logits(second.model, second.tokenizer), expected, rtol=0, atol=1e-6)
    third = lab.lab_teacher(cfg)
    torch.testing.assert_close(_logits(third.model, third.tokenizer), expected, rtol=0, atol=1e-6)

    # a setting that changes what the teacher is means training it again; so does force=True
    changed = lab.setup("smoke", runs_dir=str(tmp_path), **{**QUICK, "teacher_epochs": 2.0})
    with pytest.raises(_Called):
        lab.prepare_teacher(changed)
    with pytest.raises(KDLabError, match="01-Setup"):
        lab.lab_teacher(changed)
    with pytest.raises(_Called):
        lab.prepare_teacher(cfg, force=True)


def test_lab_teacher_without_finetuning(tmp_path):
    cfg = lab.setup("smoke", runs_dir=str(tmp_path), teacher_finetune="no")
    teacher = lab.lab_teacher(cfg)
    assert teacher.needs_finetune is True and teacher.source == "tiny-random"


def test_load_student_missing_names_02_distill(tmp_path):
    cfg = lab.setup("smoke", runs_dir=str(tmp_path))
    assert lab.trained_variants(cfg) == []
    with pytest.raises(KDLabError, match="02-Distill"):
        lab.load_student(cfg, "minilm")


def test_load_student_reads_saved_folder(tmp_path, tiny_teacher, tiny_tokenizer):
    cfg = lab.setup("smoke", runs_dir=str(tmp_path))
    folder = lab.student_dir(cfg, "hinton")
    tiny_teacher.save_pretrained(folder)
    tiny_tokenizer.save_pretrained(folder)
    (folder / "kdlab.json").write_text(json.dumps({"name": "hinton", "metrics": {"accuracy": 0.75},
                                                   "config": cfg.to_dict()}))
    model, tokenizer, record = lab.load_student(cfg, "hinton")
    assert record["metrics"]["accuracy"] == 0.75
    torch.testing.assert_close(_logits(model, tokenizer), _logits(tiny_teacher, tiny_tokenizer), rtol=0, atol=1e-6)
    assert lab.trained_variants(cfg) == ["hinton"]


def test_students_of_other_settings_are_refused_naming_the_difference(tmp_path, tiny_teacher, tiny_tokenizer):
    """03/04 must not silently reuse students trained before 01 was re-run with new settings."""
    old = lab.setup("smoke", runs_dir=str(tmp_path), temperature=4.0)
    folder = lab.student_dir(old, "minilm")
    tiny_teacher.save_pretrained(folder)
    tiny_tokenizer.save_pretrained(folder)
    (folder / "kdlab.json").write_text(json.dumps({"metrics": {}, "config": old.to_dict()}))
    new = lab.setup("smoke", runs_dir=str(tmp_path), temperature=8.0, bench_repeats=2)
    with pytest.raises(KDLabError, match=r"temperature: trained with 4\.0, now 8\.0") as err:
        lab.load_student(new, "minilm")
    assert "bench_repeats" not in str(err.value)  # timing settings do not change a student
    assert lab.load_student(new, "minilm", allow_other_settings=True)[2]["config"]["temperature"] == 4.0


def test_student_subset_of_teacher_sentences(tmp_path):
    folder = tmp_path / "sst2"
    folder.mkdir()
    rows = "".join(f"sentence number {i}\t{i % 2}\n" for i in range(30))
    (folder / "train.tsv").write_text("sentence\tlabel\n" + rows)
    (folder / "dev.tsv").write_text("sentence\tlabel\n" + rows[:200])
    cfg = lab.setup("smoke", runs_dir=str(tmp_path), data=str(folder), max_train_samples=6,
                    teacher_train_samples=15)
    students = lab.load_data(cfg)["train"]["sentence"]
    teachers = lab.load_data(cfg, for_teacher=True)["train"]["sentence"]
    assert (len(students), len(teachers)) == (6, 15)
    assert set(students) <= set(teachers)
    assert students != [f"sentence number {i}" for i in range(6)]  # a seeded shuffle, not the file's head


def test_environment_report():
    info = lab.machine_info()
    assert info["torch"] == torch.__version__
    assert info["cuda"] == torch.cuda.is_available()
    if torch.cuda.is_available():
        assert info["device"] == torch.cuda.get_device_name(0) and info["gpu_memory_GiB"] > 0
        assert info["fp16"] is (torch.cuda.get_device_capability(0)[0] >= 6)
        assert info["bf16"] is torch.cuda.is_bf16_supported(including_emulation=False)
    else:
        assert (info["fp16"], info["bf16"], info["device"]) == (False, False, "cpu")



def test_sweep_trains_experiments_under_their_tag_and_reuses_them(tmp_path, monkeypatch):
    """The challenges' sweeps: each setting is its own experiment, never the lab's students, and not retrained."""
    from kdlab import plots

    cfg = lab.setup("smoke", runs_dir=str(tmp_path), **QUICK, num_epochs=1.0)
    teacher = lab.prepare_teacher(cfg)
    data = lab.load_data(cfg)
    settings = {f"T={t:g}": {"temperature": t} for t in (1.0, 8.0)}
    table = lab.sweep(cfg, teacher, data, "hinton", settings, tag="temperature")
    assert list(table["name"]) == ["T=1", "T=8"] and not table["reused"].any()
    assert (lab.student_dir(cfg, "T=8", "temperature") / "kdlab.json").is_file()
    assert lab.trained_variants(cfg) == []  # the lab's own students are untouched
    assert set(lab.results(cfg)["experiments"]["temperature"]) == {"T=1", "T=8"}
    monkeypatch.setattr("kdlab.distillation.training.distill", _refuse)
    again = lab.sweep(cfg, teacher, data, "hinton", settings, tag="temperature")
    assert again["reused"].all() and list(again["accuracy_%"]) == list(table["accuracy_%"])
    assert lab.histories(cfg, tag="temperature")["T=1"]
    assert plots.sweep_plot(table, "temperature") is not None


def test_seed_runs_add_seeds_to_the_labs_students(tmp_path):
    cfg = lab.setup("smoke", runs_dir=str(tmp_path), **QUICK, num_epochs=1.0, num_seeds=2)
    teacher = lab.prepare_teacher(cfg)
    data = lab.load_data(cfg)
    lab.train_variant(cfg, teacher, data, "ce")
    rows = lab.seed_runs(cfg, teacher, data, names=("ce",))
    assert [(r["variant"], r["seed"]) for r in rows] == [("ce", 42), ("ce", 43)]
    assert (cfg.run_dir() / "seeds" / "seed-43" / "ce" / "kdlab.json").is_file()
    again = lab.seed_runs(cfg, teacher, data, names=("ce",), train=False)  # 03 reads them without training
    assert [r["accuracy"] for r in again] == [r["accuracy"] for r in rows]


def test_the_time_estimate_scales_the_reference_run_by_this_machines_step_time(tmp_path, monkeypatch):
    import json

    from kdlab.course import reference

    timing = {"cpu": {"machine": "ref box", "date": "2026-12-02", "step_seconds": 0.2, "teacher_finetune_seconds": 300,
                      "notebook_seconds": {"01-Setup.ipynb": 420, "02-Distill.ipynb": 960, "03-Inference.ipynb": 60,
                                           "04-Benchmark.ipynb": 120}, "total_seconds": 1560}}
    path = tmp_path / "lab_timing.json"
    path.write_text(json.dumps(timing))
    monkeypatch.setattr(reference, "TIMING_FILE", path)
    cfg = lab.setup("cpu", runs_dir=str(tmp_path / "runs"))
    found = lab.time_estimate(cfg, seconds=0.4)  # a machine twice as slow
    assert found["ratio"] == 2.0
    assert found["notebooks"]["02-Distill.ipynb"] == (0.75 * 32, 1.25 * 32)
    assert lab.time_estimate(cfg, seconds=0.4, teacher_saved=True)["notebooks"]["01-Setup.ipynb"][1] == 1.25 * 4
    text = lab.describe_estimate(found)
    assert "2.00× the reference (ref box" in text and "expect about 39–65 min" in text
    assert lab.time_estimate(lab.setup("smoke", runs_dir=str(tmp_path / "r2")), seconds=1.0) is None


def test_the_calibration_times_a_training_step_of_the_profile_shapes(tmp_path):
    from kdlab.measurement.calibration import step_seconds

    assert 0 < step_seconds(lab.setup("smoke", runs_dir=str(tmp_path)), steps=2) < 30


def test_the_loss_race_trains_your_loss_beside_kdlabs_on_the_same_batches(tmp_path, monkeypatch):
    """02's loop closed: a student trained with the student's own (here: T²-less) kd_loss, beside kdlab's, from the
    same start and batches; a stub still raising NotImplementedError is left to kdlab."""
    import torch.nn.functional as F

    from kdlab import tables

    from kdlab.distillation.custom import race_verdict
    from kdlab.distillation.trainer import length_group_steps

    cfg = lab.setup("smoke", runs_dir=str(tmp_path), race_sentences=256)
    teacher = lab.prepare_teacher(cfg)
    data = lab.load_data(cfg)

    def no_t_squared(student_logits, teacher_logits, T):
        return F.kl_div(F.log_softmax(student_logits / T, -1), F.softmax(teacher_logits.detach() / T, -1),
                        reduction="batchmean")

    def stub(*args):
        raise NotImplementedError()

    race = lab.loss_race(cfg, teacher, data, kd_loss=no_t_squared, attention_kl=stub)
    assert set(race) == {"kdlab", "yours"}
    kd = {name: [h["loss_kd"] for h in r.history if "loss_kd" in h] for name, r in race.items()}
    assert len(kd["kdlab"]) == len(kd["yours"])  # the same steps
    ratio = kd["kdlab"][0] / kd["yours"][0]  # the first window: same weights, same batch
    assert ratio == pytest.approx(cfg.temperature ** 2, rel=0.05)  # the missing T², visible in the log
    # one logged window per length group (after the first step): no sawtooth
    group = length_group_steps(len(lab.race_data(cfg, data)["train"]), cfg.batch_size)
    logged = [h["step"] for h in race["kdlab"].history if "loss" in h and "train_runtime" not in h]
    assert group > 1 and set(np.diff(logged[1:])) == {group}
    verdict = race_verdict(race, data["validation"]["label"])
    table = tables.loss_race_table(race, verdict).set_index("run")
    assert table.loc["your loss", "your functions"] == "kd_loss" and table.loc["kdlab's loss", "your functions"] == "—"
    assert "train_s" not in table and not table["reused"].any()
    again = lab.loss_race(cfg, teacher, data, kd_loss=no_t_squared, attention_kl=stub)  # a re-run reuses both
    assert again["kdlab"].reused and again["yours"].reused
    assert list(again["yours"].predictions) == list(race["yours"].predictions)
    assert set(lab.loss_race(cfg, teacher, data, kd_loss=stub)) == {"kdlab"}  # nothing attempted: kdlab's alone


def test_a_student_id_gives_its_students_their_own_seed_and_later_notebooks_read_it_back(tmp_path, monkeypatch):
    from kdlab.config import seed_for_student

    a = lab.setup("smoke", runs_dir=str(tmp_path / "a"), student_id="Alice ")
    b = lab.setup("smoke", runs_dir=str(tmp_path / "b"), student_id="bob")
    assert a.seed == b.seed == 42  # the class's data and teacher stay shared
    assert a.student_seed == seed_for_student("alice") != b.student_seed
    assert a.for_students().seed == a.student_seed and a.for_students().student_seed is None
    assert lab.setup("smoke", runs_dir=str(tmp_path / "a"), student_id=None).student_id == "Alice "  # 02–04
    monkeypatch.setenv("KDLAB_STUDENT_ID", "carol")
    assert lab.setup("smoke", runs_dir=str(tmp_path / "c"), student_id=None).student_seed == seed_for_student("carol")


def test_run_estimate_only_prints_the_estimate_and_trains_nothing(tmp_path, monkeypatch, capsys):
    import json

    from kdlab import cli
    from kdlab.course import reference

    timing = {"smoke": {"machine": "ref box", "date": "2026-12-02", "step_seconds": 0.01, "teacher_finetune_seconds": 5,
                        "notebook_seconds": {name: 30 for name in cli.NOTEBOOKS}, "total_seconds": 120}}
    path = tmp_path / "lab_timing.json"
    path.write_text(json.dumps(timing))
    monkeypatch.setenv("KDLAB_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setattr(reference, "TIMING_FILE", tmp_path / "none.json")
    assert cli.main(["run", "--profile", "smoke", "--estimate-only"]) == 1
    assert "no timed reference run for this profile" in capsys.readouterr().out
    monkeypatch.setattr(reference, "TIMING_FILE", path)
    assert cli.main(["run", "--profile", "smoke", "--estimate-only"]) == 0
    assert "the reference (ref box" in capsys.readouterr().out
    assert not (tmp_path / "runs" / "smoke" / "results.json").exists()  # nothing trained, nothing recorded
