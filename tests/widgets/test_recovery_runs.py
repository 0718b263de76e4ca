"""The editor's recovery folder: where a never-saved project's runs write their weights, and
what a recovery copy records of the unsaved weights held."""

from __future__ import annotations

import json

import torch

from app.engine.compiler import compile_graph
from app.engine.weights import save_weights
from app.widgets import recovery


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
