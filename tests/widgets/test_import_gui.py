"""Opening an .onnx file in the editor: a graph with its weights, unsaved until saved, and
a clear message for a file that cannot be imported."""

from __future__ import annotations

import numpy as np
import torch

from app.engine.examples import load_example
from app.engine.export.onnx_export import export_onnx
from app.engine.weights import read_weights


def test_open_an_onnx_model_then_save_it_with_its_weights(qtbot, window, tmp_path):
    project = load_example("lenet5")
    onnx_file = tmp_path / "lenet.onnx"
    export_onnx(project, onnx_file)
    assert window.open_file(str(onnx_file), ask=False)
    graph = window.doc.graph
    assert {"conv1", "conv2", "fc3"} <= set(graph.nodes) and window.doc.analysis.ok
    assert window.doc.analysis.total_params == 44_426
    assert window.doc.dirty and window.windowTitle().startswith("Untitled")
    panel = window.training
    assert window.doc.weights.file is not None and panel.local_model is not None
    assert panel.filters.current_layer() == "conv1"  # the imported kernels are on show
    target = tmp_path / "imported.netcanvas.json"
    assert window._save_to(target)
    beside = tmp_path / "imported.safetensors"
    assert beside.exists() and not window.doc.dirty
    saved = read_weights(beside)
    assert torch.equal(saved["conv1.weight"], panel.local_model.state_dict()["conv1.weight"])


def test_importing_after_another_network_does_not_reuse_its_sample(qtbot, window, tmp_path):
    from app.engine.examples import example_path

    assert window.open_file(example_path("lenet5"), example=True, ask=False)
    qtbot.waitUntil(lambda: window.training.sample is not None, timeout=30_000)  # a [1, 1, 28, 28] digit
    onnx_file = tmp_path / "xor.onnx"
    export_onnx(load_example("xor"), onnx_file)
    assert window.open_file(str(onnx_file), ask=False)
    assert window.training.local_model is not None and set(window.doc.graph.nodes) >= {"input", "fc1"}
    qtbot.waitUntil(lambda: window.training.dataset is not None, timeout=30_000)  # moons fit its Input
    assert window.training.dataset.name in ("moons", "xor")


def test_an_onnx_file_that_cannot_be_imported_says_why(qtbot, window, tmp_path):
    bad = tmp_path / "broken.onnx"
    bad.write_bytes(np.arange(100, dtype=np.uint8).tobytes())
    before = set(window.doc.graph.nodes)
    assert not window.open_file(str(bad), ask=False)
    assert "broken.onnx" in window.last_error and "Traceback" not in window.last_error
    assert set(window.doc.graph.nodes) == before
    window._error_box.close()


def test_opening_an_onnx_file_keeps_the_normalization_its_export_recorded(qtbot, window, tmp_path):
    import json

    from app.engine.compiler import compile_graph
    from app.engine.predict import read_metadata
    from app.engine.weights import save_weights

    project = load_example("xor")
    model = compile_graph(project.graph)
    meta = {"input_mean": "[0.5, -0.25]", "input_std": "[2.0, 4.0]", "input_shape": "[2]"}
    save_weights(model, tmp_path / "w.safetensors", meta)
    export_onnx(project, tmp_path / "xor.onnx", tmp_path / "w.safetensors")
    assert window.open_file(str(tmp_path / "xor.onnx"), ask=False)
    assert window._save_to(tmp_path / "imported.netcanvas.json")
    saved = read_metadata(tmp_path / "imported.safetensors")
    assert json.loads(saved["input_mean"]) == [0.5, -0.25] and json.loads(saved["input_std"]) == [2.0, 4.0]
    assert saved["onnx_file"] == "xor.onnx"
