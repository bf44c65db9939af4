"""The defects a hostile test found (issue: hardening), one test each: wrong or lost results, errors before long
work, clear messages, more than two classes."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from kdlab import lab
from kdlab.config import KDConfig, load_config
from kdlab.errors import KDLabError

ROOT = Path(__file__).resolve().parents[2]


class _Called(Exception):
    pass


def _refuse(*args, **kwargs):
    raise _Called("long work started")


# --- wrong or lost results ---------------------------------------------------------------------------------------
def test_configured_student_is_the_one_evaluated_before_training(tmp_path):
    """smoke-x loads its student on its own: 01 and 02's 'before' must use it, not a cut of the teacher."""
    from kdlab.models.student import count_parameters
    from kdlab.models.teacher import load_teacher

    cfg = lab.setup("smoke-x", runs_dir=str(tmp_path))
    student = lab.initial_student(cfg, load_teacher(cfg.teacher))
    assert count_parameters(student) == 23938  # the configured tiny-random:layers=2,hidden=32,heads=2 student
    assert student.config.hidden_size == 32 and student.config.num_hidden_layers == 2


def test_tuple_settings_survive_a_json_round_trip(tmp_path):
    cfg = load_config("smoke", runs_dir=str(tmp_path), layer_map=(0, 2), extra_student_layers=(1,))
    assert cfg.layer_map == [0, 2] and cfg.extra_student_layers == [1]
    assert KDConfig(**json.loads(json.dumps(cfg.to_dict()))) == cfg  # so a resumed run keeps its checkpoints


def test_resume_skips_a_damaged_newest_checkpoint(tmp_path, capsys):
    from kdlab.distillation.training import last_complete_checkpoint

    for step, damage in ((2, None), (4, "truncated"), (6, "weights")):
        folder = tmp_path / f"checkpoint-{step}"
        folder.mkdir()
        (folder / "trainer_state.json").write_text('{"global_step": 1' if damage == "truncated" else "{}")
        (folder / "optimizer.pt").write_bytes(b"o")
        if damage != "weights":
            (folder / "model.safetensors").write_bytes(b"w")
    assert last_complete_checkpoint(tmp_path) == str(tmp_path / "checkpoint-2")
    said = capsys.readouterr().out
    assert "checkpoint-6 cannot be resumed from (no model weights)" in said
    assert "checkpoint-4 cannot be resumed from (trainer_state.json is truncated" in said
    assert "resuming from checkpoint-2" in said
    assert (tmp_path / "damaged-checkpoint-6" / "optimizer.pt").is_file()  # kept, out of the Trainer's way
    assert not (tmp_path / "checkpoint-6").exists() and not (tmp_path / "checkpoint-4").exists()


def test_resumed_run_reports_the_total_training_time(tmp_path, monkeypatch, finetuned_teacher, tiny_tokenizer,
                                                     synthetic_data):
    from datasets import DatasetDict

    from kdlab.distillation.trainer import DistillationTrainer
    from kdlab.distillation.training import distill

    data = DatasetDict(train=synthetic_data["train"].select(range(128)),
                       validation=synthetic_data["validation"].select(range(32)))
    cfg = load_config("smoke", runs_dir=str(tmp_path), save_steps=2, logging_steps=1)
    original = DistillationTrainer.compute_loss

    def slow_then_cut(self, model, inputs, *args, **kwargs):
        if model.training:
            import time

            time.sleep(0.3)  # 0.3 s per step: 5 steps before the cut
            if self.state.global_step >= 5:
                raise _Called("power cut")
        return original(self, model, inputs, *args, **kwargs)

    monkeypatch.setattr(DistillationTrainer, "compute_loss", slow_then_cut)
    with pytest.raises(_Called):
        distill(cfg, finetuned_teacher, tiny_tokenizer, data, "ce")
    monkeypatch.undo()
    result = distill(cfg, finetuned_teacher, tiny_tokenizer, data, "ce")
    assert result.resumed_from and result.resumed_from.endswith("checkpoint-4")
    assert result.train_seconds >= 4 * 0.3  # the four steps saved before the cut are counted


def test_interrupted_saves_leave_no_orphans(tmp_path):
    from kdlab.artifacts import atomic_dir

    target = tmp_path / "students" / "minilm"
    orphan = tmp_path / "students" / ".minilm.abc123.tmp"
    orphan.mkdir(parents=True)
    (orphan / "model.safetensors").write_bytes(b"half")
    other = tmp_path / "students" / ".ce.zzz.tmp"
    other.mkdir()
    with atomic_dir(target) as tmp:
        (tmp / "x").write_text("1")
    assert not orphan.exists() and other.exists() and (target / "x").is_file()


# --- errors before long work, and clear ones ----------------------------------------------------------------------
def test_student_deeper_than_the_teacher_stops_before_the_teacher_finetune(tmp_path, monkeypatch):
    monkeypatch.setattr(lab, "finetune_teacher", _refuse)
    cfg = lab.setup("smoke", runs_dir=str(tmp_path), student_layers=9)
    with pytest.raises(KDLabError, match="1..4 layers, got 9"):
        lab.prepare_teacher(cfg)


def test_bad_layer_map_stops_before_the_teacher_finetune(tmp_path, monkeypatch):
    monkeypatch.setattr(lab, "finetune_teacher", _refuse)
    for layer_map, message in (([0], "1 entries for a 2-layer"), ([1, 1], "repeats"), ([0, 7], "outside")):
        cfg = lab.setup("smoke", runs_dir=str(tmp_path), layer_map=layer_map)
        with pytest.raises(KDLabError, match=message):
            lab.prepare_teacher(cfg)


def test_student_with_another_vocabulary_stops_before_the_teacher_finetune(tmp_path, monkeypatch):
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

    folder = tmp_path / "other-student"
    vocab = {t: i for i, t in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "film", "good", "bad"])}
    BertTokenizerFast(vocab=vocab).save_pretrained(folder)
    BertForSequenceClassification(BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=1,
                                             num_attention_heads=4, intermediate_size=64)).save_pretrained(folder)
    monkeypatch.setattr(lab, "finetune_teacher", _refuse)
    cfg = lab.setup("smoke", runs_dir=str(tmp_path), student=str(folder), student_layers=1)
    with pytest.raises(KDLabError, match="tokenizers differ.*vocabulary size"):
        lab.prepare_teacher(cfg)


def test_teacher_folder_with_a_foreign_tokenizer_is_refused_on_load(tmp_path, tiny_teacher):
    from transformers import BertTokenizerFast

    from kdlab.models.teacher import load_teacher

    big = {f"tok{i}": i for i in range(tiny_teacher.config.vocab_size + 20)}
    big.update({"[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3, "[MASK]": 4})
    tiny_teacher.save_pretrained(tmp_path / "t")
    BertTokenizerFast(vocab=big).save_pretrained(tmp_path / "t")
    with pytest.raises(KDLabError, match="tokenizer has .* tokens but the model's embeddings only"):
        load_teacher(str(tmp_path / "t"))


def test_missing_local_teacher_folder_is_named_not_sent_to_the_hub(tmp_path):
    from kdlab.models.teacher import load_teacher

    with pytest.raises(KDLabError, match="does not exist"):
        load_teacher(str(tmp_path / "no" / "such" / "teacher"))
    with pytest.raises(KDLabError, match="does not exist"):
        load_teacher("./runs/nothing-here")


def test_every_missing_hub_resource_is_reported_at_once(tmp_path, monkeypatch):
    import kdlab.distillation.preflight as preflight

    monkeypatch.setattr(preflight, "hub_reachable", lambda timeout=5.0: False)
    cfg = load_config("smoke", runs_dir=str(tmp_path), teacher="someone/teacher-not-cached", data="hub",
                      student="someone/student-not-cached", student_layers=2)
    with pytest.raises(KDLabError) as err:
        preflight.check_hub(cfg)
    message = str(err.value)
    for name in ("someone/teacher-not-cached", "someone/student-not-cached", "nyu-mll/glue", "KDLAB_DATA_DIR"):
        assert name in message


def test_pickle_teacher_is_refused(tmp_path, tiny_teacher, tiny_tokenizer):
    import torch

    from kdlab.models.teacher import load_teacher

    folder = tmp_path / "pickled"
    tiny_teacher.save_pretrained(folder)
    tiny_tokenizer.save_pretrained(folder)
    torch.save(tiny_teacher.state_dict(), folder / "pytorch_model.bin")  # an old-style pickle checkpoint
    (folder / "model.safetensors").unlink()
    with pytest.raises(KDLabError, match="safetensors"):
        load_teacher(str(folder))


@pytest.mark.parametrize("content, message", [
    ("", "is empty"), ('{"teacher": {"accur', "not valid JSON"), ("null", "holds NoneType"),
    ("[1, 2]", "holds list"), ("{}", "no results yet")])
def test_report_explains_bad_results_files(tmp_path, content, message):
    (tmp_path / "results.json").write_text(content)
    for target in (tmp_path, tmp_path / "results.json"):  # the run folder or the file itself
        proc = subprocess.run([sys.executable, "-m", "kdlab", "report", str(target)], capture_output=True, text=True)
        assert proc.returncode == 2 and message in proc.stderr and "Traceback" not in proc.stderr


def test_report_of_a_partial_run_does_not_crash(tmp_path):
    (tmp_path / "results.json").write_text(json.dumps({
        "teacher": {"accuracy": 0.9}, "students": {"minilm": {"accuracy": 0.88}, "ce": "?"},
        "benchmark": [{"model": "student-3L"}], "wall_seconds": "soon"}))
    proc = subprocess.run([sys.executable, "-m", "kdlab", "report", str(tmp_path)], capture_output=True, text=True)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr


def test_wrong_types_are_explained_not_type_errors(tmp_path):
    for field, value in (("num_epochs", "abc"), ("batch_size", 2.5), ("fp16", "yes"), ("layer_map", [0, "a"])):
        with pytest.raises(KDLabError, match=field):
            load_config("smoke", runs_dir=str(tmp_path), **{field: value})


def test_environment_errors_name_the_variable(monkeypatch):
    monkeypatch.setenv("KDLAB_EPOCHS", "three")
    with pytest.raises(KDLabError, match="KDLAB_EPOCHS='three'"):
        load_config("smoke")


def test_help_lists_every_profile():
    from kdlab.config import PROFILES

    proc = subprocess.run([sys.executable, "-m", "kdlab", "run", "--help"], capture_output=True, text=True)
    for profile in PROFILES:
        assert profile in proc.stdout


def test_tsv_with_a_byte_order_mark_is_read(tmp_path):
    from kdlab.data.loading import load_sst2

    for name in ("train.tsv", "dev.tsv"):
        (tmp_path / name).write_text("\ufeffsentence\tlabel\ngood film\t1\nbad film\t0\n", encoding="utf-8")
    assert len(load_sst2(str(tmp_path))["train"]) == 2


def test_save_to_disk_with_text_labels_gets_a_clear_error(tmp_path):
    from datasets import Dataset, DatasetDict

    from kdlab.data.loading import load_sst2

    DatasetDict(train=Dataset.from_dict({"sentence": ["a", "b"], "label": ["pos", "neg"]}),
                validation=Dataset.from_dict({"sentence": ["c"], "label": ["pos"]})).save_to_disk(str(tmp_path / "d"))
    with pytest.raises(KDLabError, match="class_encode_column"):
        load_sst2(str(tmp_path / "d"))


def test_max_train_samples_from_the_environment_caps_the_teacher_too(monkeypatch):
    monkeypatch.setenv("KDLAB_MAX_TRAIN_SAMPLES", "100")
    assert load_config("cpu").teacher_train_samples == 100
    monkeypatch.setenv("KDLAB_TEACHER_TRAIN_SAMPLES", "300")
    cfg = load_config("cpu")
    assert (cfg.max_train_samples, cfg.teacher_train_samples) == (100, 300)
    monkeypatch.setenv("KDLAB_MAX_TRAIN_SAMPLES", "40000")  # above the profile's 16k: nothing to scale
    assert load_config("cpu").labelled_train_samples == 4000


# --- more than two classes ---------------------------------------------------------------------------------------
def test_a_four_class_dataset_runs_through_the_lab(tmp_path):
    from kdlab import tables
    from kdlab.data.sources import label_names
    from kdlab.metrics.classification import confusion

    words = {"awful": "very negative", "dull": "negative", "good": "positive", "brilliant": "very positive"}
    rows = [f"the film is {w}\t{label}" for w, label in words.items()]
    folder = tmp_path / "four"
    folder.mkdir()
    (folder / "train.tsv").write_text("sentence\tlabel\n" + "\n".join(rows * 40) + "\n")
    (folder / "dev.tsv").write_text("sentence\tlabel\n" + "\n".join(rows * 4) + "\n")
    cfg = lab.setup("smoke", runs_dir=str(tmp_path / "runs"), data=str(folder), max_train_samples=160,
                    teacher_train_samples=160, max_eval_samples=16, teacher_epochs=2.0, num_epochs=1.0)
    data = lab.load_data(cfg)
    names = label_names(data["validation"])
    assert names == sorted(words.values())  # text labels, in a recorded (sorted) order
    teacher = lab.prepare_teacher(cfg)
    assert teacher.model.config.num_labels == 4
    assert teacher.model.config.id2label[0] == names[0]
    result = lab.train_variant(cfg, teacher, data, "minilm")
    assert result.model.config.num_labels == 4 and 0 <= result.metrics["accuracy"] <= 1
    m = lab.evaluate(cfg, result.model, teacher.tokenizer, data)
    assert m["f1"] == m["f1_macro"]  # more than two classes: macro F1
    assert confusion(data["validation"]["label"], m["predictions"], 4).shape == (4, 4)
    table = tables.side_by_side({"student": (result.model, teacher.tokenizer)}, ["the film is good"], names=names)
    assert table["student"].iloc[0] in names
    assert set(tables.data_summary(data).columns) >= set(names)
