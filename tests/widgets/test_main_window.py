"""The main window as a user meets it: files, titles, prompts, recovery, first run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from PySide6.QtCore import QSettings, Qt
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QFileDialog, QMessageBox

from app.engine.examples import example_path, list_examples
from app.engine.project import load_project, project_to_dict
from app.widgets import recovery
from app.widgets.main_window import MainWindow


def test_first_run_example_opens_with_shapes(lenet):
    assert len(lenet.scene.nodes) == 13 and len(lenet.scene.edges) == 12
    assert "44,426" in lenet.params_label.text() and lenet.errors_label.text() == "no errors"
    assert lenet.windowTitle().startswith("Untitled[*] — LeNet-5 on digits")
    assert not lenet.isWindowModified()


def test_save_reopen_compare_equal(qtbot, lenet, tmp_path, monkeypatch):
    window = lenet
    window.editor.set_params("conv1", {"out_channels": 8, "kernel_size": 3})
    assert window.isWindowModified()
    target = tmp_path / "mine.netcanvas.json"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(target), ""))
    window.actions_by_name["save"].trigger()  # untitled: goes through Save As
    assert target.exists() and not window.isWindowModified()
    assert window.windowTitle().startswith("mine.netcanvas.json[*]")
    saved = project_to_dict(window.doc.project)
    other = MainWindow(settings=window.settings)
    qtbot.addWidget(other)
    assert other.open_file(target, ask=False)
    assert project_to_dict(other.doc.project) == saved
    assert other.doc.graph.nodes["conv1"].params == {"out_channels": 8, "kernel_size": 3}
    assert str(target.resolve()) in [a.text() for a in window.recent_menu.actions()]


def test_a_broken_file_shows_the_engine_message_and_keeps_the_editor(qtbot, lenet, tmp_path):
    window = lenet
    bad = tmp_path / "bad.netcanvas.json"
    doc = json.loads(example_path("lenet5").read_text())
    doc["graph"]["nodes"][1]["params"]["kernel_size"] = "five"
    bad.write_text(json.dumps(doc))
    assert not window.open_file(bad, ask=False)
    assert "conv1" in window.last_error and "kernel_size" in window.last_error
    assert "received \"five\"" in window.last_error and "Traceback" not in window.last_error
    assert window._error_box.isVisible()
    window._error_box.close()
    assert len(window.doc.graph.nodes) == 13  # the open document is untouched
    window.editor.set_params("conv1", {"out_channels": 6, "kernel_size": 3})
    assert window.doc.graph.nodes["conv1"].params["kernel_size"] == 3
    (tmp_path / "junk.netcanvas.json").write_bytes(b"\x00\xff garbage")
    assert not window.open_file(tmp_path / "junk.netcanvas.json", ask=False)
    assert "UTF-8" in window.last_error


def test_closing_with_unsaved_changes_asks(qtbot, lenet, monkeypatch):
    window = lenet
    window.editor.set_params("conv1", {"out_channels": 7, "kernel_size": 5})
    asked = []

    def answer(button):
        def question(*args, **kwargs):
            asked.append(args[2] if len(args) > 2 else "")
            return button
        return question

    monkeypatch.setattr(QMessageBox, "question", answer(QMessageBox.StandardButton.Cancel))
    window.close()
    assert window.isVisible() and asked and "LeNet-5" in asked[0]
    monkeypatch.setattr(QMessageBox, "question", answer(QMessageBox.StandardButton.Discard))
    window.close()
    assert not window.isVisible()


def test_examples_menu_lists_every_example(window):
    titles = [a.text() for a in window.examples_menu.actions()]
    assert titles == [e.title for e in list_examples()]
    window.examples_menu.actions()[titles.index("Small residual network (Add skip connections)")].trigger()
    assert "b1_add" in window.scene.nodes and window.doc.project.path is None


def test_autosave_and_recovery_after_a_crash(qtbot, lenet, tmp_path, monkeypatch):
    window = lenet
    assert not window.autosaver.save_now()  # nothing unsaved yet
    window.editor.set_params("conv1", {"out_channels": 9, "kernel_size": 5})
    assert window.autosaver.save_now()
    assert window.autosaver.file.exists()
    assert load_project(window.autosaver.file).graph.nodes["conv1"].params["out_channels"] == 9
    # the process "crashes": its meta names a pid that no longer runs
    meta = json.loads(window.autosaver.meta.read_text())
    meta["pid"] = _dead_pid()
    window.autosaver.meta.write_text(json.dumps(meta))
    found = recovery.pending_recoveries()
    assert len(found) == 1 and found[0].name == "LeNet-5 on digits"
    fresh = MainWindow(settings=window.settings)
    qtbot.addWidget(fresh, before_close_func=lambda w: w.doc.history.set_clean())
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.Yes)
    fresh.offer_recoveries()
    assert fresh.doc.graph.nodes["conv1"].params["out_channels"] == 9
    assert fresh.isWindowModified()
    assert recovery.pending_recoveries() == []


def _dead_pid() -> int:
    pid = 999_999
    while True:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return pid
        except PermissionError:
            pass
        pid -= 1


def test_clean_close_leaves_no_recovery_file(lenet):
    lenet.editor.set_params("conv1", {"out_channels": 9, "kernel_size": 5})
    assert lenet.autosaver.save_now()
    lenet.doc.history.set_clean()
    lenet.close()
    assert not lenet.autosaver.file.exists()


def test_window_layout_is_remembered(qtbot, window):
    window._docks["issues"].hide()
    window.doc.history.set_clean()
    window.close()
    again = MainWindow(settings=window.settings)
    qtbot.addWidget(again)
    again.show()
    assert not again._docks["issues"].isVisible() and again._docks["palette"].isVisible()


def test_palette_double_click_adds_below_the_selection_and_connects(qtbot, lenet):
    window = lenet
    window.scene.select_nodes(["fc3"])
    window.palette.layer_activated.emit("Softmax")
    new = window.scene.selected_node_ids()
    assert len(new) == 1 and window.doc.graph.nodes[new[0]].type == "Softmax"
    assert any(e.source == "fc3" and e.target == new[0] for e in window.doc.graph.edges)
    assert window.scene.nodes[new[0]].pos().y() > window.scene.nodes["fc3"].pos().y()
    assert window.doc.analysis.ok and window.doc.analysis.output == new[0]


def test_screenshot_command_renders_the_window(tmp_path):
    """An example by name, as the headless commands take it (`netcanvas resnet`)."""
    out = tmp_path / "shot.png"
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    env["XDG_CONFIG_HOME"] = str(tmp_path)
    env["XDG_DATA_HOME"] = str(tmp_path)
    proc = subprocess.run([sys.executable, "-m", "app", "resnet", "--screenshot", str(out),
                           "--size", "1000x700"], capture_output=True, text=True, timeout=120, env=env,
                          cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "no such file" not in proc.stderr
    image = QImage(str(out))
    assert (image.width(), image.height()) == (1000, 700)


def test_without_a_display_the_app_says_so_in_one_line(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    proc = subprocess.run([sys.executable, "-m", "app"], capture_output=True, text=True, timeout=60, env=env)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "no display" in proc.stderr and "netcanvas check" in proc.stderr


def test_opening_an_unreadable_path_from_the_command_line_fails_cleanly(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    env["QT_QPA_PLATFORM"] = "offscreen"
    proc = subprocess.run([sys.executable, "-m", "app", str(tmp_path / "missing.netcanvas.json"), "--screenshot",
                           str(tmp_path / "x.png")], capture_output=True, text=True, timeout=60, env=env)
    assert proc.returncode == 2 and "no such file" in proc.stderr and not Path(tmp_path / "x.png").exists()
    proc = subprocess.run([sys.executable, "-m", "app", "resnt", "--screenshot", str(tmp_path / "x.png")],
                          capture_output=True, text=True, timeout=60, env=env, cwd=tmp_path)
    assert proc.returncode == 2 and not Path(tmp_path / "x.png").exists()
    assert "resnt: no such file, and there is no example 'resnt'" in proc.stderr and "resnet" in proc.stderr


def test_settings_fixture_is_isolated(window, tmp_path):
    assert isinstance(window.settings, QSettings)
    assert str(tmp_path) in window.settings.fileName()


def test_discarding_changes_on_quit_ends_without_an_error(qtbot, tmp_path, monkeypatch):
    """Discard closes a window with unsaved changes, and nothing of the deleted document
    runs afterwards (Qt's undo stack once said "clean" again as it was destroyed, and a
    handler printed "RuntimeError: Signal source has been deleted" to the terminal)."""
    import gc

    from PySide6.QtCore import QCoreApplication, QEvent

    escaped = []
    monkeypatch.setattr(sys, "excepthook", lambda *info: escaped.append(info[1]))
    monkeypatch.setattr(sys, "unraisablehook", lambda info: escaped.append(info.exc_value))
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.Discard)
    window = MainWindow(settings=QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat))
    window.show()
    assert window.open_file(example_path("lenet5"), example=True, ask=False)
    window.editor.set_params("conv1", {"out_channels": 7, "kernel_size": 5})
    assert window.doc.dirty
    window.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)  # as the application's end deletes it
    assert window.close()
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    del window
    gc.collect()
    assert escaped == []


def test_the_parameter_count_with_errors_is_of_the_valid_part(lenet):
    window = lenet
    assert window.params_label.text() == "44,426 parameters"
    window.editor.set_params("fc3", {"out_features": 10, "bias": "no"})  # an error at the end
    assert not window.doc.analysis.ok
    counted = sum(window.doc.analysis.param_counts.values())
    assert counted > 40_000 and window.params_label.text() == f"≥ {counted:,} parameters"
    assert "cannot be counted" in window.params_label.toolTip()
    window.editor.set_params("conv1", {"out_channels": 6, "kernel_size": 50})  # at the start: nothing counts
    assert window.params_label.text() == "– parameters"
    window.doc.history.undo()
    window.doc.history.undo()
    assert window.params_label.text() == "44,426 parameters"


def test_status_messages_go_when_what_they_say_changes(lenet, tmp_path):
    window = lenet
    bar = window.statusBar()
    window._save_to(tmp_path / "a.netcanvas.json")
    assert bar.currentMessage().startswith("Saved")
    window.editor.set_params("conv1", {"out_channels": 7, "kernel_size": 5})  # no longer as saved
    assert bar.currentMessage() == ""
    window.scene.message.emit("Cannot connect: that would make a cycle")
    window.doc.history.undo()
    assert bar.currentMessage() == ""
    window._lock_editing(True)  # a state's message stays while the state lasts
    window.scene.message.emit("Training is running: stop it to edit the network")
    bar.clearMessage()  # the passing message ends (timeout, a menu's tip)
    assert bar.currentMessage().startswith("Training…")
    window._lock_editing(False)
    assert bar.currentMessage() == ""


def test_the_toolbar_stays_put_as_undo_and_redo_change_their_text(qtbot, lenet):
    from PySide6.QtWidgets import QToolBar

    window = lenet
    bar = window.findChild(QToolBar, "toolbar_main")
    buttons = [bar.widgetForAction(a) for a in bar.actions() if bar.widgetForAction(a) is not None]
    qtbot.wait(1)
    before = [b.geometry() for b in buttons]
    window.editor.set_params("conv1", {"out_channels": 7, "kernel_size": 5})
    window.editor.auto_layout()
    window.doc.history.undo()
    qtbot.wait(1)
    undo, redo = window.actions_by_name["undo"], window.actions_by_name["redo"]
    assert undo.text() == "&Undo Edit conv1" and "Edit conv1" in undo.toolTip()  # the menu says what
    assert bar.widgetForAction(undo).text() == "Undo" and bar.widgetForAction(redo).text() == "Redo"
    assert [b.geometry() for b in buttons] == before


def test_closing_a_dock_gives_its_room_to_the_canvas(qtbot, lenet):
    window = lenet
    window.resize(1400, 880)
    training = window._docks["training"]
    training.show()
    training.raise_()
    window.resizeDocks([training], [440], Qt.Orientation.Vertical)
    qtbot.waitUntil(lambda: training.height() >= 400)
    squeezed = window.view.height()
    training.close()
    qtbot.waitUntil(lambda: window.view.height() > squeezed + 250, timeout=3000)


def test_view_menu_lays_the_graph_out_left_to_right_undoably(qtbot, lenet):
    window = lenet
    before = {i: n.position for i, n in window.doc.graph.nodes.items()}
    steps = window.doc.history.index
    window.actions_by_name["layout_lr"].trigger()
    assert window.doc.history.index == steps + 1
    pos = {i: n.position for i, n in window.doc.graph.nodes.items()}
    assert pos["conv1"][0] > pos["input"][0] and pos["conv1"][1] == pos["input"][1]
    window.doc.history.undo()
    assert {i: n.position for i, n in window.doc.graph.nodes.items()} == before


def test_while_a_run_locks_editing_undo_takes_back_only_the_views_own_layout(qtbot, window):
    window.resize(1400, 880)
    assert window.open_file(example_path("lenet5"), example=True, ask=False)
    qtbot.waitUntil(lambda: window.view.viewport().height() > 420)  # tall enough for top to bottom
    history, undo, redo = window.doc.history, window.actions_by_name["undo"], window.actions_by_name["redo"]
    assert window.scene.direction == "TB"
    window.editor.set_params("conv1", {"out_channels": 8, "kernel_size": 5})  # the user's edits
    window.editor.set_params("fc1", {"out_features": 100})
    edited = {i: dict(n.params) for i, n in window.doc.graph.nodes.items()}
    before = {i: n.position for i, n in window.doc.graph.nodes.items()}
    window.training.training_active.emit(True)  # a run starts: editing is locked
    assert not undo.isEnabled() and not redo.isEnabled()  # the user's edits are not the view's
    dock = window._docks["training"]  # as Run > Train does: a short, wide canvas
    dock.show()
    dock.raise_()
    window.resizeDocks([dock], [int(window.height() * 0.5)], Qt.Orientation.Vertical)
    qtbot.waitUntil(lambda: window.scene.direction == "LR")  # the view laid the chain out to fit
    assert history.command(history.index - 1).auto and undo.isEnabled() and not redo.isEnabled()
    undo.trigger()
    assert {i: n.position for i, n in window.doc.graph.nodes.items()} == before
    assert not undo.isEnabled() and redo.isEnabled()  # the edit below it stays: the run trains it
    undo.trigger()  # what the key does with the action disabled: nothing
    assert {i: dict(n.params) for i, n in window.doc.graph.nodes.items()} == edited
    redo.trigger()
    assert window.scene.direction == "LR" and undo.isEnabled() and not redo.isEnabled()
    window.training.training_active.emit(False)  # the run ended: the whole history again
    assert undo.isEnabled() and undo.text() == "&Undo Fit layout to the canvas"
    undo.trigger()
    undo.trigger()
    assert window.doc.graph.nodes["fc1"].params != edited["fc1"] and redo.isEnabled()
