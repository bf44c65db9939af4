"""Atomic files and folders: an interruption never leaves a half-written artifact where a good one was."""

import json
import os

import numpy as np
import pytest
import torch

from kdlab import artifacts
from kdlab.artifacts import atomic_dir, atomic_write_json, read_json, require, update_json
from kdlab.errors import KDLabError


def _leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_atomic_write_json(tmp_path):
    path = tmp_path / "a" / "b" / "result.json"
    data = {"acc": np.float32(0.5), "n": np.int64(872), "t": torch.tensor(2.0), "path": tmp_path, "name": "ü"}
    assert atomic_write_json(path, data) == path
    loaded = json.loads(path.read_text(encoding="utf-8"))
    assert loaded == {"acc": 0.5, "n": 872, "t": 2.0, "path": str(tmp_path), "name": "ü"}
    atomic_write_json(path, [1, 2])  # overwrite
    assert json.loads(path.read_text()) == [1, 2]
    assert _leftovers(path.parent) == []


def test_atomic_write_json_failure_keeps_old_file(tmp_path, monkeypatch):
    path = tmp_path / "result.json"
    atomic_write_json(path, {"good": True})
    with pytest.raises(TypeError):
        atomic_write_json(path, {"bad": object()})
    assert json.loads(path.read_text()) == {"good": True}

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(artifacts.os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        atomic_write_json(path, {"good": False})
    monkeypatch.undo()
    assert json.loads(path.read_text()) == {"good": True}
    assert _leftovers(tmp_path) == []


def test_atomic_dir_replaces_folder_whole(tmp_path):
    target = tmp_path / "students" / "minilm"
    target.mkdir(parents=True)
    (target / "old.bin").write_text("old")
    (target / "config.json").write_text("{}")
    with atomic_dir(target) as tmp:
        assert tmp != target and tmp.parent == target.parent
        (tmp / "config.json").write_text('{"new": 1}')
        (tmp / "model.safetensors").write_text("weights")
        assert (target / "old.bin").exists()  # the old folder stays until the body is done
    assert sorted(os.listdir(target)) == ["config.json", "model.safetensors"]
    assert (target / "config.json").read_text() == '{"new": 1}'
    assert _leftovers(target.parent) == []


def test_atomic_dir_new_folder(tmp_path):
    target = tmp_path / "fresh"
    with atomic_dir(target) as tmp:
        (tmp / "x.txt").write_text("x")
    assert (target / "x.txt").read_text() == "x"
    assert _leftovers(tmp_path) == []


def test_atomic_dir_error_leaves_previous_folder(tmp_path):
    target = tmp_path / "teacher"
    target.mkdir()
    (target / "model.safetensors").write_text("good weights")
    with pytest.raises(RuntimeError, match="interrupted"):
        with atomic_dir(target) as tmp:
            (tmp / "model.safetensors").write_text("half")
            raise RuntimeError("interrupted")
    assert os.listdir(target) == ["model.safetensors"]
    assert (target / "model.safetensors").read_text() == "good weights"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["teacher"]  # no temp folders behind


def test_atomic_dir_keyboard_interrupt_cleans_up(tmp_path):
    target = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        with atomic_dir(target) as tmp:
            (tmp / "a").write_text("a")
            raise KeyboardInterrupt
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []


def test_read_and_update_json(tmp_path):
    path = tmp_path / "results.json"
    assert read_json(path) is None
    assert read_json(path, default={}) == {}
    assert update_json(path, {"a": 1}) == {"a": 1}
    assert update_json(path, {"b": 2, "a": 3}) == {"a": 3, "b": 2}
    assert json.loads(path.read_text()) == {"a": 3, "b": 2}


def test_require(tmp_path):
    present = tmp_path / "kdlab.json"
    present.write_text("{}")
    assert require(present, "02-Distill.ipynb") == present
    missing = tmp_path / "students" / "ce" / "kdlab.json"
    with pytest.raises(KDLabError) as info:
        require(missing, "02-Distill.ipynb")
    assert "02-Distill.ipynb" in str(info.value)
    assert str(missing) in str(info.value)
