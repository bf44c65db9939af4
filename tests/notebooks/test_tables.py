"""Tables the notebooks show that read training logs: the loss terms' shares, with the masked CE's normalisation."""

import pytest

from kdlab.distillation.losses import DistillationLoss
from kdlab.tables import loss_terms_table


def test_the_ce_of_a_transfer_set_is_also_given_per_labelled_row():
    """Masked CE divides by the whole batch: with a quarter of the rows labelled its logged value is a quarter of the
    labelled rows' mean CE; the table says both."""
    loss = DistillationLoss.for_variant("minilm")
    history = [{"loss": 1.0, "loss_ce": 0.1, "loss_kd": 0.5, "loss_attention": 0.2, "loss_value": 0.3,
                "labelled_share": 0.25}] * 3
    table = loss_terms_table(history, loss).set_index("term")
    assert table.loc["ce", "value"] == pytest.approx(0.1) and table.loc["ce", "per_labelled_row"] == pytest.approx(0.4)
    assert table.loc["kd", "per_labelled_row"] == pytest.approx(0.5)  # the other terms use every row
    everyone = [{**h, "labelled_share": 1.0} for h in history]
    assert "per_labelled_row" not in loss_terms_table(everyone, loss).columns


def test_disagreements_show_whole_sentences_the_gold_label_and_who_is_right():
    """R3.3 asks for a sentence the student gets wrong and the teacher right: the table must show it whole, with
    its gold label and who is right (teacher / student / neither)."""
    from kdlab.tables import disagreements

    long = "the best that can be said about the work here is that it is competently made , and no more than that ."
    sentences = [long, "fine", "dull", "a mess", "ok"]
    labels, teacher, student = [0, 1, 0, 2, 1], [0, 1, 1, 1, 1], [1, 1, 0, 0, 1]
    counts, examples = disagreements(sentences, labels, teacher, student, names=["neg", "pos", "neutral"])
    assert counts.iloc[0].to_dict() == {"disagreements": 3, "teacher right": 1, "student right": 1,
                                        "neither right": 1}
    assert list(examples["who is right"]) == ["teacher", "student", "neither"]  # teacher-right first
    assert examples.iloc[0]["sentence"] == long and examples.iloc[0]["gold"] == "neg"
    assert examples.iloc[2][["gold", "teacher", "student"]].tolist() == ["neutral", "pos", "neg"]


def test_the_settings_table_shows_a_local_folder_by_its_name_and_the_transfer_set():
    """Finding 8: the settings table printed this machine's absolute data path; it shows the folder's name (any OS)."""
    from kdlab.config import load_config
    from kdlab.tables import settings_table

    for path in ("/work/shared/data/sst2", "~/data/sst2", "./data/sst2", "C:\\Users\\me\\data\\sst2"):
        table = settings_table(load_config("smoke", data=path))
        assert table.loc["data", "value"] == ".../sst2", path
    assert settings_table(load_config("cpu")).loc["data", "value"] == "hub"  # a source name, as it is
    rows = settings_table(load_config("cpu")).index
    assert any(row.startswith("transfer set") for row in rows)
