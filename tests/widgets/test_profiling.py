"""Run > Profile from the editor: the profile is measured in a child process and drawn on
the canvas; an edit clears it, a move does not. View > Live Nodes switches the glyphs."""

from __future__ import annotations

from PySide6.QtWidgets import QMessageBox

from app.engine.examples import example_path


def profiled(qtbot, window) -> None:
    window.actions_by_name["profile"].trigger()
    assert window.profiling.busy and "Profiling" in window.statusBar().currentMessage()
    qtbot.waitUntil(lambda: not window.profiling.busy, timeout=120_000)


def test_profile_from_the_menu_is_drawn_on_the_canvas_until_the_graph_changes(qtbot, window):
    assert window.open_file(example_path("xor"), example=True, ask=False)
    assert window.actions_by_name["profile"].shortcut().toString() == "Ctrl+Shift+P"
    profiled(qtbot, window)
    profile = window.profiling.profile
    assert profile is not None and {n["id"] for n in profile["nodes"]} == {"fc1", "tanh", "fc2", "sigmoid"}
    assert window.scene._heat.keys() == {"fc1", "tanh", "fc2", "sigmoid"}
    assert "slowest" in window.statusBar().currentMessage()

    window.doc.graph.move_node("fc1", (40.0, 90.0))
    assert window.profiling.profile is profile  # a move changes nothing measured

    window.profiling.set_metric("flops")
    shares = window.scene._heat
    assert shares["fc1"].share > shares["tanh"].share  # a Linear has FLOPs, an element-wise tanh hardly any
    assert "FLOP" in shares["fc1"].figure and "%" in shares["fc1"].figure

    window.editor.set_params("fc1", {"out_features": 16})
    assert window.profiling.profile is None and not window.scene._heat
    assert "cleared" in window.statusBar().currentMessage()


def test_a_graph_with_errors_is_not_profiled_and_says_why(qtbot, window, monkeypatch):
    shown = []
    monkeypatch.setattr(window, "show_error", lambda title, text: shown.append((title, text)))
    assert window.open_file(example_path("xor"), example=True, ask=False)
    window.doc.graph.remove_edge(window.doc.graph.edges[0])  # fc1, after the Input, has no input now
    profiled(qtbot, window)
    assert window.profiling.profile is None
    assert shown and shown[0][0] == "Cannot profile" and "fc1" in shown[0][1]
    assert not [b for b in window.findChildren(QMessageBox) if b.isVisible()]


def test_live_nodes_follow_the_view_menu(qtbot, window):
    action = window.actions_by_name["live_nodes"]
    assert action.isCheckable() and not action.isChecked()
    action.trigger()
    assert window.scene.live_nodes and window.training.live_nodes and action.isChecked()
    action.trigger()
    assert not window.scene.live_nodes and not window.training.live_nodes


def test_a_change_of_the_training_settings_clears_the_profile_but_not_of_the_dataset(qtbot, window):
    assert window.open_file(example_path("xor"), example=True, ask=False)
    profiled(qtbot, window)
    assert window.profiling.profile is not None
    window.doc.set_section("dataset", dict(window.doc.project.dataset))
    assert window.profiling.profile is not None
    window.doc.set_section("training", {**window.doc.project.training, "batch_size": 4})
    assert window.profiling.profile is None and "training settings" in window.statusBar().currentMessage()
    edits = window.profiling._edits
    window.doc.graph.move_node("fc1", (10.0, 10.0))  # (a move after it is still no change)
    assert window.profiling._edits == edits
