"""Issue 34 item 6: every setting that takes "a Hub id or a local folder" (teacher, student, data, runs) is decided
once (``kdlab.data.locations.locate``), before any Hub lookup, and each local problem has its own message."""

import pytest

from kdlab.config import load_config
from kdlab.data.locations import locate
from kdlab.errors import KDLabError

MODEL_SETTINGS = ("teacher", "student")


@pytest.mark.parametrize("setting", ["teacher", "student", "data"])
def test_a_missing_folder_is_named_as_a_folder(setting, tmp_path):
    with pytest.raises(KDLabError, match="does not exist") as err:
        locate(str(tmp_path / "no" / "such"), setting)
    assert str(tmp_path / "no" / "such") in str(err.value)


@pytest.mark.parametrize("setting", ["teacher", "student", "data", "runs"])
def test_a_file_where_a_folder_belongs(setting, tmp_path):
    (tmp_path / "model.safetensors").write_bytes(b"x")
    with pytest.raises(KDLabError, match="is a file, not a folder"):
        locate(str(tmp_path / "model.safetensors"), setting)


@pytest.mark.parametrize("setting, needs", [("teacher", "config.json"), ("student", "config.json"),
                                            ("data", "train.tsv")])
def test_a_folder_without_what_the_setting_needs(setting, needs, tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(KDLabError, match=f"has no {needs}"):
        locate(str(tmp_path), setting)


def test_each_setting_accepts_what_it_should(tmp_path):
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "config.json").write_text("{}")
    (tmp_path / "d").mkdir()
    for name in ("train.tsv", "dev.tsv"):
        (tmp_path / "d" / name).write_text("sentence\tlabel\n")
    assert locate(str(tmp_path / "m"), "teacher").kind == "local"
    assert locate("someone/model", "student").kind == "hub"
    assert locate("minilm-l6", "teacher", ("minilm-l6",)).kind == "builtin"
    assert locate(str(tmp_path / "d"), "data").path == tmp_path / "d"
    assert locate(str(tmp_path / "not-yet"), "runs").kind == "local"  # a runs folder is made when missing
    with pytest.raises(KDLabError, match="neither an existing folder nor a Hub id"):
        locate("some folder with spaces", "teacher")


@pytest.mark.parametrize("variable, setting", [("KDLAB_TEACHER", "teacher"), ("KDLAB_DATA_DIR", "data")])
def test_a_mistyped_local_path_in_the_environment_never_reaches_the_hub(variable, setting, monkeypatch, tmp_path):
    """The regression: KDLAB_TEACHER=/some/missing/folder gave HFValidationError from the preflight's Hub-cache
    lookup (the Hub unreachable), not "does not exist"."""
    import kdlab.distillation.preflight as preflight

    monkeypatch.setattr(preflight, "hub_reachable", lambda timeout=5.0: False)
    monkeypatch.setenv(variable, "/some/missing/folder")
    cfg = load_config("smoke", runs_dir=str(tmp_path))
    with pytest.raises(KDLabError, match=f"{setting} folder /some/missing/folder does not exist"):
        preflight.check_hub(cfg)


def test_a_missing_student_folder_in_the_config_never_reaches_the_hub(monkeypatch, tmp_path):
    import kdlab.distillation.preflight as preflight

    monkeypatch.setattr(preflight, "hub_reachable", lambda timeout=5.0: False)
    cfg = load_config("smoke", runs_dir=str(tmp_path), student=str(tmp_path / "missing" / "student"))
    with pytest.raises(KDLabError, match="student folder .* does not exist"):
        preflight.check_hub(cfg)


def test_a_runs_setting_that_is_a_file_is_refused_before_work(monkeypatch, tmp_path):
    import kdlab.distillation.preflight as preflight

    (tmp_path / "runs").write_text("")
    cfg = load_config("smoke", runs_dir=str(tmp_path / "runs"))
    with pytest.raises(KDLabError, match="is a file, not a folder"):
        preflight.hub_resources(cfg)
