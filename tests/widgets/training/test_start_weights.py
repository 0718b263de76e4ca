"""What a run in the editor starts from: the weights the project holds (opened with it,
imported, or left by the last run), kept where they fit, or a fresh initialization."""

from __future__ import annotations

import shutil

import torch

from app.engine.compiler import compile_graph
from app.engine.examples import example_path, load_example
from app.engine.weights import save_weights

TIMEOUT = 90_000  # the child process imports torch before it trains


def open_saved_xor(window, tmp_path, fc2_bias=True):
    """The xor example saved in ``tmp_path`` with weights beside it (of a network whose fc2
    has no bias unless ``fc2_bias``), opened."""
    path = tmp_path / "xor.netcanvas.json"
    shutil.copy(example_path("xor"), path)
    network = load_example("xor")
    network.graph.nodes["fc2"].params["bias"] = fc2_bias
    torch.manual_seed(3)
    save_weights(compile_graph(network.graph), tmp_path / "xor.safetensors")
    assert window.open_file(path, ask=False)
    return window.training, tmp_path / "xor.safetensors"


def test_runs_start_from_the_weights_held_by_default_and_fresh_when_chosen(qtbot, window, tmp_path, monkeypatch):
    panel, weights = open_saved_xor(window, tmp_path)
    combo = panel.start_combo
    assert window.doc.weights.file == weights  # opened with the project
    assert combo.isEnabled() and combo.currentData() == "held"
    assert combo.currentText() == "the weights held (xor.safetensors)"
    qtbot.waitUntil(lambda: window.weights_label.text() == "from xor.safetensors: 2 kept")
    fc1 = window.doc.graph.nodes["fc1"]
    window.editor.set_params("fc1", {**fc1.params, "out_features": 16})  # both Linear layers change shape
    qtbot.waitUntil(lambda: window.weights_label.text() == "from xor.safetensors: 0 kept, 2 initialized")
    window.doc.history.undo()
    started = {}
    monkeypatch.setattr(panel.session, "start", lambda project, **options: started.update(options))
    panel.start()
    assert started["overrides"] == {"init_weights": str(weights.resolve())}
    panel.training_active.emit(False)
    combo.activated.emit(combo.findData("fresh"))  # as a user picks it
    assert window.doc.weights.start_from == "fresh"
    qtbot.waitUntil(lambda: not window.weights_label.isVisible())  # nothing to start from
    panel.start()
    assert started["overrides"] == {}
    panel.training_active.emit(False)


def test_a_real_run_says_which_nodes_start_from_the_weights_held(qtbot, window, tmp_path):
    # weights of a network whose fc2 has no bias: fc1 keeps them, fc2 is initialized
    panel, weights = open_saved_xor(window, tmp_path, fc2_bias=False)
    assert window.doc.weights.file is None  # they do not fit as a whole: not held...
    window.doc.weights.hold(weights)  # ...unless adopted, as an import's are after an edit
    panel.refresh_start()
    panel.training_form.fields["epochs"].editor.setValue(2)
    panel.ask_before_replacing = False  # the weights in place no longer fit: the run's are kept aside
    with qtbot.waitSignal(panel.session.ready, timeout=TIMEOUT) as ready:
        window.actions_by_name["train"].trigger()
    notes = " ".join(ready.args[0]["notes"])
    assert "1 node (fc1) starts from xor.safetensors" in notes and "1 node (fc2) initialized" in notes
    qtbot.waitUntil(lambda: not panel.session.running, timeout=TIMEOUT)
    assert window.doc.weights.file == weights  # kept: nobody was asked
