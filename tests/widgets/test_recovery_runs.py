"""The editor's recovery folder: where a never-saved project's runs write their weights,
what a recovery copy records of the unsaved weights held, and holding them again after a
crash."""

from __future__ import annotations

import json
import subprocess
import sys

import torch
from PySide6.QtWidgets import QMessageBox

from app.engine.compiler import compile_graph
from app.engine.session.commands import SetSetting
from app.engine.weights import save_weights
from app.widgets import recovery
from app.widgets.main_window import MainWindow


def test_a_never_saved_projects_runs_write_to_the_recovery_folder(lenet):
    assert lenet.doc.project.path is None  # an example opens unsaved
    target = lenet.doc.weights.run_target()
    assert target.parent == recovery.recovery_dir() and target.name.startswith("unsaved-")


def test_the_recovery_copy_names_the_unsaved_weights_held(lenet, tmp_path):
    torch.manual_seed(0)
    imported = save_weights(compile_graph(lenet.doc.graph, lenet.doc.analysis), tmp_path / "imported.safetensors")
    assert lenet.training.adopt_weights(imported, "imported")
    lenet.editor.set_params("conv1", {"out_channels": 9, "kernel_size": 5})
    assert lenet.autosaver.save_now()
    meta = json.loads(lenet.autosaver.meta.read_text("utf-8"))
    assert meta["weights"] == str(imported) and meta["name"] == lenet.doc.project.name
    assert meta["original"] is None and isinstance(meta["pid"], int)
    lenet.doc.weights.reset()  # none held: none recorded
    assert lenet.autosaver.save_now()
    assert "weights" not in json.loads(lenet.autosaver.meta.read_text("utf-8"))
    lenet.autosaver.discard()
    assert not lenet.autosaver.file.exists() and recovery.pending_recoveries() == []


def _crashed(window) -> None:
    """As if the process that wrote the window's recovery copy had crashed."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()  # reaped: its id names no process now
    meta = json.loads(window.autosaver.meta.read_text("utf-8"))
    meta["pid"] = child.pid
    window.autosaver.meta.write_text(json.dumps(meta), "utf-8")


def test_a_recovered_project_holds_its_unsaved_weights_again(qtbot, lenet, tmp_path, monkeypatch):
    torch.manual_seed(0)
    trained = save_weights(compile_graph(lenet.doc.graph, lenet.doc.analysis), tmp_path / "unsaved-1.safetensors")
    assert lenet.training.adopt_weights(trained, "trained")
    lenet.doc.push(SetSetting(lenet.doc.model, "training", "epochs", 7))  # unsaved; the weights still fit
    assert lenet.autosaver.save_now()
    _crashed(lenet)
    fresh = MainWindow(settings=lenet.settings)
    qtbot.addWidget(fresh, before_close_func=lambda w: w.doc.history.set_clean())
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.Yes)
    fresh.offer_recoveries()
    assert fresh.doc.project.training["epochs"] == 7 and fresh.isWindowModified()
    assert fresh.doc.weights.file == trained and fresh.doc.weights.unsaved_file == trained
    assert fresh.training.local_model is not None  # the views show them
    assert "Trained weights recovered." in fresh.training.status.text()
    assert recovery.pending_recoveries() == []


def test_a_recovery_whose_weights_are_gone_opens_without_weights(qtbot, lenet, tmp_path, monkeypatch):
    gone = save_weights(compile_graph(lenet.doc.graph, lenet.doc.analysis), tmp_path / "unsaved-2.safetensors")
    assert lenet.training.adopt_weights(gone, "trained")
    lenet.doc.push(SetSetting(lenet.doc.model, "training", "epochs", 7))
    assert lenet.autosaver.save_now()
    _crashed(lenet)
    gone.unlink()  # pruned with the other unsaved weights
    fresh = MainWindow(settings=lenet.settings)
    qtbot.addWidget(fresh, before_close_func=lambda w: w.doc.history.set_clean())
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.Yes)
    fresh.offer_recoveries()
    assert fresh.doc.project.training["epochs"] == 7 and fresh.isWindowModified()
    assert fresh.doc.weights.file is None and fresh.training.local_model is None
    assert "recovered" not in fresh.training.status.text()
